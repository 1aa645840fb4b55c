// spool.test.mjs - the inbound spool through the real stack (fcgi/spool.h,
// fcgi/spool_drain.h), with webhooks signed by the official `twilio`
// package: a burst of customer messages over both workers is recorded
// exactly once, in each conversation in the order it was sent, although
// the drainer is SIGKILLed twice while it works (nonflex-jobs starts
// another each time); workers killed after their writes leave files that
// the drainer finishes and removes; with the drainer stopped messages are
// still accepted, health shows them waiting and for how long, and they are
// recorded once it runs again.
//
// SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { assertJson, killWorkers, stopChecked, waitFor } from './lib/check.mjs';
import { request } from './lib/http.mjs';
import { SECRET_ENV, sleep, spoolDrained, spoolPending, stackProcesses, startStack,
	workerPids } from './lib/stack.mjs';
import { signedPost } from './lib/twilio-sign.mjs';

const HOOK = '/webhooks/twilio/conversations';
const AC1 = 'AC00000000000000000000000000000001';
const tag = process.pid.toString(16).padStart(8, '0');
const hex = (n, width) => n.toString(16).padStart(width, '0');
const convSid = (c) => `CH${tag}${hex(c, 24)}`;
const msgSid = (c, i) => `IM${tag}${hex(c, 12)}${hex(i, 12)}`;

function message(c, i) {
	return { AccountSid: AC1, ChatServiceSid: 'IS00000000000000000000000000000001',
		EventType: 'onMessageAdded', ConversationSid: convSid(c), MessageSid: msgSid(c, i),
		Author: `whatsapp:+1555${String(process.pid % 1000).padStart(3, '0')}` +
			String(c).padStart(4, '0'),
		Body: `m${i}`, Source: 'WHATSAPP', Index: String(i),
		ParticipantSid: `MB${tag}${hex(c, 24)}`, DateCreated: new Date().toISOString() };
}

function sql(stack, q) {
	return execFileSync('sqlite3', ['-cmd', '.timeout 5000',
		path.join(stack.stateDir, 'nonflex.db'), q], { encoding: 'utf8' }).trim();
}
const ours = `json_extract(doc, '$.twilioSid') LIKE 'IM${tag}%'`;
function recorded(stack) {
	try {
		return Number(sql(stack, `SELECT count(*) FROM c_messages WHERE ${ours}`));
	} catch {
		return 0;       // no message table before the first message
	}
}

const drainers = (stack) =>
	stackProcesses(stack).filter((p) => p.comm === 'nonflex-spool').map((p) => p.pid);
const spoolFiles = (stack) =>
	fs.readdirSync(path.join(stack.stateDir, 'spool')).filter((f) => /^w-.*\.log$/.test(f));

async function post(stack, m) {
	const res = await signedPost(stack, HOOK, m,
		{ token: SECRET_ENV.TENANT1_TWILIO_AUTH_TOKEN });
	assert.equal(res.status, 200, `${res.status} ${res.body}`);
}

async function health(stack) {
	return assertJson(await request(stack, { path: '/api/health' }), 200).jobs.spool;
}

async function killDrainer(stack) {
	const [pid] = drainers(stack);
	assert.ok(pid, 'a drainer runs');
	process.kill(pid, 'SIGKILL');
	await waitFor('another drainer', () => drainers(stack).some((p) => p !== pid), 10000);
}

describe('inbound spool', () => {
	let stack;
	let nextConv = 0;

	before(async () => {
		stack = await startStack();
	});
	after(() => stopChecked(stack));

	test('a burst is recorded exactly once, in order, though the drainer is killed twice',
		async () => {
			// 300 in all: within the stack's webhook burst (nginx: 400).
			const convs = 20;
			const per = 15;
			const first = nextConv;
			nextConv += convs;
			// The drainer waits while the burst is spooled over both workers.
			for (const pid of drainers(stack))
				process.kill(pid, 'SIGSTOP');
			await Promise.all(Array.from({ length: convs }, async (_, k) => {
				for (let i = 0; i < per; i++)
					await post(stack, message(first + k, i));
			}));
			const waiting = await health(stack);
			assert.equal(waiting.status, 'up');
			assert.ok(waiting.pendingBytes > convs * per * 100, JSON.stringify(waiting));
			assert.equal(recorded(stack), 0);
			// Killed while stopped, then again once it has recorded a part.
			await killDrainer(stack);
			const deadline = Date.now() + 20000;
			while (recorded(stack) < 40)
				assert.ok(Date.now() < deadline, 'nothing recorded within 20 s');
			await killDrainer(stack);
			await spoolDrained(stack, 60000);
			assert.equal(recorded(stack), convs * per);
			assert.equal(Number(sql(stack, `SELECT count(DISTINCT json_extract(doc, '$.twilioSid')) ` +
				`FROM c_messages WHERE ${ours}`)), convs * per);
			for (let k = 0; k < convs; k++) {
				const rows = sql(stack, 'SELECT json_extract(m.doc, \'$.body\'), ' +
					'json_extract(m.doc, \'$.createdAt\') FROM c_messages m JOIN c_conversations c ' +
					'ON json_extract(c.doc, \'$._id\') = json_extract(m.doc, \'$.conversationId\') ' +
					`WHERE json_extract(c.doc, '$.twilioSid') = '${convSid(first + k)}' ` +
					'AND json_extract(m.doc, \'$.authorKind\') = \'customer\'')
					.split('\n').map((l) => l.split('|'));
				assert.equal(rows.length, per, `conversation ${k}`);
				const byBody = new Map(rows.map(([b, at]) => [b, at]));
				for (let i = 1; i < per; i++)
					assert.ok(byBody.get(`m${i - 1}`) <= byBody.get(`m${i}`),
						`conversation ${k}: m${i - 1} after m${i}`);
				const conv = JSON.parse(sql(stack, 'SELECT doc FROM c_conversations WHERE ' +
					`json_extract(doc, '$.twilioSid') = '${convSid(first + k)}'`));
				assert.ok(conv.lastMessageAt >= byBody.get(`m${per - 1}`));
			}
			assert.deepEqual(await health(stack),
				{ status: 'up', pendingBytes: 0, oldestMs: 0, dead: 0 });
		});

	test('files of killed workers are finished and removed', async () => {
		const c = nextConv++;
		await post(stack, message(c, 0));
		await killWorkers(stack);
		await waitFor('the stack answering', async () =>
			(await request(stack, { path: '/api/health' })).status === 200, 10000);
		await post(stack, message(c, 1));
		await spoolDrained(stack);
		assert.equal(Number(sql(stack, 'SELECT count(*) FROM c_messages WHERE ' +
			`json_extract(doc, '$.twilioSid') LIKE 'IM${tag}${hex(c, 12)}%'`)), 2);
		// At most one file per live worker is left.
		await waitFor('dead workers\' files removed', () =>
			spoolFiles(stack).every((f) => workerPids(stack)
				.some((p) => f.startsWith(`w-${p}-`))), 10000);
	});

	test('with the drainer stopped messages wait, shown by health, and are recorded later',
		async () => {
			const c = nextConv++;
			const pids = drainers(stack);
			for (const pid of pids)
				process.kill(pid, 'SIGSTOP');
			try {
				await post(stack, message(c, 0));
				await sleep(1200);
				const h = await health(stack);
				assert.ok(h.pendingBytes > 0, JSON.stringify(h));
				assert.ok(h.oldestMs >= 1000, JSON.stringify(h));
				assert.ok(spoolPending(stack) > 0);
			} finally {
				for (const pid of pids)
					process.kill(pid, 'SIGCONT');
			}
			await spoolDrained(stack);
			assert.equal(Number(sql(stack, 'SELECT count(*) FROM c_messages WHERE ' +
				`json_extract(doc, '$.twilioSid') = '${msgSid(c, 0)}'`)), 1);
		});
});
