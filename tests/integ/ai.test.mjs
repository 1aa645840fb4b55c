// ai.test.mjs - the AI assistant through the real stack (issue 6), with
// OPENAI_BASE_URL pointing at a local OpenAI fake (lib/fake-openai.mjs):
// POST /api/ai/reply answers from the fake with the tenant's key, model,
// system prompt (Spanish for tenant2) and tools; the content filter hands
// off without calling OpenAI; a tool call round trip reads ORD-1000 from
// the seeded store and create_ticket opens a ticket; a 429, 5xx, dropped
// connection or stalled attempt is retried (NONFLEX_AI_RETRIES, backoff,
// Retry-After honoured up to its cap) and answered when OpenAI recovers;
// an OpenAI that keeps failing, stalls, answers garbage or loops over
// tools is a handoff within the timeout, never an error; a tenant without a key gets
// the offline responder (tenant2's Spanish intents); aiEnabled false is a
// handoff; validation names the field; no session is 401.  Through the
// whole pipeline: a signed WhatsApp message is answered by the ai.reply
// job in nonflex-jobs (bot message stored once, queued for delivery), and
// "agent please" hands the conversation off (status queued, event on the
// agents' queue topic); an OpenAI failing every retry hands the customer
// to a human too (told so, status queued) while the webhook still
// answers at once.  The daily token budget: ai-budget.test.mjs.  stopChecked proves no key reached a log or a
// response.
//
// SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { assertError, assertJson, stopChecked, waitFor } from './lib/check.mjs';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import { request } from './lib/http.mjs';
import { loginDemo, seedStack } from './lib/session.mjs';
import { subscribe } from './lib/sse.mjs';
import { SECRET_ENV, startStack } from './lib/stack.mjs';
import { signedPost } from './lib/twilio-sign.mjs';

const TIMEOUT_MS = 1500;                  // a whole answer, retries included
const ATTEMPT_MS = 600;                   // one attempt
const AC1 = 'AC00000000000000000000000000000001';
const MICHAEL = '+15555551234';           // infra/seed/demo.json, owns ORD-1000

let fake;
let stack;
let offline;                              // a stack without OPENAI_API_KEY
const tok = {};

before(async () => {
	fake = await startFakeOpenAI({ keys: {
		[SECRET_ENV.TENANT1_OPENAI_API_KEY]: 'tenant1',
		[SECRET_ENV.OPENAI_API_KEY]: 'global',     // tenant2 has none of its own
	} });
	stack = await startStack({ env: {
		OPENAI_BASE_URL: fake.url,
		NONFLEX_OPENAI_ALLOW_PRIVATE: '1',
		NONFLEX_OPENAI_TIMEOUT_MS: String(TIMEOUT_MS),
		NONFLEX_OPENAI_ATTEMPT_TIMEOUT_MS: String(ATTEMPT_MS),
		NONFLEX_AI_TOOL_ROUNDS: '2',
		NONFLEX_LOGIN_IP_MAX: '1000',
	} });
	seedStack(stack);
	tok.sarah = (await loginDemo(stack, 'tenant1')).token;
	tok.sarah2 = (await loginDemo(stack, 'tenant2')).token;
});

after(async () => {
	try {
		stopChecked(stack, offline);
	} finally {
		await fake?.stop();
	}
});

function ask(body, who = 'sarah', s = stack) {
	const headers = { 'X-Tenant-Id': who.endsWith('2') ? 'tenant2' : 'tenant1' };
	if (tok[who])
		headers.Authorization = `Bearer ${tok[who]}`;
	return request(s, { method: 'POST', path: '/api/ai/reply', headers, body });
}

async function answer(body, who, s) {
	const b = assertJson(await ask(body, who, s), 200);
	assert.deepEqual(Object.keys(b).sort(), ['handoff', 'reason', 'reply', 'source']);
	return b;
}

describe('POST /api/ai/reply', () => {
	test('answers from OpenAI with the tenant key, model, prompt and tools', async () => {
		fake.reset();
		const b = await answer({ userMsg: 'hello there', fromPhone: MICHAEL });
		assert.deepEqual(b, { reply: 'Echo: hello there', handoff: false, reason: null,
			source: 'openai' });
		assert.equal(fake.requests.length, 1);
		const r = fake.requests[0];
		assert.equal(r.name, 'tenant1');       // the fake answers 401 to any other key
		assert.equal(r.body.model, 'gpt-4o-mini');
		assert.equal(r.body.messages[0].role, 'system');
		assert.match(r.body.messages[0].content, /Acme Retail/);
		assert.deepEqual(r.body.messages.at(-1), { role: 'user', content: 'hello there' });
		assert.deepEqual(r.body.tools.map((t) => t.function.name),
			['lookup_customer', 'get_order_by_id', 'create_ticket', 'handoff_to_human']);
	});

	test('tenant2 falls back to OPENAI_API_KEY and is told to answer in Spanish', async () => {
		fake.reset();
		const b = await answer({ userMsg: 'hola, ¿qué tal?' }, 'sarah2');
		assert.equal(b.reply, 'Echo: hola, ¿qué tal?');
		assert.equal(fake.requests[0].name, 'global');
		assert.match(fake.requests[0].body.messages[0].content, /español/);
		assert.match(fake.requests[0].body.messages[0].content, /Spanish/);
	});

	test('the filter hands off without calling OpenAI', async () => {
		fake.reset();
		const cases = [
			['quiero un reembolso', 'refund'],
			['AGENT please', 'human_requested'],
			['Tengo una queja', 'complaint'],
			['my email is ana@example.com', 'personal_data'],
		];
		for (const [msg, reason] of cases) {
			const b = await answer({ userMsg: msg });
			assert.equal(b.handoff, true, msg);
			assert.equal(b.reason, reason, msg);
			assert.equal(b.source, 'filter');
			assert.match(b.reply, /agent/);
		}
		const es = await answer({ userMsg: 'quiero hablar con un humano' }, 'sarah2');
		assert.equal(es.reason, 'human_requested');
		assert.match(es.reply, /Te comunico con un agente/);
		// "agenda" is not "agent": that one goes to the assistant
		const b = await answer({ userMsg: 'can you check my agenda?' });
		assert.equal(b.handoff, false);
		assert.equal(fake.requests.length, 1);
	});

	test('a tool call round trip reads ORD-1000 from the seeded store', async () => {
		fake.reset();
		const b = await answer({ userMsg: 'Where is my order ORD-1000?', fromPhone: MICHAEL });
		assert.deepEqual(b, { reply: 'Order ORD-1000 is delivered.', handoff: false, reason: null,
			source: 'openai' });
		assert.equal(fake.requests.length, 2);
		const msgs = fake.requests[1].body.messages;
		const call = msgs.at(-2);
		assert.equal(call.role, 'assistant');
		assert.equal(call.tool_calls[0].function.name, 'get_order_by_id');
		const result = msgs.at(-1);
		assert.equal(result.role, 'tool');
		assert.equal(result.tool_call_id, call.tool_calls[0].id);
		assert.equal(JSON.parse(result.content).orderId, 'ORD-1000');
		// an unknown order is the tool's error, answered, not a failure
		const u = await answer({ userMsg: 'and ORD-9999?' });
		assert.equal(u.reply, 'Tool error: order_not_found');
	});

	test('create_ticket opens a ticket for the customer writing', async () => {
		fake.reset();
		const b = await answer({ userMsg: 'please open a ticket: my headset is broken',
			fromPhone: '+1 (555) 555-1234' });
		const m = /^Ticket (\S+) is open\.$/.exec(b.reply ?? '');
		assert.ok(m, b.reply);
		const list = assertJson(await request(stack, { path: '/api/customers/CUST-1001/tickets',
			headers: { 'X-Tenant-Id': 'tenant1', Authorization: `Bearer ${tok.sarah}` } }), 200);
		const t = list.tickets.find((x) => x.ticketId === m[1]);
		assert.ok(t, JSON.stringify(list));
		assert.equal(t.subject, 'From chat');
	});

	test('the assistant may hand off itself', async () => {
		fake.reset();
		const b = await answer({ userMsg: 'HANDOFF-TOOL now' });
		assert.equal(b.handoff, true);
		assert.equal(b.reason, 'assistant_handoff');
		assert.equal(b.source, 'openai');
	});

	test('OpenAI stalling is retried, then a handoff within the timeout', async () => {
		fake.reset();
		fake.setMode('stall');
		const t0 = Date.now();
		const b = await answer({ userMsg: 'hello?' });
		const took = Date.now() - t0;
		assert.equal(b.handoff, true);
		assert.equal(b.reason, 'ai_unavailable');
		// two attempts of ATTEMPT_MS fit in the deadline, never a third
		assert.equal(fake.requests.length, 2);
		assert.ok(took >= 2 * ATTEMPT_MS && took < TIMEOUT_MS + 1000, `took ${took} ms`);
		fake.reset();
	});

	test('a stalled first attempt is answered by the retry', async () => {
		fake.reset();
		fake.setMode('stall', { times: 1 });
		const b = await answer({ userMsg: 'still there?' });
		assert.deepEqual(b, { reply: 'Echo: still there?', handoff: false, reason: null,
			source: 'openai' });
		assert.equal(fake.requests.length, 2);
		fake.reset();
	});

	test('500, 503, 429 and a dropped connection are retried until OpenAI answers', async () => {
		for (const mode of ['500', '503', '429', 'reset']) {
			fake.reset();
			fake.setMode(mode, { times: 2 });
			const b = await answer({ userMsg: `hello ${mode}` });
			assert.deepEqual(b, { reply: `Echo: hello ${mode}`, handoff: false, reason: null,
				source: 'openai' }, mode);
			assert.equal(fake.requests.length, 3, mode);     // NONFLEX_AI_RETRIES=2
			// backoff: never two attempts back to back
			const gap = fake.requests[1].at - fake.requests[0].at;
			assert.ok(gap >= 100, `${mode}: retried after ${gap} ms`);
		}
	});

	test('Retry-After is honoured within its cap; a longer one is a handoff at once', async () => {
		fake.reset();
		fake.setMode('429', { times: 1, retryAfter: 1 });
		let b = await answer({ userMsg: 'patience' });
		assert.equal(b.reply, 'Echo: patience');
		const gap = fake.requests[1].at - fake.requests[0].at;
		assert.ok(gap >= 950, `retried after ${gap} ms, not after Retry-After: 1`);
		fake.reset();
		fake.setMode('503', { retryAfter: 60 });
		const t0 = Date.now();
		b = await answer({ userMsg: 'patience' });
		assert.equal(b.reason, 'ai_unavailable');
		assert.equal(fake.requests.length, 1);
		assert.ok(Date.now() - t0 < 500, 'waited for a Retry-After past the cap');
		fake.reset();
	});

	test('failing on every retry, garbage, no choices and endless tool calls are handoffs', async () => {
		for (const [mode, calls] of [['500', 3], ['429', 3], ['garbage', 1], ['empty', 1]]) {
			fake.reset();
			fake.setMode(mode);
			const b = await answer({ userMsg: 'hello' });
			assert.equal(b.handoff, true, mode);
			assert.equal(b.reason, 'ai_unavailable', mode);
			assert.equal(b.source, 'openai', mode);
			assert.match(b.reply, /connect you with an agent/, mode);
			// bounded: 1 + NONFLEX_AI_RETRIES for what may pass, 1 for what will not
			assert.equal(fake.requests.length, calls, mode);
		}
		fake.reset();
		const b = await answer({ userMsg: 'LOOP-TOOL' });
		assert.equal(b.reason, 'ai_unavailable');
		assert.equal(fake.requests.length, 3);      // NONFLEX_AI_TOOL_ROUNDS=2, then no more
	});

	test('aiEnabled false is a handoff with no reply and no OpenAI call', async () => {
		fake.reset();
		const b = await answer({ userMsg: 'hello', aiEnabled: false });
		assert.deepEqual(b, { reply: null, handoff: true, reason: 'ai_disabled', source: 'filter' });
		assert.equal(fake.requests.length, 0);
	});

	test('validation names the field; no session is 401', async () => {
		fake.reset();
		const bad = [
			[{}, 'userMsg'],
			[{ userMsg: '' }, 'userMsg'],
			[{ userMsg: 12 }, 'userMsg'],
			[{ userMsg: 'x'.repeat(4097) }, 'userMsg'],
			[{ userMsg: 'hi', fromPhone: 'call-me' }, 'fromPhone'],
			[{ userMsg: 'hi', conversationId: 'x y' }, 'conversationId'],
			[{ userMsg: 'hi', aiEnabled: 'yes' }, 'aiEnabled'],
			[{ userMsg: 'hi', model: 'gpt-5' }, 'model'],
		];
		for (const [body, field] of bad) {
			const res = await ask(body);
			const e = assertError(res, 400, res.json?.error?.code);
			assert.equal(e.field, field, JSON.stringify(body));
		}
		let res = await ask({ userMsg: 'x'.repeat(9000) });
		assertError(res, 413, res.json?.error?.code);
		res = await request(stack, { method: 'POST', path: '/api/ai/reply',
			headers: { 'X-Tenant-Id': 'tenant1' }, body: { userMsg: 'hi' } });
		assertError(res, 401, res.json?.error?.code);
		assert.equal(fake.requests.length, 0);
	});
});

describe('offline responder (no OpenAI key)', () => {
	before(async () => {
		offline = await startStack({ env: { OPENAI_API_KEY: undefined, OPENAI_BASE_URL: fake.url,
			NONFLEX_OPENAI_ALLOW_PRIVATE: '1' } });
		seedStack(offline);
		tok.offline2 = (await loginDemo(offline, 'tenant2')).token;
	});

	test("tenant2's Spanish intents and greetings answer; nothing else is a handoff", async () => {
		fake.reset();
		const ask2 = (userMsg) => answer({ userMsg }, 'offline2', offline);
		let b = await ask2('¿Cuál es su HORARIO?');
		assert.deepEqual(b, { reply: 'Abrimos de lunes a viernes de 9:00 a 18:00 y los sábados de ' +
			'10:00 a 14:00.', handoff: false, reason: null, source: 'offline' });
		b = await ask2('¿cuánto tarda el envio?');
		assert.match(b.reply, /^Los pedidos salen/);
		b = await ask2('Hola');
		assert.equal(b.reply, '¡Hola! ¿En qué puedo ayudarte?');
		b = await ask2('mi licuadora hace ruido');
		assert.deepEqual(b, { reply: 'Te comunico con un agente que podrá ayudarte. Un momento, ' +
			'por favor.', handoff: true, reason: 'no_answer', source: 'offline' });
		assert.equal(fake.requests.length, 0);
	});
});

/* ---- the ai.reply job, through a signed WhatsApp webhook --------------- */

let seq = 0;
function sid(prefix) {
	seq += 1;
	return `${prefix}${process.pid.toString(16).padStart(8, '0')}${seq.toString(16).padStart(24, '0')}`;
}

function whatsapp(params) {
	return signedPost(stack, '/webhooks/twilio/conversations', params);
}

function sql(q) {
	return execFileSync('sqlite3', ['-cmd', '.timeout 5000', path.join(stack.stateDir, 'nonflex.db'),
		'-json', q], { encoding: 'utf8' }).trim();
}
function rows(q) {
	const out = sql(q);
	return out ? JSON.parse(out) : [];
}
function convByTwilioSid(ch) {
	return rows(`SELECT doc FROM c_conversations WHERE tenant = 'tenant1' AND ` +
		`json_extract(doc, '$.twilioSid') = '${ch}'`).map((r) => JSON.parse(r.doc))[0];
}
function messagesOf(convId) {
	return rows(`SELECT doc FROM c_messages WHERE tenant = 'tenant1' AND ` +
		`json_extract(doc, '$.conversationId') = '${convId}'`).map((r) => JSON.parse(r.doc))
		.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

describe('the ai.reply job', () => {
	test('answers a stored WhatsApp message once, then hands off on "agent please"', async () => {
		fake.reset();
		const ch = sid('CH');
		const base = { AccountSid: AC1, EventType: 'onMessageAdded', ConversationSid: ch,
			Author: `whatsapp:${MICHAEL}`, Source: 'WHATSAPP' };
		const first = { ...base, MessageSid: sid('IM'), Body: 'Where is my order ORD-1000?' };
		let res = await whatsapp(first);
		assert.equal(res.status, 200, res.text);
		let conv;
		await waitFor('the conversation', () => Boolean(conv = convByTwilioSid(ch)), 5000);
		await waitFor('the bot answer', () => messagesOf(conv._id)
			.some((m) => m.authorKind === 'bot'), 15000);
		let msgs = messagesOf(conv._id);
		const bot = msgs.filter((m) => m.authorKind === 'bot');
		assert.equal(bot.length, 1);
		assert.equal(bot[0].body, 'Order ORD-1000 is delivered.');
		assert.equal(bot[0].direction, 'outbound');
		assert.match(bot[0].dedupeKey, /^ai:[0-9a-f]{24}$/);
		assert.ok(['queued', 'sent', 'failed'].includes(bot[0].delivery), bot[0].delivery);
		// the customer-facing call was scoped to Michael, who owns ORD-1000
		assert.equal(fake.requests.length, 2);
		assert.equal(convByTwilioSid(ch).status, 'ai');

		// a replayed webhook neither stores nor answers twice
		res = await whatsapp(first);
		assert.equal(res.status, 200, res.text);
		await new Promise((r) => setTimeout(r, 1500));
		assert.equal(messagesOf(conv._id).filter((m) => m.authorKind === 'bot').length, 1);
		assert.equal(fake.requests.length, 2);

		const sub = await subscribe(stack, 'queue', { headers: { 'X-Tenant-Id': 'tenant1',
			Authorization: `Bearer ${tok.sarah}` } });
		try {
			assert.equal(sub.status, 200);
			res = await whatsapp({ ...base, MessageSid: sid('IM'), Body: 'agent please' });
			assert.equal(res.status, 200, res.text);
			await waitFor('the handoff', () => convByTwilioSid(ch).status === 'queued', 15000);
			const after = convByTwilioSid(ch);
			assert.equal(after.aiEnabled, false);
			let ev;
			const deadline = Date.now() + 10000;
			while (!ev && Date.now() < deadline) {
				const e = await sub.next(deadline - Date.now());
				if (e.event === 'conversation.handoff' || e.json?.type === 'conversation.handoff')
					ev = e;
			}
			assert.ok(ev, 'no conversation.handoff event');
			msgs = messagesOf(conv._id);
			const last = msgs.filter((m) => m.authorKind === 'bot').at(-1);
			assert.match(last.body, /connect you with an agent/);
			assert.match(last.dedupeKey, /^ai-handoff:/);
			assert.equal(fake.requests.length, 2);    // the filter decided, not OpenAI
		} finally {
			sub.close();
		}
	});

	test('OpenAI failing on every retry hands the customer to a human, told so', async () => {
		fake.reset();
		fake.setMode('500');
		const ch = sid('CH');
		const t0 = Date.now();
		const res = await whatsapp({ AccountSid: AC1, EventType: 'onMessageAdded',
			ConversationSid: ch, Author: `whatsapp:${MICHAEL}`, Source: 'WHATSAPP',
			MessageSid: sid('IM'), Body: 'is anyone there?' });
		assert.equal(res.status, 200, res.text);
		assert.ok(Date.now() - t0 < 1000, 'the webhook waited for OpenAI');
		await waitFor('the handoff', () => convByTwilioSid(ch)?.status === 'queued', 15000);
		const conv = convByTwilioSid(ch);
		assert.equal(conv.aiEnabled, false);
		const bot = messagesOf(conv._id).filter((m) => m.authorKind === 'bot');
		assert.equal(bot.length, 1);
		assert.match(bot[0].body, /connect you with an agent/);
		assert.match(bot[0].dedupeKey, /^ai-handoff:/);
		assert.equal(fake.requests.length, 3);     // one try and NONFLEX_AI_RETRIES, no more
		await new Promise((r) => setTimeout(r, 1000));
		assert.equal(fake.requests.length, 3);     // and the job did not start over
		fake.reset();
	});
});
