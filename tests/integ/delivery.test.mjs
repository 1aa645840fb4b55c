// delivery.test.mjs - outbound messages reach Twilio once, never twice,
// never lost (delivery.h; RELIABILITY battery 23-27), through the real
// stack: an agent claims a conversation and replies through the inbox
// API; nonflex-jobs posts the reply to a Conversations fake that keeps
// what it gets, has every request judged by Prism against Twilio's
// contract, and fails on demand (lib/twilio-faults.mjs).
//
// Proven here: a reply arrives once with the agent as author and our id
// in its attributes; a 500 after the create took effect is reconciled (no
// second create), a 500 before it is resent once; a Twilio that always
// answers 500 leaves the message failed (visible in the inbox) and the job
// dead-lettered, and the retry route then delivers it once; 400 / 21211
// fails at once without a retry; a Twilio outage (connection refused)
// loses nothing; a handoff's conv.task creates the TaskRouter task with
// the conversation's attributes and writes aiEnabled=false into the
// Twilio Conversation.
//
// Long conversations (battery 25): a conversation of more than 300
// messages whose send is ambiguous is reconciled by walking newest first
// (our message found on the second page, no resend), and a send that did
// not reach Twilio is proven absent from the first page alone (the walk
// stops at messages older than the first attempt) and resent once; every
// page request passes Prism's contract.
//
// Refused credentials (battery 27): while Twilio answers 401 / 20003 to
// tenant1's key, tenant1 is flagged misconfigured (its supervisors see it
// in GET /api/tenants/current/twilio and on the queue topic, it is
// audited and logged once, without the secret), its message waits without
// failing or being dead-lettered, and tenant2 delivers as usual; once the
// rotated secret is in the tenants file and nonflex-jobs got SIGHUP, the
// waiting message goes out once and the flag clears.
//
// SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { assertError, assertJson, logLines, stopChecked, waitFor } from './lib/check.mjs';
import { request } from './lib/http.mjs';
import { prismAvailable } from './lib/prism.mjs';
import { loginDemo, seedStack } from './lib/session.mjs';
import { subscribe } from './lib/sse.mjs';
import { SRCDIR, sleep, stackProcesses, startStack } from './lib/stack.mjs';
import { startTwilioFaults } from './lib/twilio-faults.mjs';

const skip = prismAvailable() ? false : 'Prism or the Twilio definitions are not installed';
const WS1 = 'WS00000000000000000000000000000001';
const WW1 = 'WW00000000000000000000000000000001';
const IS1 = 'IS00000000000000000000000000000001';
const SK1 = 'SK00000000000000000000000000000001';
const MAX_ATTEMPTS = 4;

let stack;
let fake;
let agent;          // tenant1 login
let other;          // tenant2 login
let tenantsFile;    // the stack's private copy, edited by the credentials test

before(async () => {
	if (skip)
		return;
	fake = await startTwilioFaults();
	stack = await startStack({ setup(dir) {
		tenantsFile = path.join(dir, 'tenants.json');
		fs.copyFileSync(path.join(SRCDIR, 'infra', 'tenants.json'), tenantsFile);
	}, env: (dir) => ({
		TENANTS_FILE: path.join(dir, 'tenants.json'),
		...fake.env,
		NONFLEX_JOBS_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
		NONFLEX_JOBS_BACKOFF_BASE_MS: '100',
		NONFLEX_JOBS_BACKOFF_MAX_MS: '400',
		NONFLEX_TWILIO_MAX_ATTEMPTS: '2',
		NONFLEX_TWILIO_CONNECT_TIMEOUT_MS: '500',
		NONFLEX_TWILIO_TIMEOUT_MS: '2000',
	}) });
	seedStack(stack);
	agent = await loginDemo(stack, 'tenant1');
	other = await loginDemo(stack, 'tenant2');
});

after(async () => {
	try {
		stopChecked(stack);
	} finally {
		await fake?.stop();
	}
});

const hex = (n) => crypto.randomBytes(n).toString('hex');
const sqlText = (v) => `'${String(v).replace(/'/g, "''")}'`;

function sqlite(sql) {
	return execFileSync('sqlite3', ['-cmd', '.timeout 5000', path.join(stack.stateDir, 'nonflex.db'),
		sql], { encoding: 'utf8' });
}

function redis(...args) {
	return execFileSync('redis-cli', ['-s', path.join(stack.runDir, 'redis.sock'), ...args],
		{ encoding: 'utf8' }).trim();
}

/*
 * A tenant1 WhatsApp conversation with a Twilio Conversation SID, written
 * straight into the store (the inbound webhook is another test's
 * subject).  Returns {id, ch}.
 */
function conversation(fields = {}, tenant = 'tenant1') {
	const id = hex(12);
	const ch = `CH${hex(16)}`;
	const at = new Date().toISOString();
	const doc = { _id: id, tenant, channel: 'whatsapp',
		address: `whatsapp:+1555${String(Date.now()).slice(-7)}`, customerId: null,
		status: 'queued', assignedTo: null, aiEnabled: false, taskSid: null, twilioSid: ch,
		priority: 0, preview: 'hola', createdAt: at, updatedAt: at, lastMessageAt: at,
		queuedAt: at, firstResponseAt: null, closedAt: null, version: 1, ...fields };
	sqlite('CREATE TABLE IF NOT EXISTS "c_conversations" (id TEXT PRIMARY KEY, ' +
		'tenant TEXT NOT NULL, doc TEXT NOT NULL); ' +
		`INSERT INTO "c_conversations" (id, tenant, doc) VALUES (${sqlText(id)}, ${sqlText(tenant)}, ` +
		`${sqlText(JSON.stringify(doc))});`);
	return { id, ch, tenant };
}

const api = (login, opts) => request(stack, { ...opts, headers: { 'X-Tenant-Id': login.tenant ??
	'tenant1', Authorization: `Bearer ${login.token}`, ...(opts.headers ?? {}) } });
const t1 = (opts) => api({ tenant: 'tenant1', token: agent.token }, opts);
const t2 = (opts) => api({ tenant: 'tenant2', token: other.token }, opts);

// The demo agent of conv's tenant.
const as = (conv) => (conv.tenant === 'tenant2' ? t2 : t1);

// Claim conv and reply text as the demo agent; returns the message id.
async function reply(conv, text) {
	assertJson(await as(conv)({ method: 'POST', path: '/api/tasks/claim',
		body: { conversationId: conv.id } }), 200);
	const m = assertJson(await as(conv)({ method: 'POST',
		path: `/api/conversations/${conv.id}/messages`, body: { body: text } }), 201).message;
	assert.equal(m.delivery, 'queued');
	return m.id;
}

async function message(conv, id) {
	const b = assertJson(await as(conv)({ path: `/api/conversations/${conv.id}` }), 200);
	return b.messages.find((m) => m.id === id);
}

const creates = (conv, m0 = 0) => fake.since(m0).filter((r) => r.kind === 'create' &&
	r.path.includes(conv.ch));

async function waitDelivery(conv, id, state, ms = 20000) {
	await waitFor(`message ${id} ${state}`, async () => {
		const m = await message(conv, id);
		return m?.delivery === state ? true : m?.delivery;
	}, ms);
	return message(conv, id);
}

// The dead-lettered jobs' payloads.
function deadPayloads() {
	const ids = redis('LRANGE', 'nf:jobs:dead', '0', '-1').split('\n').filter(Boolean);
	return ids.map((id) => JSON.parse(redis('HGET', 'nf:jobs:data', id))).map((j) => ({ type: j.type,
		...j.payload }));
}

describe('outbound delivery', { skip }, () => {
	test('an agent reply reaches the Conversations API once and passes its contract', async () => {
		const conv = conversation();
		const m0 = fake.mark();
		const id = await reply(conv, 'Hola, soy Sarah. ¿En qué puedo ayudarte?');
		const m = await waitDelivery(conv, id, 'sent');
		const held = fake.messagesWith(id);
		assert.equal(held.length, 1);
		assert.equal(held[0].author, agent.agent?.username ?? 'sarah');
		assert.equal(held[0].body, 'Hola, soy Sarah. ¿En qué puedo ayudarte?');
		assert.equal(m.twilioSid, held[0].sid);
		const reqs = fake.since(m0);
		assert.ok(reqs.length >= 1);
		for (const r of reqs)
			assert.equal(r.ok, true, `Prism refused ${r.method} ${r.path}: ${r.errors}`);
		const c = creates(conv, m0);
		assert.equal(c.length, 1);
		assert.deepEqual(c[0].form.map(([k]) => k), ['Author', 'Body', 'Attributes']);
		// no webhook loop (battery 20): nothing asks Twilio to call us back
		assert.ok(!c[0].form.some(([k]) => /Webhook/i.test(k)));
	});

	test('a 500 after Twilio took the message is reconciled: no second create', async () => {
		const conv = conversation();
		const m0 = fake.mark();
		fake.fail({ status: 500, code: 20500, message: 'Internal Server Error', keep: true });
		const id = await reply(conv, 'reconciled');
		await waitDelivery(conv, id, 'sent');
		assert.equal(fake.messagesWith(id).length, 1);
		assert.equal(creates(conv, m0).length, 1, 'resent although Twilio had it');
		assert.ok(fake.since(m0).some((r) => r.method === 'GET' && r.path.includes(conv.ch) &&
			/Order=desc/.test(r.query)), 'no lookup by our id');
	});

	test('a 500 before Twilio took it is resent once', async () => {
		const conv = conversation();
		const m0 = fake.mark();
		fake.fail({ status: 503, code: 20503, message: 'Service Unavailable' });
		const id = await reply(conv, 'resent once');
		await waitDelivery(conv, id, 'sent');
		assert.equal(fake.messagesWith(id).length, 1);
		assert.equal(creates(conv, m0).length, 2);
	});

	test('always 500: failed, dead-lettered, visible; retry delivers it once', async () => {
		const conv = conversation();
		const m0 = fake.mark();
		fake.fail({ status: 500, code: 20500, message: 'Internal Server Error', times: Infinity });
		const id = await reply(conv, 'eventually');
		const m = await waitDelivery(conv, id, 'failed', 30000);
		fake.clearFaults();
		assert.match(m.deliveryError, /20500|twilio/);
		assert.equal(creates(conv, m0).length, MAX_ATTEMPTS);
		assert.equal(fake.messagesWith(id).length, 0);
		await waitFor('dead letter', () => deadPayloads().some((p) => p.type === 'conv.deliver' &&
			p.messageId === id), 5000);

		// the retry route: another tenant's agent gets 404, a wrong message 404
		assertError(await t2({ method: 'POST',
			path: `/api/conversations/${conv.id}/messages/${id}/retry` }), 404,
			'conversation_not_found');
		assertError(await t1({ method: 'POST',
			path: `/api/conversations/${conv.id}/messages/${hex(12)}/retry` }), 404,
			'message_not_found');
		const r = assertJson(await t1({ method: 'POST',
			path: `/api/conversations/${conv.id}/messages/${id}/retry` }), 202);
		assert.equal(r.message.delivery, 'queued');
		await waitDelivery(conv, id, 'sent');
		assert.equal(fake.messagesWith(id).length, 1);
		// only a failed message can be retried
		assertError(await t1({ method: 'POST',
			path: `/api/conversations/${conv.id}/messages/${id}/retry` }), 409, 'invalid_state');
		await sleep(500);
		assert.equal(fake.messagesWith(id).length, 1);
	});

	test('400 / 21211 fails at once and is not retried', async () => {
		const conv = conversation();
		const m0 = fake.mark();
		fake.fail({ status: 400, code: 21211, message: "Invalid 'To' Phone Number" });
		const id = await reply(conv, 'to nowhere');
		const m = await waitDelivery(conv, id, 'failed');
		assert.match(m.deliveryError, /21211/);
		assert.match(m.deliveryError, /Invalid 'To' Phone Number/);
		await sleep(1500);
		assert.equal(creates(conv, m0).length, 1, 'a permanent error was retried');
		assert.ok(deadPayloads().some((p) => p.type === 'conv.deliver' && p.messageId === id));
	});

	test('while Twilio is unreachable nothing is lost: delivered once it is back', async () => {
		const conv = conversation();
		await fake.down();
		let id;
		try {
			id = await reply(conv, 'during the outage');
			// longer than the jobs' whole retry budget (4 attempts, <= 400 ms apart)
			await sleep(4000);
			const m = await message(conv, id);
			assert.equal(m.delivery, 'queued', 'given up during the outage');
		} finally {
			await fake.up();
		}
		await waitDelivery(conv, id, 'sent');
		assert.equal(fake.messagesWith(id).length, 1);
	});
});

describe('reconciliation in long conversations', { skip }, () => {
	const lookups = (conv, m0) => fake.since(m0).filter((r) => r.method === 'GET' &&
		r.path.includes(conv.ch));

	test('over 300 messages, ambiguous 500 after Twilio took it: found on page 2, no resend',
		async () => {
			const conv = conversation();
			fake.seed(IS1, conv.ch, 320, 3600 * 1000);
			const m0 = fake.mark();
			// ours is kept, then 150 customer messages push it off the first page
			fake.fail({ status: 500, code: 20500, message: 'Internal Server Error', keep: true,
				addAfter: 150 });
			const id = await reply(conv, 'found in a long conversation');
			await waitDelivery(conv, id, 'sent');
			assert.equal(fake.messagesWith(id).length, 1);
			assert.equal(creates(conv, m0).length, 1, 'resent although Twilio had it');
			const pages = lookups(conv, m0);
			assert.ok(pages.length >= 2, 'did not follow the next page');
			assert.ok(pages.every((r) => /Order=desc/.test(r.query)), 'not newest first');
			assert.ok(pages.length < 5, `read ${pages.length} pages of 471 messages`);
			for (const r of fake.since(m0))
				assert.equal(r.ok, true, `Prism refused ${r.method} ${r.path}${r.query}: ${r.errors}`);
			const m = await message(conv, id);
			assert.equal(m.twilioSid, fake.messagesWith(id)[0].sid);
		});

	test('over 300 messages, 503 before Twilio took it: proven absent on page 1, resent once',
		async () => {
			const conv = conversation();
			fake.seed(IS1, conv.ch, 350, 3600 * 1000);
			const m0 = fake.mark();
			fake.fail({ status: 503, code: 20503, message: 'Service Unavailable' });
			const id = await reply(conv, 'resent in a long conversation');
			await waitDelivery(conv, id, 'sent');
			assert.equal(fake.messagesWith(id).length, 1);
			assert.equal(creates(conv, m0).length, 2);
			const pages = lookups(conv, m0);
			assert.ok(pages.length >= 1, 'resent without looking');
			// the first page already holds messages older than the first attempt
			assert.ok(pages.every((r) => !/[?&]Page=/.test(r.query)),
				`walked past the first page: ${pages.map((r) => r.query).join(' ')}`);
			for (const r of fake.since(m0))
				assert.equal(r.ok, true, `Prism refused ${r.method} ${r.path}${r.query}: ${r.errors}`);
		});
});

describe('handoff task', { skip }, () => {
	test('conv.task creates the TaskRouter task once and turns the AI off at Twilio', async () => {
		const conv = conversation({ priority: 5, customerId: 'CUST-1001' });
		const m0 = fake.mark();
		const jid = hex(12);
		const job = { id: jid, type: 'conv.task', tenant: 'tenant1',
			payload: { conversationId: conv.id }, enqueuedAt: Date.now() };
		redis('HSET', 'nf:jobs:data', jid, JSON.stringify(job));
		redis('HSET', 'nf:jobs:attempts', jid, '0');
		redis('LPUSH', 'nf:jobs:ready', jid);
		await waitFor('task created', () => fake.state.tasks.some((t) =>
			JSON.parse(t.attributes).conversationId === conv.id), 15000);
		const task = fake.state.tasks.find((t) => JSON.parse(t.attributes).conversationId === conv.id);
		assert.equal(task.workspace_sid, WS1);
		assert.equal(task.workflow_sid, WW1);
		assert.deepEqual(JSON.parse(task.attributes), { type: 'chat', channel: 'whatsapp',
			conversationId: conv.id, conversation_sid: conv.ch, language: 'en',
			customerId: 'CUST-1001' });
		assert.equal(task.priority, 5);
		await waitFor('attributes written', () => JSON.parse(fake.state.convs.get(conv.ch)
			?.attributes ?? '{}').aiEnabled === false, 10000);
		for (const r of fake.since(m0))
			assert.equal(r.ok, true, `Prism refused ${r.method} ${r.path}: ${r.errors}`);
		await waitFor('taskSid recorded', async () => {
			const b = assertJson(await t1({ path: `/api/conversations/${conv.id}` }), 200);
			return b.conversation.taskSid === task.sid ? true : b.conversation.taskSid;
		}, 5000);

		// the same job again: the task exists, none is added
		const jid2 = hex(12);
		redis('HSET', 'nf:jobs:data', jid2, JSON.stringify({ ...job, id: jid2 }));
		redis('HSET', 'nf:jobs:attempts', jid2, '0');
		redis('LPUSH', 'nf:jobs:ready', jid2);
		await waitFor('second run done', () => redis('HEXISTS', 'nf:jobs:data', jid2) === '0', 10000);
		assert.equal(fake.state.tasks.filter((t) =>
			JSON.parse(t.attributes).conversationId === conv.id).length, 1);
	});
});

// Audit entries of event ev for tenant.
function audits(tenant, ev) {
	const out = sqlite(`SELECT doc FROM "c_audit" WHERE tenant = ${sqlText(tenant)};`);
	return out.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((d) => d.event === ev);
}

describe('credentials refused (battery 27)', { skip }, () => {
	const ROTATED = `nfsecret-tenant1-rotated-${hex(6)}`;
	const health = (login, tenant = 'tenant1') => api({ tenant, token: login.token },
		{ path: '/api/tenants/current/twilio' });

	test('401/20003 for tenant1: flagged, its message waits; tenant2 unaffected; fixed: sent once',
		async () => {
			const sam = await loginDemo(stack, 'tenant1', 'sam');
			const admin2 = await loginDemo(stack, 'tenant2', 'admin');
			assert.equal(assertJson(await health(sam), 200).twilio.status, 'ok');
			const sub = await subscribe(stack, 'queue', { headers: { 'X-Tenant-Id': 'tenant1',
				Authorization: `Bearer ${sam.token}` } });
			fake.rejectAuth({ user: SK1, unless: ROTATED });
			const conv = conversation();
			let id;
			try {
				assert.equal(sub.status, 200);
				id = await reply(conv, 'waiting for credentials');
				let ev;
				do
					ev = await sub.next(15000);
				while (ev.json?.type !== 'twilio.misconfigured');
				assert.equal(ev.json.data.code, 20003);
			} finally {
				sub.close();
			}
			const flag = assertJson(await health(sam), 200).twilio;
			assert.equal(flag.status, 'misconfigured');
			assert.equal(flag.code, 20003);
			assert.equal(flag.httpStatus, 401);
			assert.equal(flag.message, 'Authenticate');
			assert.ok(!Number.isNaN(Date.parse(flag.since)));
			// agents do not see it; tenant2's admin sees its own, healthy state
			assertError(await t1({ path: '/api/tenants/current/twilio' }), 403, 'forbidden');
			assert.equal(assertJson(await health(admin2, 'tenant2'), 200).twilio.status, 'ok');

			// tenant2 delivers normally meanwhile
			const conv2 = conversation({}, 'tenant2');
			const id2 = await reply(conv2, 'tenant2 is unaffected');
			await waitDelivery(conv2, id2, 'sent');
			assert.equal(fake.messagesWith(id2).length, 1);
			assert.equal(assertJson(await health(admin2, 'tenant2'), 200).twilio.status, 'ok');

			// longer than the jobs' whole retry budget: still waiting, nothing dead
			await sleep(4000);
			assert.equal((await message(conv, id)).delivery, 'queued');
			assert.ok(!deadPayloads().some((p) => p.messageId === id), 'dead-lettered');
			assert.equal(fake.messagesWith(id).length, 0);
			assert.ok(fake.requests().some((r) => r.user === SK1 && r.status === 401));
			// announced once: one error line naming the tenant and code, one audit entry
			const lines = logLines(stack, 'jobs.log').filter((l) =>
				/refused the credentials/.test(l));
			assert.equal(lines.length, 1, lines.join('\n'));
			assert.match(lines[0], /tenant1/);
			assert.match(lines[0], /20003/);
			assert.equal(audits('tenant1', 'twilio.misconfigured').length, 1);
			assert.equal(audits('tenant2', 'twilio.misconfigured').length, 0);

			// the admin rotates the secret; nonflex-jobs reloads the tenants file
			const doc = JSON.parse(fs.readFileSync(tenantsFile, 'utf8'));
			doc.tenant1.twilio.apiSecret = ROTATED;
			fs.writeFileSync(`${tenantsFile}.tmp`, JSON.stringify(doc, null, 2));
			fs.renameSync(`${tenantsFile}.tmp`, tenantsFile);
			const jobs = stackProcesses(stack).filter((p) => p.comm === 'nonflex-jobs');
			assert.ok(jobs.length >= 1, 'no nonflex-jobs process');
			for (const p of jobs)
				process.kill(p.pid, 'SIGHUP');
			await waitDelivery(conv, id, 'sent', 20000);
			assert.equal(fake.messagesWith(id).length, 1);
			await waitFor('flag cleared', async () =>
				assertJson(await health(sam), 200).twilio.status === 'ok', 5000);
			assert.equal(audits('tenant1', 'twilio.recovered').length, 1);
			await sleep(1000);
			assert.equal(fake.messagesWith(id).length, 1);
		});
});
