// e2e-conversation.test.mjs - issue 6 item 10 end to end through one real
// stack: what a customer, the assistant and an agent see of a conversation,
// with every outside party faked on 127.0.0.1 - OpenAI (lib/fake-openai.mjs,
// which also makes a tool call) and Twilio's Conversations and TaskRouter
// APIs (lib/twilio-faults.mjs, every request judged by Prism against
// Twilio's contract).  Webhooks are signed with the official `twilio`
// package.
//
// The story, in order (each test builds on the one before):
//   1. Michael (seeded, owns ORD-1000) writes on WhatsApp; the webhook is
//      200 at once; the assistant looks the order up (tool call) and its
//      answer reaches Twilio as author "bot" with our message id, and the
//      inbox shows it "sent".
//   2. "quiero un reembolso": handed off without asking OpenAI - queued, AI
//      off (also in the Twilio Conversation's attributes), a TaskRouter
//      task, a conversation.handoff event on the agents' queue.
//   3. sarah claims, replies (Twilio gets it as author "sarah"), releases;
//      the audit log has the claim, the release and the handoff.
//   4. The first webhook replayed: still one message, one bot answer.
//   5. The web chat: a visitor's message is answered live on its own
//      stream, "I want a human" hands off, sarah claims and answers, and the
//      visitor sees her reply without her username - another visitor never
//      sees it.  No job of either conversation was dead-lettered.
//   6. A handoff whose TaskRouter create times out (a task that is never
//      resent) still writes aiEnabled false into the Twilio Conversation.
//
// SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { assertJson, stopChecked, waitFor } from './lib/check.mjs';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import { request } from './lib/http.mjs';
import { prismAvailable } from './lib/prism.mjs';
import { loginDemo, seedStack } from './lib/session.mjs';
import { subscribe } from './lib/sse.mjs';
import { SECRET_ENV, startStack } from './lib/stack.mjs';
import { startTwilioFaults } from './lib/twilio-faults.mjs';
import { signedPost } from './lib/twilio-sign.mjs';

const skip = prismAvailable() ? false : 'Prism or the Twilio definitions are not installed';
const AC1 = 'AC00000000000000000000000000000001';
const IS1 = 'IS00000000000000000000000000000001';
const WS1 = 'WS00000000000000000000000000000001';
const MICHAEL = 'whatsapp:+15555551234';    // infra/seed/demo.json, owns ORD-1000
const HOOK = '/webhooks/twilio/conversations';
const T1 = { 'X-Tenant-Id': 'tenant1' };
const SLOW = 20000;                          // generous: ASan builds are slow

let seq = 0;
// A Twilio SID of this kind no other run uses.
function sid(prefix) {
	seq += 1;
	return `${prefix}${process.pid.toString(16).padStart(8, '0')}${seq.toString(16).padStart(24, '0')}`;
}

let stack;
let openai;
let twil;
const who = {};         // sarah, admin: login bodies
const subs = {};        // queue, agent: EventSources of sarah
const wa = {};          // the WhatsApp conversation: ch, first webhook, conv id, ...

before(async () => {
	if (skip)
		return;
	openai = await startFakeOpenAI({ keys: { [SECRET_ENV.TENANT1_OPENAI_API_KEY]: 'tenant1' } });
	twil = await startTwilioFaults();
	stack = await startStack({ env: {
		...twil.env,
		OPENAI_BASE_URL: openai.url,
		NONFLEX_OPENAI_ALLOW_PRIVATE: '1',
		NONFLEX_JOBS_BACKOFF_BASE_MS: '100',
		NONFLEX_JOBS_BACKOFF_MAX_MS: '400',
		NONFLEX_TWILIO_CONNECT_TIMEOUT_MS: '500',
		NONFLEX_TWILIO_TIMEOUT_MS: '3000',
		NONFLEX_LOGIN_IP_MAX: '1000',
	} });
	seedStack(stack);
	who.sarah = await loginDemo(stack, 'tenant1', 'sarah');
	who.admin = await loginDemo(stack, 'tenant1', 'admin');
	who.sarah.id = who.sarah.agent?.id;
	assert.match(who.sarah.id ?? '', /^[0-9a-f]{24}$/, 'sarah\'s agent id');
	const auth = { ...T1, Authorization: `Bearer ${who.sarah.token}` };
	subs.queue = await listen('queue', { headers: auth });
	subs.agent = await listen(`agent-${who.sarah.id}`, { headers: auth });
	assert.equal(subs.queue.status, 200);
	assert.equal(subs.agent.status, 200);
});

after(async () => {
	try {
		for (const s of Object.values(subs))
			s.close();
		stopChecked(stack);
	} finally {
		await twil?.stop();
		await openai?.stop();
	}
});

/* ---- helpers ---------------------------------------------------------------- */

/*
 * An EventSource that keeps every event it has received (seen), so a test
 * can wait for one (waitEvent: the first seen or arriving with pred) and
 * later look at everything that came before it.
 */
async function listen(topic, opts) {
	const s = await subscribe(stack, topic, opts);
	s.seen = [];
	// The first event e with pred(e), already seen or arriving within ms.
	s.waitEvent = async (what, pred, ms = SLOW) => {
		const deadline = Date.now() + ms;
		for (;;) {
			const hit = s.seen.find((e) => pred(e));
			if (hit)
				return hit;
			const left = deadline - Date.now();
			const ev = left > 0 ? await s.nextOrNull(left) : null;
			assert.ok(ev, `${what}: no such event on ${topic} within ${ms} ms ` +
				`(got ${JSON.stringify(s.seen.map((e) => e.json?.type))})`);
			s.seen.push(ev);
		}
	};
	return s;
}

// Parameters of a customer's WhatsApp onMessageAdded in conversation ch.
function inbound(ch, body) {
	return { AccountSid: AC1, ChatServiceSid: IS1, EventType: 'onMessageAdded',
		ConversationSid: ch, MessageSid: sid('IM'), Author: MICHAEL, Body: body,
		Source: 'WHATSAPP', Index: '0', ParticipantSid: sid('MB'),
		DateCreated: new Date().toISOString(), RetryCount: '0' };
}

// POST params to the webhook, signed as Twilio signs them.
function signed(params, headers = {}) {
	return signedPost(stack, HOOK, params, { headers });
}

// The webhook's answer: 200 {} within Twilio's patience (we aim for ms).
function accepted(res) {
	assert.deepEqual(assertJson(res, 200), {});
	assert.ok(res.ms < 1000, `the webhook took ${Math.round(res.ms)} ms`);
}

function api(login, method, p, body) {
	return request(stack, { method, path: p, body,
		headers: { ...T1, Authorization: `Bearer ${login.token}` } });
}

// {conversation, messages} as the inbox shows them.
async function inboxConv(id) {
	return assertJson(await api(who.sarah, 'GET', `/api/conversations/${id}?limit=100`), 200);
}

// The first event of type on sub whose pred holds.
function subscribeFind(sub, type, pred) {
	return sub.waitEvent(type, (e) => e.json?.type === type && pred(e));
}

// The event type and conversation an event is about.
const about = (type, convId) => (e) => e.json?.type === type &&
	e.json?.data?.conversationId === convId;

// What the Twilio fake holds of conversation ch, by author.
const heldBy = (ch, author) => (twil.state.messages.get(ch) ?? []).filter((m) =>
	m.author === author);

// Every request to the Twilio fake since m passed Prism's validation.
function allValid(m) {
	const reqs = twil.since(m);
	assert.ok(reqs.length > 0, 'nothing reached the Twilio fake');
	for (const r of reqs)
		assert.equal(r.ok, true, `Prism refused ${r.method} ${r.path}: ${r.errors}`);
}

function redis(...args) {
	return execFileSync('redis-cli', ['-s', path.join(stack.runDir, 'redis.sock'), ...args],
		{ encoding: 'utf8' }).trim();
}

async function claim(convId) {
	const b = assertJson(await api(who.sarah, 'POST', '/api/tasks/claim',
		{ conversationId: convId }), 200);
	assert.match(b.token, /^[0-9a-f]{32}\.\d+$/);
	assert.equal(b.conversation.status, 'assigned');
	assert.equal(b.conversation.assignedTo, who.sarah.id);
	return b.token;
}

async function reply(convId, body) {
	const m = assertJson(await api(who.sarah, 'POST', `/api/conversations/${convId}/messages`,
		{ body }), 201).message;
	assert.equal(m.authorKind, 'agent');
	return m;
}

/* ---- the WhatsApp conversation ---------------------------------------------- */

describe('a WhatsApp conversation from the first message to an agent', { skip }, () => {
	test('1. the webhook is 200 at once; the assistant answers through a tool call, ' +
		'delivered to Twilio', async () => {
		openai.reset();
		const m0 = twil.mark();
		wa.ch = sid('CH');
		wa.first = inbound(wa.ch, 'Hi! Where is my order ORD-1000?');
		wa.token = { 'I-Twilio-Idempotency-Token': `${sid('tk')}-1` };
		accepted(await signed(wa.first, wa.token));

		// The agents' queue sees the customer's message live.
		const ev = await subscribeFind(subs.queue, 'message.created', (e) =>
			e.json.data.message?.body === wa.first.Body);
		wa.id = ev.json.data.conversationId;
		assert.equal(ev.json.data.message.authorKind, 'customer');
		let c = (await inboxConv(wa.id)).conversation;
		assert.equal(c.twilioSid, wa.ch);
		assert.equal(c.channel, 'whatsapp');
		assert.equal(c.customerId, 'CUST-1001');      // Michael, known by his number

		// The bot's answer: stored, handed to Twilio, shown "sent".
		let bot;
		await waitFor('the bot answer sent', async () => {
			bot = (await inboxConv(wa.id)).messages.find((x) => x.authorKind === 'bot');
			return bot?.delivery === 'sent' ? true : bot?.delivery ?? 'no bot message';
		}, SLOW);
		assert.equal(bot.body, 'Order ORD-1000 is delivered.');
		assert.equal(bot.direction, 'outbound');
		const held = twil.messagesWith(bot.id);
		assert.equal(held.length, 1, 'the answer reached Twilio once');
		assert.equal(held[0].author, 'bot');
		assert.equal(held[0].body, bot.body);
		assert.equal(held[0].conversation_sid, wa.ch);
		assert.equal(bot.twilioSid, held[0].sid);
		allValid(m0);
		wa.botId = bot.id;

		// The answer came from OpenAI's tool round: get_order_by_id read the store.
		assert.equal(openai.requests.length, 2);
		assert.ok(openai.requests.every((r) => r.name === 'tenant1'));
		const call = openai.requests[1].body.messages.at(-2);
		assert.equal(call.tool_calls[0].function.name, 'get_order_by_id');
		assert.equal(JSON.parse(openai.requests[1].body.messages.at(-1).content).orderId,
			'ORD-1000');
		c = (await inboxConv(wa.id)).conversation;
		assert.equal(c.status, 'ai');
		assert.equal(c.aiEnabled, true);
	});

	test('2. "quiero un reembolso" hands off without OpenAI: queued, AI off at Twilio, ' +
		'a task, an event', async () => {
		const asked = openai.requests.length;
		const m0 = twil.mark();
		wa.refund = inbound(wa.ch, 'quiero un reembolso');
		accepted(await signed(wa.refund));

		const ev = await subs.queue.waitEvent('the handoff',
			about('conversation.handoff', wa.id));
		assert.equal(ev.json.data.reason, 'refund');
		assert.equal(ev.json.data.conversation.status, 'queued');
		assert.equal(ev.json.data.conversation.aiEnabled, false);
		const c = (await inboxConv(wa.id)).conversation;
		assert.equal(c.status, 'queued');
		assert.equal(c.aiEnabled, false);
		assert.equal(c.handoffReason, 'refund');

		// The TaskRouter task (through the fake), recorded on the conversation.
		await waitFor('the TaskRouter task', () => twil.state.tasks.some((t) =>
			JSON.parse(t.attributes).conversationId === wa.id), SLOW);
		const tasks = twil.state.tasks.filter((t) =>
			JSON.parse(t.attributes).conversationId === wa.id);
		assert.equal(tasks.length, 1);
		assert.equal(tasks[0].workspace_sid, WS1);
		assert.equal(JSON.parse(tasks[0].attributes).conversation_sid, wa.ch);
		await waitFor('taskSid on the conversation', async () => {
			const t = (await inboxConv(wa.id)).conversation.taskSid;
			return t === tasks[0].sid ? true : t;
		}, SLOW);
		// Twilio's copy of the conversation says the AI is off.
		await waitFor('aiEnabled false at Twilio', () => JSON.parse(twil.state.convs.get(wa.ch)
			?.attributes ?? '{}').aiEnabled === false, SLOW);

		// The customer is told (the handoff notice goes out as the bot) ...
		await waitFor('the handoff notice at Twilio', () => heldBy(wa.ch, 'bot').length === 2,
			SLOW);
		assert.match(heldBy(wa.ch, 'bot')[1].body, /agent/);
		allValid(m0);
		// ... and OpenAI was never asked about the refund.
		assert.equal(openai.requests.length, asked);
		assert.ok(!openai.requests.some((r) => JSON.stringify(r.body).includes('reembolso')));
	});

	test('3. sarah claims, replies (Twilio gets it from "sarah") and releases; all audited',
		async () => {
			const m0 = twil.mark();
			wa.claim = await claim(wa.id);
			const ev = await subs.agent.waitEvent('the claim on sarah\'s topic', (e) =>
				e.json?.data?.conversationId === wa.id &&
				e.json.data.conversation?.assignedTo === who.sarah.id);
			assert.equal(ev.json.data.conversation.status, 'assigned');

			const m = await reply(wa.id, 'Hola Michael, soy Sarah. Reviso tu reembolso.');
			assert.equal(m.author, 'sarah');
			await waitFor('the reply at Twilio', () => twil.messagesWith(m.id).length === 1, SLOW);
			const held = twil.messagesWith(m.id)[0];
			assert.equal(held.author, 'sarah');
			assert.equal(held.body, m.body);
			assert.equal(held.conversation_sid, wa.ch);
			await waitFor('the reply sent', async () => {
				const x = (await inboxConv(wa.id)).messages.find((y) => y.id === m.id);
				return x?.delivery === 'sent' ? true : x?.delivery;
			}, SLOW);
			allValid(m0);

			const c = assertJson(await api(who.sarah, 'POST', '/api/tasks/release',
				{ conversationId: wa.id, token: wa.claim, aiEnabled: false }), 200).conversation;
			assert.equal(c.status, 'queued');
			assert.equal(c.assignedTo, null);
			assert.equal(c.aiEnabled, false);
			const after = (await inboxConv(wa.id)).conversation;
			assert.equal(after.status, 'queued');
			assert.equal(after.aiEnabled, false);

			for (const event of ['claim', 'release', 'conversation.handoff']) {
				const res = await api(who.admin, 'GET',
					`/api/audit?event=${encodeURIComponent(event)}&limit=200`);
				const entries = assertJson(res, 200).entries
					.filter((x) => x.data?.conversationId === wa.id);
				assert.equal(entries.length, 1, `${event} audited once: ${res.text.slice(0, 400)}`);
				assert.ok(!JSON.stringify(entries).includes(wa.claim), 'claim token in the audit');
			}
		});

	test('4. the first webhook replayed: still one message and one bot answer', async () => {
		const asked = openai.requests.length;
		accepted(await signed(wa.first, wa.token));        // Twilio's retry, same delivery
		accepted(await signed(wa.first));                  // and without the token
		accepted(await signed(wa.refund));
		const { messages } = await inboxConv(wa.id);
		assert.equal(messages.filter((x) => x.body === wa.first.Body).length, 1);
		assert.equal(messages.filter((x) => x.body === wa.refund.Body).length, 1);
		assert.equal(messages.filter((x) => x.authorKind === 'customer').length, 2);
		assert.equal(messages.filter((x) => x.body === 'Order ORD-1000 is delivered.').length, 1);
		assert.equal(messages.filter((x) => x.authorKind === 'bot').length, 2);   // + the notice
		// Twilio holds exactly what we sent: two bot messages, one agent reply.
		assert.equal(heldBy(wa.ch, 'bot').length, 2);
		assert.equal(heldBy(wa.ch, 'sarah').length, 1);
		assert.equal(twil.state.tasks.filter((t) =>
			JSON.parse(t.attributes).conversationId === wa.id).length, 1);
		assert.equal(openai.requests.length, asked);
		const c = (await inboxConv(wa.id)).conversation;
		assert.equal(c.status, 'queued');
	});
});

/* ---- the web chat ------------------------------------------------------------ */

describe('a web chat with the assistant and an agent', { skip }, () => {
	const vis = {};     // a, b: {sessionId, token, es}; convId: a's conversation

	async function visitor() {
		const s = assertJson(await request(stack, { method: 'POST', path: '/api/webchat/sessions',
			headers: T1, body: { name: 'Visitor' } }), 201);
		s.es = await listen(`webchat-${s.sessionId}`, { headers: T1,
			path: `/api/events/webchat-${s.sessionId}?token=${encodeURIComponent(s.token)}` });
		assert.equal(s.es.status, 200);
		subs[`wc-${s.sessionId}`] = s.es;
		return s;
	}

	function say(s, body) {
		return request(stack, { method: 'POST', path: '/api/webchat/messages',
			headers: { ...T1, Authorization: `Bearer ${s.token}` }, body: { body } });
	}

	const onStream = (s, pred) => s.es.waitEvent('a visitor event', (e) =>
		e.json?.type === 'message.created' && pred(e.json.data.message ?? {}));

	test('5. answered live, handed off, answered by sarah without her name, ' +
		'and only on its own stream', async () => {
		vis.a = await visitor();
		vis.b = await visitor();
		// B's token does not open A's stream.
		const peek = await subscribe(stack, `webchat-${vis.a.sessionId}`, { headers: T1,
			path: `/api/events/webchat-${vis.a.sessionId}?token=${encodeURIComponent(vis.b.token)}` });
		peek.close();
		assert.equal(peek.status, 403);

		// The assistant answers on the visitor's own stream.
		openai.reset();
		let res = await say(vis.a, 'hello there');
		assert.equal(res.status, 201, res.text);
		const convId = res.json.message.conversationId;
		vis.convId = convId;
		const bot = await onStream(vis.a, (m) => m.authorKind === 'bot');
		assert.equal(bot.json.data.message.body, 'Echo: hello there');
		assert.equal(openai.requests.length, 1);

		// "I want a human": a handoff the agents see, decided without OpenAI.
		res = await say(vis.a, 'I want a human');
		assert.equal(res.status, 201, res.text);
		const h = await subs.queue.waitEvent('the web-chat handoff',
			about('conversation.handoff', convId));
		assert.equal(h.json.data.conversation.channel, 'webchat');
		assert.equal(h.json.data.conversation.status, 'queued');
		assert.equal(openai.requests.length, 1);
		await onStream(vis.a, (m) => m.authorKind === 'bot' && /agent/.test(m.body));
		// The web chat's handoff makes its TaskRouter task too.  Waited for
		// before the claim: a conversation claimed first needs no routing,
		// and conv.task rightly makes none (delivery.c).
		await waitFor('the web chat\'s task', () => twil.state.tasks.some((t) =>
			JSON.parse(t.attributes).conversationId === convId), SLOW);

		// sarah claims and answers; the visitor sees an agent, not who.
		const token = await claim(convId);
		const text = 'Hi, a human here. How can I help?';
		const m = await reply(convId, text);
		assert.equal(m.delivery, 'sent');          // no Twilio leg for the web chat
		const got = await onStream(vis.a, (x) => x.body === text);
		assert.equal(got.json.data.message.authorKind, 'agent');
		assert.equal(got.json.data.message.direction, 'outbound');
		assert.ok(!('author' in got.json.data.message), JSON.stringify(got.json));
		for (const e of vis.a.es.seen) {
			assert.ok(!e.data.includes(who.sarah.id), `sarah's id on the visitor stream: ${e.data}`);
			assert.ok(!/"sarah"/.test(e.data), `sarah's username on the visitor stream: ${e.data}`);
		}
		const hist = assertJson(await request(stack, { path: '/api/webchat/messages',
			headers: { ...T1, Authorization: `Bearer ${vis.a.token}` } }), 200);
		const mine = hist.messages.find((x) => x.body === text);
		assert.equal(mine?.authorKind, 'agent');
		assert.ok(!JSON.stringify(hist).includes('sarah'), 'sarah in the visitor\'s history');

		// B's stream: its own message arrives, nothing of A's before it.
		res = await say(vis.b, 'B is here');
		assert.equal(res.status, 201, res.text);
		await onStream(vis.b, (x) => x.body === 'B is here');
		for (const e of vis.b.es.seen) {
			assert.ok(!e.data.includes(text), 'sarah\'s reply reached another session');
			assert.ok(!e.data.includes(convId), 'another session saw A\'s conversation');
		}

		assertJson(await api(who.sarah, 'POST', '/api/tasks/release',
			{ conversationId: convId, token }), 200);
	});

	test('no job of either conversation was dead-lettered', () => {
		const dead = redis('LRANGE', 'nf:jobs:dead', '0', '-1').split('\n').filter(Boolean)
			.map((id) => redis('HGET', 'nf:jobs:data', id));
		for (const j of dead)
			for (const id of [wa.id, vis.convId])
				assert.ok(!j.includes(id), `dead-lettered: ${j}`);
	});
});

/* ---- a handoff whose task create times out --------------------------------- */

describe('a handoff while TaskRouter does not answer', { skip }, () => {
	// conv.task ends at an ambiguous task create (dead-lettered, never
	// resent, by design), but writes the AI flag first.
	test('the Twilio Conversation still learns the AI is off', async () => {
		const ch = sid('CH');
		const m = { ...inbound(ch, 'I want a human'), Author: 'whatsapp:+15550009876' };
		twil.fail({ on: 'task', stallMs: 4000 });          // > NONFLEX_TWILIO_TIMEOUT_MS
		accepted(await signed(m));
		const ev = await subs.queue.waitEvent('the handoff', (e) =>
			e.json?.type === 'conversation.handoff' &&
			e.json.data.conversation?.twilioSid === ch);
		assert.equal(ev.json.data.reason, 'human_requested');
		await waitFor('aiEnabled false at Twilio', () => JSON.parse(twil.state.convs.get(ch)
			?.attributes ?? '{}').aiEnabled === false, SLOW);
	});
});
