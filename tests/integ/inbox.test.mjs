// inbox.test.mjs - the agent inbox through the real stack (issue 6;
// RELIABILITY battery 4, 16-20, 42, 45, 47-48 and 56): listing with
// filters, ordering and paging; a conversation with its messages; claim
// (token, 409 already_claimed for a second agent, live event on the
// claimer's topic); replies only by the holder or a supervisor, stored
// and handed to nonflex-jobs; release needs the claim's token; close and
// transfer; a claim whose lock expired is taken over and the stale
// holder can no longer release or reply (fencing by the stored version);
// 401 without a session and 404 for another tenant's ids on every route.
//
// Conversations are written straight into the stack's SQLite store, so
// each test controls status, priority and times exactly; everything after
// that goes through the HTTP API.
//
// SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { assertError, assertJson, stopChecked } from './lib/check.mjs';
import { request } from './lib/http.mjs';
import { loginDemo, seedStack } from './lib/session.mjs';
import { subscribe } from './lib/sse.mjs';
import { sleep, startStack } from './lib/stack.mjs';

let stack;
const tok = {};          // tokens by username (tenant1), plus admin2 (tenant2)
const ids = {};          // agent ids by username

let seq = 0;
function hex(n, width) {
	return n.toString(16).padStart(width, '0');
}
// A 24-hex id no other run of this file uses.
function newId() {
	seq += 1;
	return `c0${hex(process.pid % 0xffffff, 6)}${hex(seq, 16)}`;
}
function chSid() {
	seq += 1;
	return `CH${hex(process.pid, 8)}${hex(seq, 24)}`;
}
function iso(ms) {
	return new Date(ms).toISOString();
}

function sql(s, q) {
	return execFileSync('sqlite3', ['-cmd', '.timeout 5000', path.join(s.stateDir, 'nonflex.db'), q],
		{ encoding: 'utf8' }).trim();
}
const quote = (o) => `'${JSON.stringify(o).replaceAll("'", "''")}'`;

// Store a conversation (fields override the defaults); returns its id.
function insertConv(s, fields = {}, tenant = 'tenant1') {
	const id = newId();
	const now = Date.now();
	const address = fields.address ?? `whatsapp:+1555${String(seq).padStart(7, '0')}`;
	const doc = { _id: id, tenant, channel: 'whatsapp', address, customerId: null,
		status: 'queued', assignedTo: null, aiEnabled: false, taskSid: null,
		twilioSid: chSid(), priority: 0, preview: 'hello', createdAt: iso(now - 60000),
		updatedAt: iso(now), lastMessageAt: iso(now), queuedAt: iso(now - 1000), version: 1,
		...fields };
	if (doc.status !== 'closed')
		doc.openKey = `${doc.channel}:${doc.address}`;
	sql(s, `INSERT INTO c_conversations (id, tenant, doc) VALUES ('${id}', '${tenant}', ${quote(doc)})`);
	return id;
}

function insertMessage(s, convId, body, at) {
	const id = newId();
	const doc = { _id: id, tenant: 'tenant1', conversationId: convId, direction: 'inbound',
		authorKind: 'customer', author: 'whatsapp:+15550000000', body, media: [],
		delivery: 'received', attempts: 0, createdAt: iso(at), updatedAt: iso(at) };
	sql(s, `INSERT INTO c_messages (id, tenant, doc) VALUES ('${id}', 'tenant1', ${quote(doc)})`);
	return id;
}

function api(who, method, p, body, s = stack) {
	const headers = { 'X-Tenant-Id': who === 'admin2' ? 'tenant2' : 'tenant1' };
	if (who)
		headers.Authorization = `Bearer ${tok[who]}`;
	return request(s, { method, path: p, headers, body });
}

const claim = (who, id, s) => api(who, 'POST', '/api/tasks/claim', { conversationId: id }, s);
const release = (who, id, token, extra = {}, s = stack) =>
	api(who, 'POST', '/api/tasks/release', { conversationId: id, token, ...extra }, s);
const reply = (who, id, body, extra = {}, s = stack) =>
	api(who, 'POST', `/api/conversations/${id}/messages`, { body, ...extra }, s);
const getConv = async (who, id) =>
	assertJson(await api(who, 'GET', `/api/conversations/${id}`), 200).conversation;

function redisCli(s, ...args) {
	const r = spawnSync('redis-cli', ['-s', path.join(s.runDir, 'redis.sock'), ...args],
		{ encoding: 'utf8', timeout: 5000 });
	assert.equal(r.status, 0, `redis-cli ${args.join(' ')}: ${r.stderr}`);
	return r.stdout.split('\n').filter(Boolean);
}

// Create an agent with the agent role only (admin API); its id.
async function createAgent(s, username) {
	const res = await api('admin', 'POST', '/api/agents', { username,
		password: 'password123-Strong!', name: username, roles: ['agent'] }, s);
	return assertJson(res, 201).id;
}

async function loginAs(s, username, password = 'password123', tenant = 'tenant1') {
	for (;;) {
		const res = await request(s, { method: 'POST', path: '/api/agents/login',
			headers: { 'X-Tenant-Id': tenant }, body: { username, password } });
		if (res.status !== 429)
			return assertJson(res, 200);
		await sleep(300);
	}
}

async function signIn(s) {
	seedStack(s);
	for (const u of ['sarah', 'sam', 'admin']) {
		const b = await loginAs(s, u);
		tok[u] = b.token;
		ids[u] = b.agent.id;
	}
	tok.admin2 = (await loginDemo(s, 'tenant2', 'admin')).token;
	for (const u of ['bob', 'carol']) {
		ids[u] = await createAgent(s, u);
		tok[u] = (await loginAs(s, u, 'password123-Strong!')).token;
	}
	// The first list creates the collections and their indexes.
	assertJson(await api('sarah', 'GET', '/api/conversations', undefined, s), 200);
}

before(async () => {
	stack = await startStack({ env: { NONFLEX_LOGIN_IP_MAX: '1000' } });
	await signIn(stack);
});

after(() => stopChecked(stack));

describe('listing', () => {
	let list;
	before(() => {
		const t = Date.now() - 3600000;
		sql(stack, "DELETE FROM c_conversations");
		list = {
			old: insertConv(stack, { lastMessageAt: iso(t + 1000), queuedAt: iso(t + 1000) }),
			mid: insertConv(stack, { lastMessageAt: iso(t + 2000), queuedAt: iso(t + 3000),
				channel: 'sms', address: '+15550001111' }),
			urgent: insertConv(stack, { lastMessageAt: iso(t + 3000), queuedAt: iso(t + 4000),
				priority: 5 }),
			ai: insertConv(stack, { status: 'ai', aiEnabled: true, lastMessageAt: iso(t + 4000) }),
			mine: insertConv(stack, { status: 'assigned', assignedTo: ids.sarah,
				lastMessageAt: iso(t + 5000) }),
			bobs: insertConv(stack, { status: 'assigned', assignedTo: ids.bob,
				lastMessageAt: iso(t + 6000) }),
		};
	});

	test('newest activity first, every tenant1 conversation, none of tenant2', async () => {
		const other = insertConv(stack, {}, 'tenant2');
		const b = assertJson(await api('sarah', 'GET', '/api/conversations'), 200);
		assert.deepEqual(b.conversations.map((c) => c.id),
			[list.bobs, list.mine, list.ai, list.urgent, list.mid, list.old]);
		assert.equal(b.next, null);
		for (const c of b.conversations)
			assert.equal(c.tenant, undefined, 'views carry no tenant');
		const b2 = assertJson(await api('admin2', 'GET', '/api/conversations'), 200);
		assert.deepEqual(b2.conversations.map((c) => c.id), [other]);
		sql(stack, `DELETE FROM c_conversations WHERE id = '${other}'`);
	});

	test('a page is 25 conversations unless asked; views carry no internal field', async () => {
		const t0 = Date.parse('2026-01-01T00:00:00Z');
		const ids2 = [];
		for (let i = 0; i < 30; i++)
			ids2.push(insertConv(stack, { lastMessageAt: iso(t0 + i * 1000) }, 'tenant2'));
		try {
			let b = assertJson(await api('admin2', 'GET', '/api/conversations'), 200);
			assert.equal(b.conversations.length, 25);
			assert.notEqual(b.next, null);
			assert.deepEqual(b.conversations.map((c) => c.id), ids2.slice(5).reverse());
			for (const c of b.conversations) {
				for (const k of ['tenant', '_id', 'openKey'])
					assert.ok(!(k in c), `${k} in a view: ${JSON.stringify(c)}`);
				for (const k of ['customerId', 'assignedTo', 'taskSid', 'twilioSid'])
					assert.ok(k in c, `${k} missing from a view: ${JSON.stringify(c)}`);
			}
			b = assertJson(await api('admin2', 'GET', '/api/conversations?limit=50'), 200);
			assert.equal(b.conversations.length, 30);
			assert.equal(b.next, null);
		} finally {
			sql(stack, `DELETE FROM c_conversations WHERE tenant = 'tenant2'`);
		}
	});

	test('status=queued: highest priority first, then waiting longest first', async () => {
		const b = assertJson(await api('sarah', 'GET', '/api/conversations?status=queued'), 200);
		assert.deepEqual(b.conversations.map((c) => c.id), [list.urgent, list.old, list.mid]);
	});

	test('channel and assignedTo filters', async () => {
		let b = assertJson(await api('sarah', 'GET', '/api/conversations?channel=sms'), 200);
		assert.deepEqual(b.conversations.map((c) => c.id), [list.mid]);
		b = assertJson(await api('sarah', 'GET', '/api/conversations?assignedTo=me'), 200);
		assert.deepEqual(b.conversations.map((c) => c.id), [list.mine]);
		b = assertJson(await api('sarah', 'GET', `/api/conversations?assignedTo=${ids.bob}`), 200);
		assert.deepEqual(b.conversations.map((c) => c.id), [list.bobs]);
		b = assertJson(await api('sarah', 'GET', '/api/conversations?status=ai&channel=whatsapp'),
			200);
		assert.deepEqual(b.conversations.map((c) => c.id), [list.ai]);
	});

	test('pages follow the cursor to the end without repeats', async () => {
		const seen = [];
		let next = null;
		do {
			const q = `/api/conversations?limit=4${next ? `&cursor=${encodeURIComponent(next)}` : ''}`;
			const b = assertJson(await api('sarah', 'GET', q), 200);
			assert.ok(b.conversations.length <= 4);
			seen.push(...b.conversations.map((c) => c.id));
			next = b.next;
		} while (next);
		assert.deepEqual(seen, [list.bobs, list.mine, list.ai, list.urgent, list.mid, list.old]);
	});

	test('bad filters and paging -> 400 naming the parameter', async () => {
		for (const [q, field, code] of [['status=open', 'status', 'invalid_query'],
			['channel=fax', 'channel', 'invalid_query'],
			['assignedTo=someone', 'assignedTo', 'invalid_query'],
			['limit=0', 'limit', 'invalid_query'], ['limit=1000', 'limit', 'invalid_query'],
			['cursor=%24%24%24', 'cursor', 'invalid_cursor'],
			['status=queued&cursor=00', 'cursor', 'invalid_cursor']]) {
			const err = assertError(await api('sarah', 'GET', `/api/conversations?${q}`), 400, code);
			assert.equal(err.field, field, q);
		}
	});

	test('the queue pages by priority and waiting time too', async () => {
		const seen = [];
		let next = null;
		do {
			const q = `/api/conversations?status=queued&limit=1${next ? `&cursor=${next}` : ''}`;
			const b = assertJson(await api('sarah', 'GET', q), 200);
			seen.push(...b.conversations.map((c) => c.id));
			next = b.next;
		} while (next);
		assert.deepEqual(seen, [list.urgent, list.old, list.mid]);
	});
});

describe('one conversation', () => {
	test('newest messages first page, oldest first, then older by cursor', async () => {
		const id = insertConv(stack);
		const t = Date.now() - 10000;
		for (let i = 0; i < 5; i++)
			insertMessage(stack, id, `m${i}`, t + i * 1000);
		const other = insertConv(stack);
		insertMessage(stack, other, 'elsewhere', t);
		const b = assertJson(await api('sam', 'GET', `/api/conversations/${id}?limit=3`), 200);
		assert.equal(b.conversation.id, id);
		assert.equal(b.conversation.tenant, undefined);
		assert.deepEqual(b.messages.map((m) => m.body), ['m2', 'm3', 'm4']);
		assert.equal(typeof b.before, 'string');
		const b2 = assertJson(await api('sam', 'GET',
			`/api/conversations/${id}?limit=3&before=${encodeURIComponent(b.before)}`), 200);
		assert.deepEqual(b2.messages.map((m) => m.body), ['m0', 'm1']);
		assert.equal(b2.before, null);
		assertError(await api('sam', 'GET', `/api/conversations/${id}?before=xyz`), 400,
			'invalid_cursor');
	});

	test('unknown, malformed and other tenant ids -> 404', async () => {
		const t2 = insertConv(stack, {}, 'tenant2');
		for (const id of ['ffffffffffffffffffffffff', 'nothex', t2])
			assertError(await api('sarah', 'GET', `/api/conversations/${id}`), 404,
				'conversation_not_found');
		assertJson(await api('admin2', 'GET', `/api/conversations/${t2}`), 200);
	});
});

describe('claim, reply, release', () => {
	test('claim -> token; the claimer\'s topic gets the conversation; second agent 409',
		async () => {
			const id = insertConv(stack, { status: 'ai', aiEnabled: true });
			const sub = await subscribe(stack, `agent-${ids.sarah}`, { headers: {
				'X-Tenant-Id': 'tenant1', Authorization: `Bearer ${tok.sarah}` } });
			try {
				assert.equal(sub.status, 200);
				const b = assertJson(await claim('sarah', id), 200);
				assert.match(b.token, /^[0-9a-f]{32}\.\d+$/);
				assert.equal(b.conversation.id, id);
				assert.equal(b.conversation.status, 'assigned');
				assert.equal(b.conversation.assignedTo, ids.sarah);
				assert.equal(b.conversation.aiEnabled, false);
				let ev;
				do
					ev = await sub.next(5000);
				while (ev.json?.data?.conversationId !== id);
				assert.equal(ev.json.data.conversation.status, 'assigned');
				assert.equal(ev.json.data.conversation.assignedTo, ids.sarah);
			} finally {
				sub.close();
			}
			const err = assertError(await claim('bob', id), 409, 'already_claimed');
			assert.match(err.message, /sarah/);
			assert.equal((await getConv('bob', id)).assignedTo, ids.sarah);
		});

	test('reply: non-holder agent 403, holder stored and handed to the delivery job',
		async () => {
			const id = insertConv(stack);
			const { token } = assertJson(await claim('sarah', id), 200);
			assertError(await reply('bob', id, 'not mine'), 403, 'not_claim_holder');
			const res = await reply('sarah', id, 'Hello from Sarah', { token });
			const m = assertJson(res, 201).message;
			assert.equal(m.body, 'Hello from Sarah');
			assert.equal(m.direction, 'outbound');
			assert.equal(m.authorKind, 'agent');
			assert.equal(m.author, 'sarah');
			assert.equal(m.delivery, 'queued');
			// The conv.deliver job was queued (still waiting or retrying: Twilio
			// is offline in this stack).
			const jobs = redisCli(stack, 'HVALS', 'nf:jobs:data').map((j) => JSON.parse(j));
			assert.ok(jobs.some((j) => j.type === 'conv.deliver' && j.tenant === 'tenant1' &&
				j.payload?.messageId === m.id), JSON.stringify(jobs).slice(0, 500));
			const b = assertJson(await api('bob', 'GET', `/api/conversations/${id}`), 200);
			assert.deepEqual(b.messages.map((x) => x.body), ['Hello from Sarah']);
			// Nothing is stored for the refused reply; bad bodies name the field.
			for (const body of [{ body: '' }, { body: 'x'.repeat(4097) }, { body: 5 }, {}])
				assert.equal(assertJson(await api('sarah', 'POST',
					`/api/conversations/${id}/messages`, body), 400).error.field, 'body');
			assert.equal(assertJson(await api('sarah', 'POST', `/api/conversations/${id}/messages`,
				{ body: 'x', tenant: 'tenant2' }), 400).error.code, 'unknown_field');
		});

	test('release: wrong token refused, right token -> queued or back to the AI', async () => {
		const id = insertConv(stack);
		const { token } = assertJson(await claim('sarah', id), 200);
		const forged = `${'0'.repeat(32)}.${token.split('.')[1]}`;
		assertError(await release('sarah', id, forged), 409, 'claim_lost');
		assertError(await release('bob', id, token), 409, 'claim_lost');
		assert.equal(assertJson(await release('sarah', id, 'garbage'), 400).error.field, 'token');
		assert.equal(assertJson(await api('sarah', 'POST', '/api/tasks/release',
			{ conversationId: id }), 400).error.field, 'token');
		assert.equal((await getConv('sarah', id)).status, 'assigned');
		let c = assertJson(await release('sarah', id, token), 200).conversation;
		assert.equal(c.status, 'queued');
		assert.equal(c.assignedTo, null);
		assert.equal(c.aiEnabled, false);
		// The token is spent: a second release is refused.
		assertError(await release('sarah', id, token), 409, 'claim_lost');
		const again = assertJson(await claim('bob', id), 200);
		c = assertJson(await release('bob', id, again.token, { aiEnabled: true }), 200).conversation;
		assert.equal(c.status, 'ai');
		assert.equal(c.aiEnabled, true);
	});

	test('claim input: 400 naming conversationId, 404 unknown, 409 closed', async () => {
		assert.equal(assertJson(await api('sarah', 'POST', '/api/tasks/claim', {}), 400)
			.error.field, 'conversationId');
		assert.equal(assertJson(await claim('sarah', 'abc'), 400).error.field, 'conversationId');
		assertError(await claim('sarah', 'ffffffffffffffffffffffff'), 404, 'conversation_not_found');
		const closed = insertConv(stack, { status: 'closed' });
		assertError(await claim('sarah', closed), 409, 'conversation_closed');
	});
});

describe('close and transfer', () => {
	test('close: non-holder 403, holder closes, then replies and claims are 409', async () => {
		const id = insertConv(stack);
		assertJson(await claim('sarah', id), 200);
		assertError(await api('bob', 'POST', `/api/conversations/${id}/close`,
			{ disposition: 'resolved' }), 403, 'not_claim_holder');
		assert.equal(assertJson(await api('sarah', 'POST', `/api/conversations/${id}/close`,
			{ disposition: 'x'.repeat(65) }), 400).error.field, 'disposition');
		const c = assertJson(await api('sarah', 'POST', `/api/conversations/${id}/close`,
			{ disposition: 'resolved', note: 'refund issued' }), 200).conversation;
		assert.equal(c.status, 'closed');
		assert.equal(c.disposition, 'resolved');
		assertError(await reply('sarah', id, 'too late'), 409, 'conversation_closed');
		assertError(await claim('bob', id), 409, 'conversation_closed');
		assertError(await api('sarah', 'POST', `/api/conversations/${id}/close`, {}), 409,
			'conversation_closed');
		// The lock went with the close.
		assert.deepEqual(redisCli(stack, 'EXISTS', `nf:tenant1:lock:claim:${id}`), ['0']);
	});

	test('transfer to another agent, who claims it; the old token is dead', async () => {
		const id = insertConv(stack);
		const { token } = assertJson(await claim('sarah', id), 200);
		assertError(await api('bob', 'POST', `/api/conversations/${id}/transfer`,
			{ agentId: ids.carol }), 403, 'not_claim_holder');
		assertError(await api('sarah', 'POST', `/api/conversations/${id}/transfer`,
			{ agentId: 'ffffffffffffffffffffffff' }), 404, 'agent_not_found');
		for (const body of [{}, { agentId: ids.bob, queue: true }, { agentId: 'bob' }])
			assertJson(await api('sarah', 'POST', `/api/conversations/${id}/transfer`, body), 400);
		let c = assertJson(await api('sarah', 'POST', `/api/conversations/${id}/transfer`,
			{ agentId: ids.bob }), 200).conversation;
		assert.equal(c.status, 'assigned');
		assert.equal(c.assignedTo, ids.bob);
		assertError(await release('sarah', id, token), 409, 'claim_lost');
		assertError(await reply('sarah', id, 'still here?'), 403, 'not_claim_holder');
		const b = assertJson(await claim('bob', id), 200);
		assert.equal(b.conversation.assignedTo, ids.bob);
		assertJson(await reply('bob', id, 'Bob here', { token: b.token }), 201);
		c = assertJson(await api('bob', 'POST', `/api/conversations/${id}/transfer`,
			{ queue: true }), 200).conversation;
		assert.equal(c.status, 'queued');
		assert.equal(c.assignedTo, null);
		assertError(await release('bob', id, b.token), 409, 'claim_lost');
		assertJson(await claim('carol', id), 200);
	});

	test('a supervisor replies, transfers and closes without holding it', async () => {
		const id = insertConv(stack);
		assertJson(await claim('sarah', id), 200);
		assertJson(await reply('sam', id, 'Supervisor here'), 201);
		const c = assertJson(await api('sam', 'POST', `/api/conversations/${id}/transfer`,
			{ agentId: ids.bob }), 200).conversation;
		assert.equal(c.assignedTo, ids.bob);
		assertJson(await api('sam', 'POST', `/api/conversations/${id}/close`, {}), 200);
	});

	test('the audit log records claim, release, transfer and close, without tokens',
		async () => {
			for (const ev of ['claim', 'release', 'transfer', 'close']) {
				const res = await api('admin', 'GET', `/api/audit?event=${ev}&limit=200`);
				const entries = assertJson(res, 200).entries;
				assert.ok(entries.length > 0, `no ${ev} in the audit log`);
				for (const x of entries) {
					assert.match(x.data.conversationId, /^[0-9a-f]{24}$/);
					assert.doesNotMatch(JSON.stringify(x), /[0-9a-f]{32}\.\d+/,
						'a claim token in the audit log');
				}
			}
		});
});

describe('access', () => {
	test('every route: 401 without a session', async () => {
		const id = insertConv(stack);
		for (const [m, p, body] of [['GET', '/api/conversations'],
			['GET', `/api/conversations/${id}`],
			['POST', `/api/conversations/${id}/messages`, { body: 'x' }],
			['POST', `/api/conversations/${id}/close`, {}],
			['POST', `/api/conversations/${id}/transfer`, { queue: true }],
			['POST', '/api/tasks/claim', { conversationId: id }],
			['POST', '/api/tasks/release', { conversationId: id, token: `${'a'.repeat(32)}.1` }]]) {
			const res = await api(null, m, p, body);
			assert.equal(res.status, 401, `${m} ${p}: ${res.text}`);
		}
		assert.equal((await getConv('sarah', id)).status, 'queued');
	});

	test("every route: another tenant's conversation is 404 and unchanged", async () => {
		const id = insertConv(stack);
		const { token } = assertJson(await claim('sarah', id), 200);
		for (const [m, p, body] of [['GET', `/api/conversations/${id}`],
			['POST', `/api/conversations/${id}/messages`, { body: 'x' }],
			['POST', `/api/conversations/${id}/close`, {}],
			['POST', `/api/conversations/${id}/transfer`, { queue: true }],
			['POST', '/api/tasks/claim', { conversationId: id }],
			['POST', '/api/tasks/release', { conversationId: id, token }]])
			assertError(await api('admin2', m, p, body), 404, 'conversation_not_found');
		const c = await getConv('sarah', id);
		assert.equal(c.status, 'assigned');
		assert.equal(c.assignedTo, ids.sarah);
		// Nor can a tenant1 conversation go to a tenant2 agent.
		const a2 = assertJson(await api('admin2', 'GET', '/api/agents'), 200).agents[0].id;
		assertError(await api('sarah', 'POST', `/api/conversations/${id}/transfer`,
			{ agentId: a2 }), 404, 'agent_not_found');
	});
});

describe('fencing: a claim whose lock expired (battery 56)', () => {
	let s2;
	before(async () => {
		s2 = await startStack({ env: { NONFLEX_LOGIN_IP_MAX: '1000', NONFLEX_CLAIM_TTL_S: '10' } });
		await signIn(s2);
	});
	after(() => stopChecked(s2));

	test('taken over by another agent: the stale holder cannot release or reply', async () => {
		const id = insertConv(s2);
		const a = assertJson(await claim('sarah', id, s2), 200);
		assert.equal(a.ttl, 10);
		assertError(await claim('bob', id, s2), 409, 'already_claimed');
		await sleep(10500);
		const b = assertJson(await claim('bob', id, s2), 200);
		assert.equal(b.conversation.assignedTo, ids.bob);
		assert.ok(b.conversation.version > a.conversation.version);
		assertError(await release('sarah', id, a.token, {}, s2), 409, 'claim_lost');
		assertError(await reply('sarah', id, 'stale', {}, s2), 403, 'not_claim_holder');
		const c = assertJson(await api('bob', 'GET', `/api/conversations/${id}`, undefined, s2), 200);
		assert.equal(c.conversation.assignedTo, ids.bob);
		assert.equal(c.conversation.status, 'assigned');
		assert.deepEqual(c.messages, []);
		assertJson(await release('bob', id, b.token, {}, s2), 200);
	});
});
