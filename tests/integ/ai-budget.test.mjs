// ai-budget.test.mjs - the AI assistant's daily OpenAI token budget per
// tenant (RELIABILITY battery 30, ai_budget.h) through the real stack:
// tenant1 is given ai.dailyTokenBudget 10 in a copy of infra/tenants.json
// and the OpenAI fake bills 4 tokens an answer, so POST /api/ai/reply gets
// exactly 3 answers from OpenAI, then the offline responder (tenant1's
// FAQ) or a handoff "budget_exhausted" - while tenant2 (the default
// budget) still reaches OpenAI.  The customer-facing ai.reply job obeys
// the same budget (FAQ answer without OpenAI, else a human).  The
// exhaustion is logged once and audited once however often it is hit;
// GET /api/ai/usage shows each tenant its own numbers (agents 403).  With
// Redis down the staff API answers 503 before the assistant runs, and
// OpenAI is not called (the assistant's own fail-closed fallback is
// proven by t_ai: offline answer or handoff "budget_unavailable").
//
// SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { assertJson, stopChecked, waitFor } from './lib/check.mjs';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import { request } from './lib/http.mjs';
import { keepPidFile, killRedis, restartRedis } from './lib/redis.mjs';
import { loginDemo, seedStack } from './lib/session.mjs';
import { SECRET_ENV, SRCDIR, startStack } from './lib/stack.mjs';
import { signedPost } from './lib/twilio-sign.mjs';

const BUDGET = 10;
const PER_ANSWER = 4;
const AC1 = 'AC00000000000000000000000000000001';
const FAQ_HOURS = /^We are open Monday to Friday/;

let fake;
let stack;
const tok = {};

before(async () => {
	fake = await startFakeOpenAI({ keys: {
		[SECRET_ENV.TENANT1_OPENAI_API_KEY]: 'tenant1',
		[SECRET_ENV.OPENAI_API_KEY]: 'global',
	} });
	stack = await startStack({ env: (stateDir) => {
		const tenants = JSON.parse(fs.readFileSync(path.join(SRCDIR, 'infra', 'tenants.json'),
			'utf8'));
		tenants.tenant1.ai.dailyTokenBudget = BUDGET;
		const file = path.join(stateDir, 'tenants-budget.json');
		fs.writeFileSync(file, JSON.stringify(tenants));
		return {
			TENANTS_FILE: file,
			OPENAI_BASE_URL: fake.url,
			NONFLEX_OPENAI_ALLOW_PRIVATE: '1',
			NONFLEX_OPENAI_TIMEOUT_MS: '3000',
			NONFLEX_LOGIN_IP_MAX: '1000',
		};
	} });
	seedStack(stack);
	for (const [who, tenant, user] of [['sarah', 'tenant1', 'sarah'], ['admin', 'tenant1', 'admin'],
		['sarah2', 'tenant2', 'sarah'], ['admin2', 'tenant2', 'admin']])
		tok[who] = (await loginDemo(stack, tenant, user)).token;
});

after(async () => {
	try {
		stopChecked(stack);
	} finally {
		await fake?.stop();
	}
});

function call(method, p, who, body) {
	const headers = { 'X-Tenant-Id': who.endsWith('2') ? 'tenant2' : 'tenant1',
		Authorization: `Bearer ${tok[who]}` };
	return request(stack, { method, path: p, headers, body });
}

async function ask(userMsg, who = 'sarah') {
	return assertJson(await call('POST', '/api/ai/reply', who, { userMsg }), 200);
}

const fromTenant = (name) => fake.requests.filter((r) => r.name === name).length;

function logCount(re) {
	let n = 0;
	for (const f of fs.readdirSync(stack.logDir))
		n += fs.readFileSync(path.join(stack.logDir, f), 'utf8').split('\n')
			.filter((l) => re.test(l)).length;
	return n;
}

function sql(q) {
	const out = execFileSync('sqlite3', ['-cmd', '.timeout 5000',
		path.join(stack.stateDir, 'nonflex.db'), '-json', q], { encoding: 'utf8' }).trim();
	return out ? JSON.parse(out) : [];
}
const convByTwilioSid = (ch) => sql(`SELECT doc FROM c_conversations WHERE tenant = 'tenant1' ` +
	`AND json_extract(doc, '$.twilioSid') = '${ch}'`).map((r) => JSON.parse(r.doc))[0];
const botMessages = (convId) => sql(`SELECT doc FROM c_messages WHERE tenant = 'tenant1' AND ` +
	`json_extract(doc, '$.conversationId') = '${convId}'`).map((r) => JSON.parse(r.doc))
	.filter((m) => m.authorKind === 'bot');

let seq = 0;
function sid(prefix) {
	seq += 1;
	return `${prefix}${'b'.repeat(8)}${process.pid.toString(16).padStart(8, '0')}` +
		`${seq.toString(16).padStart(16, '0')}`;
}

describe('the daily token budget', () => {
	test('tenant1 gets 3 OpenAI answers, then FAQ or a handoff; tenant2 is unaffected', async () => {
		fake.reset();
		fake.setTokens(PER_ANSWER);
		let u = assertJson(await call('GET', '/api/ai/usage', 'admin'), 200);
		assert.equal(u.tokensUsed, 0);
		assert.equal(u.dailyTokenBudget, BUDGET);
		assert.equal(u.exhausted, false);
		for (let i = 1; i <= 3; i++) {
			const b = await ask(`question ${i}`);
			assert.deepEqual(b, { reply: `Echo: question ${i}`, handoff: false, reason: null,
				source: 'openai' }, `answer ${i}`);
		}
		assert.equal(fromTenant('tenant1'), 3);
		// 12 of 10 tokens: OpenAI is not asked again today
		let b = await ask('what are your opening hours?');
		assert.equal(b.source, 'offline');
		assert.equal(b.handoff, false);
		assert.match(b.reply, FAQ_HOURS);
		b = await ask('my blender makes a noise');
		assert.deepEqual(b, { reply: "I'll connect you with an agent who can help. One moment, " +
			'please.', handoff: true, reason: 'budget_exhausted', source: 'offline' });
		assert.equal(fromTenant('tenant1'), 3);
		// tenant2 still reaches OpenAI
		b = await ask('hola', 'sarah2');
		assert.equal(b.source, 'openai');
		assert.equal(b.reply, 'Echo: hola');
		assert.equal(fromTenant('global'), 1);

		u = assertJson(await call('GET', '/api/ai/usage', 'admin'), 200);
		assert.equal(u.tokensUsed, 3 * PER_ANSWER);
		assert.equal(u.remaining, 0);
		assert.equal(u.exhausted, true);
		assert.match(u.exhaustedAt, /^\d{4}-\d\d-\d\dT/);
		assert.match(u.day, /^\d{4}-\d\d-\d\d$/);
		const u2 = assertJson(await call('GET', '/api/ai/usage', 'admin2'), 200);
		assert.equal(u2.tokensUsed, PER_ANSWER);
		assert.equal(u2.dailyTokenBudget, 1000000);       // the documented default
		assert.equal(u2.exhausted, false);
		const res = await call('GET', '/api/ai/usage', 'sarah');
		assert.equal(res.status, 403);
	});

	test('the ai.reply job obeys it too: FAQ without OpenAI, else a human', async () => {
		fake.reset();
		const ch = sid('CH');
		const base = { AccountSid: AC1, EventType: 'onMessageAdded', ConversationSid: ch,
			Author: 'whatsapp:+15555550100', Source: 'WHATSAPP' };
		let res = await signedPost(stack, '/webhooks/twilio/conversations',
			{ ...base, MessageSid: sid('IM'), Body: 'what are your opening hours?' });
		assert.equal(res.status, 200, res.text);
		let conv;
		await waitFor('the FAQ answer', () => (conv = convByTwilioSid(ch)) &&
			botMessages(conv._id).length === 1, 15000);
		assert.match(botMessages(conv._id)[0].body, FAQ_HOURS);
		assert.equal(convByTwilioSid(ch).status, 'ai');
		res = await signedPost(stack, '/webhooks/twilio/conversations',
			{ ...base, MessageSid: sid('IM'), Body: 'my blender makes a noise' });
		assert.equal(res.status, 200, res.text);
		await waitFor('the handoff', () => convByTwilioSid(ch).status === 'queued', 15000);
		const last = botMessages(conv._id).at(-1);
		assert.match(last.body, /connect you with an agent/);
		assert.equal(fake.requests.length, 0);
	});

	test('the exhaustion is logged once and audited once', async () => {
		await ask('one more');
		await ask('and another');
		assert.equal(logCount(/tenant1 used its daily token budget/), 1);
		assert.equal(logCount(/tenant2 used its daily token budget/), 0);
		const a = assertJson(await call('GET', '/api/audit?event=ai.budget_exhausted', 'admin'),
			200);
		assert.equal(a.entries.length, 1);
		assert.equal(a.entries[0].data.dailyTokenBudget, BUDGET);
		const a2 = assertJson(await call('GET', '/api/audit?event=ai.budget_exhausted', 'admin2'),
			200);
		assert.equal(a2.entries.length, 0);
	});
});

describe('Redis down', () => {
	// Staff sessions are checked against Redis (revocation), so the stack
	// refuses the request before the assistant runs: a clean 503, never a
	// 500 and never an unbudgeted OpenAI call.  The assistant's own choice
	// with Redis down (offline answer or handoff "budget_unavailable" for a
	// finite budget) is proven by t_ai's budget_counting.
	test('POST /api/ai/reply and /api/ai/usage answer 503, OpenAI is not called', async () => {
		fake.reset();
		const redis = await killRedis(stack);
		try {
			for (const [method, p, body] of [['POST', '/api/ai/reply', { userMsg: 'hola' }],
				['GET', '/api/ai/usage']]) {
				const res = await call(method, p, p.endsWith('usage') ? 'admin2' : 'sarah2', body);
				assert.equal(res.status, 503, p);
				assert.equal(res.json?.error?.code, 'redis_unavailable', p);
				assert.ok(res.headers['retry-after'], p);
			}
			assert.equal(fake.requests.length, 0);
		} finally {
			const spawnError = restartRedis(stack, redis);
			await waitFor('redis answering', async () => {
				assert.equal(spawnError(), null);
				return (await call('GET', '/api/ai/usage', 'admin2')).status === 200;
			}, 10000);
			keepPidFile(redis);
		}
		// every worker finds Redis again (each reconnects on its own)
		let b;
		await waitFor('an answer after the outage', async () => {
			const res = await call('POST', '/api/ai/reply', 'sarah2', { userMsg: 'hola' });
			b = res.json;
			return res.status === 200;
		}, 10000);
		assert.equal(b.source, 'openai');
	});
});
