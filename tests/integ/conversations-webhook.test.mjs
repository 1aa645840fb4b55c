// conversations-webhook.test.mjs - Twilio Conversations' webhooks through
// the real stack (RELIABILITY battery 10-13, 17, 20), every request signed
// by the official `twilio` package with tenant1's auth token: a WhatsApp
// message is answered 200 at once, stored once with its conversation, and
// reaches an agent's EventSource on "queue" (never tenant2's); replays by
// MessageSid or I-Twilio-Idempotency-Token and 20 concurrent copies store
// one message and queue one "ai.reply" job; bot- and agent-authored
// messages are recorded and never answered; delivery updates out of order
// never move a message backwards; malformed payloads are 400 naming the
// field with nothing stored; unsigned ones 403; with Redis down the
// message is still accepted and its job waits in the store's outbox; with
// the store down a customer's message is spooled (200) and recorded once the
// store is back, while events that need the store are 503 (and everything
// is 503 without a spool).
//
// The stack's nonflex-jobs is paused (SIGSTOP) while these run, so the
// jobs a webhook queued are still in Redis to be counted (the AI job's
// handler is not what is tested here); it is resumed before the stop.  Its
// spool drainer (nonflex-spool, a process of its own) keeps recording what
// the webhooks spool, and every accepted event is awaited until it has.
//
// SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import twilio from 'twilio';

import { assertError, assertJson, stopChecked, waitFor } from './lib/check.mjs';
import { request } from './lib/http.mjs';
import { keepPidFile, killRedis, restartRedis } from './lib/redis.mjs';
import { loginDemo, seedStack } from './lib/session.mjs';
import { subscribe } from './lib/sse.mjs';
import { SECRET_ENV, spoolDrained, stackProcesses, startStack } from './lib/stack.mjs';
import { signedPost } from './lib/twilio-sign.mjs';

const T1_TOKEN = SECRET_ENV.TENANT1_TWILIO_AUTH_TOKEN;
const AC1 = 'AC00000000000000000000000000000001';
const IS1 = 'IS00000000000000000000000000000001';
const HOOK = '/webhooks/twilio/conversations';
const STATUS = '/webhooks/twilio/conversations/status';

let seq = 0;
// A SID of this kind no other test run uses.
function sid(prefix) {
	seq += 1;
	return `${prefix}${process.pid.toString(16).padStart(8, '0')}${seq.toString(16).padStart(24, '0')}`;
}

let phoneSeq = 0;
function phone() {
	phoneSeq += 1;
	return `+1555${String(process.pid % 1000).padStart(3, '0')}${String(phoneSeq).padStart(4, '0')}`;
}

// POST params to p, signed as Twilio signs them for the stack's PUBLIC_URL;
// an accepted event is then awaited until the spool drainer recorded it.
async function signed(stack, p, params, headers = {}) {
	const res = await signedPost(stack, p, params, { token: T1_TOKEN, headers });
	if (res.status === 200)
		await spoolDrained(stack);
	return res;
}

function messageAdded(extra = {}) {
	return { AccountSid: AC1, ChatServiceSid: IS1, EventType: 'onMessageAdded',
		ConversationSid: sid('CH'), MessageSid: sid('IM'), Author: `whatsapp:${phone()}`,
		Body: 'hola, quiero saber de mi pedido', Source: 'WHATSAPP', Index: '0',
		ParticipantSid: sid('MB'), DateCreated: new Date().toISOString(), RetryCount: '0',
		...extra };
}

// 200 {} within Twilio's patience (we aim for milliseconds).
function accepted(res) {
	assert.deepEqual(assertJson(res, 200), {});
	assert.ok(res.ms < 1000, `took ${Math.round(res.ms)} ms`);
}

function sql(stack, q) {
	return execFileSync('sqlite3', ['-cmd', '.timeout 5000', path.join(stack.stateDir, 'nonflex.db'),
		q], { encoding: 'utf8' }).trim();
}
const q = (s) => `'${String(s).replaceAll("'", "''")}'`;
const count = (stack, coll, where) =>
	Number(sql(stack, `SELECT count(*) FROM c_${coll} WHERE ${where}`));
const field = (k, v) => `json_extract(doc, '$.${k}') = ${q(v)}`;
function docs(stack, coll, where) {
	const out = sql(stack, `SELECT doc FROM c_${coll} WHERE ${where}`);
	return out === '' ? [] : out.split('\n').map((l) => JSON.parse(l));
}

function redis(stack, ...args) {
	return execFileSync('redis-cli', ['-s', path.join(stack.runDir, 'redis.sock'), ...args],
		{ encoding: 'utf8' }).trim();
}
// Queued jobs of a type (Redis, or the store's outbox), optionally for a message.
function jobs(stack, type, messageId) {
	const raw = redis(stack, 'HVALS', 'nf:jobs:data').split('\n').filter(Boolean)
		.map((l) => JSON.parse(l));
	const ob = docs(stack, 'outbox', field('type', type)).map((d) => JSON.parse(d.job));
	return [...raw, ...ob].filter((j) => j.type === type &&
		(messageId === undefined || j.payload?.messageId === messageId));
}

// The next event on sub whose data concerns conversation id (null if none in ms).
async function nextFor(sub, type, convId, ms = 3000) {
	const deadline = Date.now() + ms;
	for (;;) {
		const left = deadline - Date.now();
		if (left <= 0)
			return null;
		const ev = await sub.nextOrNull(left);
		if (ev === null)
			return null;
		if (ev.json?.type === type && ev.json?.data?.conversationId === convId)
			return ev.json;
	}
}

function jobsPids(stack) {
	return stackProcesses(stack).filter((p) => p.comm === 'nonflex-jobs').map((p) => p.pid);
}

describe('Conversations webhooks', () => {
	let stack;
	let sub1;
	let sub2;
	let paused = [];

	before(async () => {
		stack = await startStack();
		seedStack(stack);
		paused = jobsPids(stack);
		assert.ok(paused.length > 0, 'the stack runs nonflex-jobs');
		for (const pid of paused)
			process.kill(pid, 'SIGSTOP');
		const t1 = await loginDemo(stack, 'tenant1', 'sarah');
		const t2 = await loginDemo(stack, 'tenant2', 'sarah');
		sub1 = await subscribe(stack, 'queue', { headers: { 'X-Tenant-Id': 'tenant1',
			Authorization: `Bearer ${t1.token}` } });
		sub2 = await subscribe(stack, 'queue', { headers: { 'X-Tenant-Id': 'tenant2',
			Authorization: `Bearer ${t2.token}` } });
		assert.equal(sub1.status, 200);
		assert.equal(sub2.status, 200);
	});
	after(() => {
		sub1?.close();
		sub2?.close();
		for (const pid of paused) {
			try {
				process.kill(pid, 'SIGCONT');
			} catch {
				// already gone
			}
		}
		stopChecked(stack);
	});

	test('a known customer\'s number links the conversation to them, shown in their 360 view', async () => {
		const m = messageAdded({ Author: 'whatsapp:+15555551234' });   // Michael (seed)
		accepted(await signed(stack, HOOK, m));
		const conv = docs(stack, 'conversations', field('twilioSid', m.ConversationSid))[0];
		assert.equal(conv.customerId, 'CUST-1001');
		const { token } = await loginDemo(stack, 'tenant1', 'sarah');
		const view = assertJson(await request(stack, { path: '/api/customers/CUST-1001/360',
			headers: { 'X-Tenant-Id': 'tenant1', Authorization: `Bearer ${token}` } }), 200);
		assert.ok(view.conversations.some((c) => c.id === conv._id),
			JSON.stringify(view.conversations));
		// tenant2's Michael (same number, other tenant) does not see it.
		const t2 = await loginDemo(stack, 'tenant2', 'sarah');
		const other = assertJson(await request(stack, { path: '/api/customers/CUST-1001/360',
			headers: { 'X-Tenant-Id': 'tenant2', Authorization: `Bearer ${t2.token}` } }), 200);
		assert.ok(!other.conversations.some((c) => c.id === conv._id));
	});

	test('a WhatsApp message: 200 at once, stored once, seen live by tenant1 only', async () => {
		const m = messageAdded();
		accepted(await signed(stack, HOOK, m));
		const convs = docs(stack, 'conversations', field('twilioSid', m.ConversationSid));
		assert.equal(convs.length, 1);
		const conv = convs[0];
		assert.equal(conv.tenant, 'tenant1');
		assert.equal(conv.channel, 'whatsapp');
		assert.equal(conv.address, m.Author);
		assert.equal(conv.status, 'ai');
		assert.equal(conv.aiEnabled, true);
		assert.equal(conv.preview, m.Body);
		const msgs = docs(stack, 'messages', field('twilioSid', m.MessageSid));
		assert.equal(msgs.length, 1);
		assert.equal(msgs[0].conversationId, conv._id);
		assert.equal(msgs[0].direction, 'inbound');
		assert.equal(msgs[0].authorKind, 'customer');
		assert.equal(msgs[0].body, m.Body);
		assert.equal(msgs[0].delivery, 'received');
		const ev = await nextFor(sub1, 'message.created', conv._id);
		assert.ok(ev, 'the queue subscriber saw message.created');
		assert.equal(ev.data.message.body, m.Body);
		assert.equal(ev.data.message.id, msgs[0]._id);
		assert.equal(ev.data.conversation.id, conv._id);
		assert.equal(ev.data.conversation.tenant, undefined);
		assert.equal(jobs(stack, 'ai.reply', msgs[0]._id).length, 1);
		assert.equal(await nextFor(sub2, 'message.created', conv._id, 1000), null,
			'tenant2 saw tenant1\'s message');
		// It went through the spool, which health shows empty again.
		const h = assertJson(await request(stack, { path: '/api/health' }), 200);
		assert.deepEqual(h.jobs.spool, { status: 'up', pendingBytes: 0, oldestMs: 0, dead: 0 });
	});

	test('replays by MessageSid or idempotency token: one message, one job', async () => {
		const m = messageAdded();
		const tok = { 'I-Twilio-Idempotency-Token': `${sid('tk')}-a` };
		accepted(await signed(stack, HOOK, m, tok));
		accepted(await signed(stack, HOOK, m, tok));                     // same delivery
		accepted(await signed(stack, HOOK, m, { 'I-Twilio-Idempotency-Token': 'other-1' }));  // fallback URL
		accepted(await signed(stack, HOOK, m));                          // no token
		// The same token with another MessageSid is still the same delivery.
		accepted(await signed(stack, HOOK, { ...m, MessageSid: sid('IM') }, tok));
		const conv = docs(stack, 'conversations', field('twilioSid', m.ConversationSid))[0];
		assert.equal(count(stack, 'messages', field('conversationId', conv._id)), 1);
		const msg = docs(stack, 'messages', field('conversationId', conv._id))[0];
		assert.equal(jobs(stack, 'ai.reply', msg._id).length, 1);
	});

	test('20 concurrent copies of a new customer\'s first message: one of everything', async () => {
		const m = messageAdded();
		const all = await Promise.all(Array.from({ length: 20 }, () => signed(stack, HOOK, m)));
		for (const res of all)
			assert.deepEqual(assertJson(res, 200), {});
		assert.equal(count(stack, 'conversations', field('twilioSid', m.ConversationSid)), 1);
		const msgs = docs(stack, 'messages', field('twilioSid', m.MessageSid));
		assert.equal(msgs.length, 1);
		assert.equal(jobs(stack, 'ai.reply', msgs[0]._id).length, 1);
	});

	test('bot and agent messages are recorded, never answered', async () => {
		const first = messageAdded();
		accepted(await signed(stack, HOOK, first));
		const conv = docs(stack, 'conversations', field('twilioSid', first.ConversationSid))[0];
		const before = jobs(stack, 'ai.reply').length;
		const bot = messageAdded({ ConversationSid: first.ConversationSid, Author: 'bot',
			Body: 'Hola, ¿en qué puedo ayudarte?', Source: 'API' });
		accepted(await signed(stack, HOOK, bot));
		const agent = messageAdded({ ConversationSid: first.ConversationSid, Author: 'sarah',
			Body: 'Soy Sarah', Source: 'SDK' });
		accepted(await signed(stack, HOOK, agent));
		const prefixed = messageAdded({ ConversationSid: first.ConversationSid,
			Author: 'agent:sam', Body: 'Soy Sam', Source: 'SDK' });
		accepted(await signed(stack, HOOK, prefixed));
		// Our own message echoed back (its attributes carry our id): nothing new.
		const echo = messageAdded({ ConversationSid: first.ConversationSid, Author: 'bot',
			Attributes: JSON.stringify({ nonflex_message_id: '0123456789abcdef01234567' }) });
		accepted(await signed(stack, HOOK, echo));
		const stored = docs(stack, 'messages', field('conversationId', conv._id));
		assert.equal(stored.length, 4);
		const by = (s) => stored.find((x) => x.twilioSid === s);
		assert.equal(by(bot.MessageSid).authorKind, 'bot');
		assert.equal(by(bot.MessageSid).direction, 'outbound');
		assert.equal(by(bot.MessageSid).delivery, 'sent');
		assert.equal(by(agent.MessageSid).authorKind, 'agent');
		assert.equal(by(prefixed.MessageSid).authorKind, 'agent');
		assert.equal(by(echo.MessageSid), undefined);
		assert.equal(jobs(stack, 'ai.reply').length, before, 'a bot/agent message was answered');
	});

	test('delivery updates out of order never regress', async () => {
		const first = messageAdded();
		accepted(await signed(stack, HOOK, first));
		const bot = messageAdded({ ConversationSid: first.ConversationSid, Author: 'bot',
			Body: 'respuesta', Source: 'API' });
		accepted(await signed(stack, HOOK, bot));
		const state = () => docs(stack, 'messages', field('twilioSid', bot.MessageSid))[0].delivery;
		const upd = (status, p = HOOK) => signed(stack, p, { AccountSid: AC1,
			EventType: 'onDeliveryUpdated', ConversationSid: first.ConversationSid,
			MessageSid: bot.MessageSid, DeliveryReceiptSid: sid('DY'), Status: status,
			ErrorCode: status === 'failed' ? '30008' : '0' });
		accepted(await upd('delivered'));
		assert.equal(state(), 'delivered');
		accepted(await upd('sent'));
		assert.equal(state(), 'delivered');
		accepted(await upd('failed'));
		assert.equal(state(), 'delivered');
		accepted(await upd('read', STATUS));
		assert.equal(state(), 'read');
		accepted(await upd('delivered', STATUS));
		assert.equal(state(), 'read');
		// An unknown message's update is acknowledged and changes nothing.
		accepted(await signed(stack, STATUS, { AccountSid: AC1, MessageSid: sid('IM'),
			Status: 'delivered' }));
	});

	test('Twilio closing the conversation closes ours', async () => {
		const m = messageAdded();
		accepted(await signed(stack, HOOK, m));
		accepted(await signed(stack, HOOK, { AccountSid: AC1, EventType:
			'onConversationStateUpdated', ConversationSid: m.ConversationSid, StateFrom: 'active',
			StateTo: 'closed', Reason: 'TIMER' }));
		const conv = docs(stack, 'conversations', field('twilioSid', m.ConversationSid))[0];
		assert.equal(conv.status, 'closed');
		assert.equal(conv.disposition, 'twilio');
		// Unknown events are acknowledged and ignored.
		accepted(await signed(stack, HOOK, { AccountSid: AC1, EventType: 'onUserUpdated',
			ConversationSid: m.ConversationSid }));
	});

	test('malformed payloads are 400 naming the field, nothing stored', async () => {
		const before = count(stack, 'messages', '1');
		const convs = count(stack, 'conversations', '1');
		const bad = [
			[{ MessageSid: undefined }, 'missing_field', 'MessageSid'],
			[{ MessageSid: 'IM123' }, 'invalid_field', 'MessageSid'],
			[{ ConversationSid: sid('IM') }, 'invalid_field', 'ConversationSid'],
			[{ Author: undefined }, 'missing_field', 'Author'],
			[{ Body: undefined }, 'missing_field', 'Body'],
			[{ Media: 'not json' }, 'invalid_field', 'Media'],
			[{ Media: '[{"Sid":"nope"}]' }, 'invalid_field', 'Media'],
			[{ Attributes: '[1]' }, 'invalid_field', 'Attributes'],
			[{ EventType: undefined }, 'missing_field', 'EventType'],
		];
		for (const [change, code, name] of bad) {
			const p = messageAdded(change);
			for (const k of Object.keys(change))
				if (change[k] === undefined)
					delete p[k];
			const e = assertError(await signed(stack, HOOK, p), 400, code);
			assert.equal(e.field, name, JSON.stringify(change));
		}
		const e = assertError(await signed(stack, STATUS, { AccountSid: AC1,
			MessageSid: sid('IM') }), 400, 'missing_field');
		assert.equal(e.field, 'MessageStatus');
		assert.equal(count(stack, 'messages', '1'), before);
		assert.equal(count(stack, 'conversations', '1'), convs);
	});

	test('unsigned or wrongly signed webhooks are 403, nothing stored', async () => {
		const before = count(stack, 'messages', '1');
		const m = messageAdded();
		const body = new URLSearchParams(m).toString();
		const unsigned = await request(stack, { method: 'POST', path: HOOK, body,
			headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
		assert.equal(unsigned.status, 403);
		const forged = await request(stack, { method: 'POST', path: HOOK, body, headers: {
			'Content-Type': 'application/x-www-form-urlencoded',
			'X-Twilio-Signature': twilio.getExpectedTwilioSignature('not-the-token',
				`https://localhost:${stack.httpsPort}${HOOK}`, m) } });
		assert.equal(forged.status, 403);
		// tenant1's signature does not open tenant2's door.
		const cross = await signed(stack, HOOK, { ...m, AccountSid:
			'AC00000000000000000000000000000002' });
		assert.equal(cross.status, 403);
		assert.equal(count(stack, 'messages', '1'), before);
	});

	// Last: it takes Redis away (and brings it back).
	test('with Redis down a message is still accepted, its job kept in the outbox', async () => {
		const redis = await killRedis(stack);
		let restarted = false;
		try {
			const m = messageAdded();
			accepted(await signed(stack, HOOK, m));
			accepted(await signed(stack, HOOK, m));         // the replay is still deduplicated
			const msgs = docs(stack, 'messages', field('twilioSid', m.MessageSid));
			assert.equal(msgs.length, 1);
			const waiting = docs(stack, 'outbox', field('type', 'ai.reply'))
				.filter((d) => JSON.parse(d.job).payload?.messageId === msgs[0]._id);
			assert.equal(waiting.length, 1);
			const spawnError = restartRedis(stack, redis);
			restarted = true;
			await waitFor('redis answering', () => {
				assert.equal(spawnError(), null, `cannot restart ${redis.argv.join(' ')}`);
				try {
					return execFileSync('redis-cli', ['-s', redis.sock, 'PING'],
						{ encoding: 'utf8' }).trim() === 'PONG';
				} catch {
					return false;
				}
			}, 8000);
			keepPidFile(redis);
		} finally {
			if (!restarted)
				restartRedis(stack, redis);
		}
	});
});

describe('Conversations webhooks with the store down', () => {
	let spooled;
	let direct;

	before(async () => {
		// The SQLite file's directory does not exist yet: the store cannot open.
		spooled = await startStack({ waitHealthy: false, env: (dir) => ({
			STORE_URI: `sqlite://${path.join(dir, 'later', 'nonflex.db')}` }) });
		// Without a spool, and a directory where the SQLite file should be.
		direct = await startStack({ waitHealthy: false, env: (dir) => {
			fs.mkdirSync(path.join(dir, 'db-is-a-dir'), { recursive: true });
			return { STORE_URI: `sqlite://${path.join(dir, 'db-is-a-dir')}`,
				NONFLEX_SPOOL_DIR: 'off' };
		} });
	});
	after(() => stopChecked(spooled, direct));

	test('a customer\'s message is spooled (200) and recorded once the store is back',
		async () => {
			const m = messageAdded();
			const res = await signedPost(spooled, HOOK, m, { token: T1_TOKEN });
			accepted(res);
			accepted(await signedPost(spooled, HOOK, m, { token: T1_TOKEN }));   // a replay
			// What needs the store now is 503 with Retry-After, never a 2xx.
			const st = await signedPost(spooled, STATUS, { AccountSid: AC1,
				MessageSid: sid('IM'), Status: 'delivered' }, { token: T1_TOKEN });
			assertError(st, 503, 'store_unavailable');
			assert.ok(Number(st.headers['retry-after']) >= 1);
			// Health shows both copies waiting in the spool.
			const h = assertJson(await request(spooled, { path: '/api/health' }), 503);
			assert.equal(h.store.status, 'down');
			assert.equal(h.jobs.spool.status, 'up');
			assert.ok(h.jobs.spool.pendingBytes > 2 * m.Body.length, JSON.stringify(h.jobs));
			fs.mkdirSync(path.join(spooled.stateDir, 'later'));
			const db = path.join(spooled.stateDir, 'later', 'nonflex.db');
			const stored = () => execFileSync('sqlite3', ['-cmd', '.timeout 5000', db,
				`SELECT count(*) FROM c_messages WHERE ${field('twilioSid', m.MessageSid)}`],
			{ encoding: 'utf8' }).trim();
			await waitFor('the spooled message recorded', () => {
				try {
					return stored() === '1';
				} catch {
					return false;   // no table yet
				}
			}, 20000);
			await spoolDrained(spooled);
			assert.equal(stored(), '1');
		});

	test('without a spool: 503 with Retry-After, never a 2xx', async () => {
		for (const p of [HOOK, STATUS]) {
			const res = await signedPost(direct, p, p === HOOK ? messageAdded() :
				{ AccountSid: AC1, MessageSid: sid('IM'), Status: 'delivered' },
			{ token: T1_TOKEN });
			assertError(res, 503, 'store_unavailable');
			assert.ok(Number(res.headers['retry-after']) >= 1);
			assert.ok(res.ms < 1500, `took ${Math.round(res.ms)} ms`);
		}
	});
});
