// tokens.test.mjs - Twilio Access Tokens through the real stack (issue 4
// item 4; RELIABILITY section 3, battery 35 and 41): every route's token is
// verified with the official `jsonwebtoken` package and the tenant's API
// secret and compared with the token twilio's own AccessToken class builds
// for the same grant; tenant2's tokens are signed with tenant2's secret
// (the TWILIO_API_SECRET fallback) and fail with tenant1's; identity rules
// (own by default, another only for an admin, audited refusal), TTL bounds,
// body validation, 401 without a session; the agent's workerSid set by an
// admin drives the TaskRouter grant; a minted token is no session token; a
// tenant lacking a setting gets 400 naming it; no token or secret in logs.
//
// SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import jwt from 'jsonwebtoken';
import twilio from 'twilio';

import { assertError, assertJson, stopChecked } from './lib/check.mjs';
import { request } from './lib/http.mjs';
import { loginDemo, seedStack } from './lib/session.mjs';
import { SECRET_ENV, SRCDIR, startStack } from './lib/stack.mjs';

const { AccessToken } = twilio.jwt;
const { ChatGrant, VideoGrant, VoiceGrant, TaskRouterGrant } = AccessToken;

// tenant1's Twilio settings come from infra/tenants.json; its secret from
// ${TENANT1_TWILIO_API_SECRET}; tenant2 has no secret of its own.
const T1 = {
	account: 'AC00000000000000000000000000000001', key: 'SK00000000000000000000000000000001',
	secret: SECRET_ENV.TENANT1_TWILIO_API_SECRET,
	service: 'IS00000000000000000000000000000001', workspace: 'WS00000000000000000000000000000001',
	app: 'AP00000000000000000000000000000001',
};
const T2 = {
	account: 'AC00000000000000000000000000000002', key: 'SK00000000000000000000000000000002',
	secret: SECRET_ENV.TWILIO_API_SECRET,
};
const WORKER = 'WK0123456789abcdef0123456789abcdef';
const TTL = 3600;              // NONFLEX_TWILIO_TOKEN_TTL_S default

let stack;                     // the shipped tenants file
let bare;                      // tenants lacking settings
const minted = [];             // every token the stacks handed out

function api(s, who, method, p, body) {
	const [, tenant] = who ? who.split('@') : [null, 'tenant1'];
	const headers = { 'X-Tenant-Id': tenant };
	if (who)
		headers.Authorization = `Bearer ${s.sess[who].token}`;
	return request(s, { method, path: p, headers, body });
}

function mint(s, who, kind, body = {}) {
	return api(s, who, 'POST', `/api/tokens/${kind}`, body);
}

// 200 {token, identity, ttl, expiresAt}: verified with secret and Twilio's
// header and claims checked; returns {header, payload, body}.
function verified(res, t, identity, ttl = TTL) {
	const body = assertJson(res, 200);
	assert.deepEqual(Object.keys(body).sort(), ['expiresAt', 'identity', 'token', 'ttl']);
	minted.push(body.token);
	const payload = jwt.verify(body.token, t.secret, { algorithms: ['HS256'],
		issuer: t.key, subject: t.account });
	const { header } = jwt.decode(body.token, { complete: true });
	assert.deepEqual(header, { alg: 'HS256', typ: 'JWT', cty: 'twilio-fpa;v=1' });
	assert.match(payload.iss, /^SK[0-9a-f]{32}$/);
	assert.match(payload.sub, /^AC[0-9a-f]{32}$/);
	assert.equal(payload.jti, `${payload.iss}-${payload.iat}`);
	assert.equal(payload.exp - payload.iat, ttl);
	assert.ok(Math.abs(payload.iat - Date.now() / 1000) < 30, `iat ${payload.iat}`);
	assert.equal(payload.nbf, undefined);
	assert.equal(payload.grants.identity, identity);
	assert.equal(body.identity, identity);
	assert.equal(body.ttl, ttl);
	assert.equal(Date.parse(body.expiresAt), payload.exp * 1000);
	return { header, payload, body };
}

// The same token built by twilio's AccessToken class: same header, same
// claim names, same grants.
function sameAsTwilio(got, t, identity, grant, ttl = TTL) {
	const ref = new AccessToken(t.account, t.key, t.secret, { identity, ttl });
	ref.addGrant(grant);
	const want = jwt.decode(ref.toJwt(), { complete: true });
	assert.deepEqual(got.header, want.header);
	assert.deepEqual(Object.keys(got.payload).sort(), Object.keys(want.payload).sort());
	assert.deepEqual(got.payload.grants, want.payload.grants);
	assert.equal(got.payload.exp - got.payload.iat, want.payload.exp - want.payload.iat);
}

// Login bodies are kept per stack by "user@tenant" (s.sess).
async function login(s, user, tenant) {
	s.sess ??= {};
	s.sess[`${user}@${tenant}`] = await loginDemo(s, tenant, user);
}

// A copy of the shipped tenants file without some settings.
function writeBareTenants(dir) {
	const doc = JSON.parse(fs.readFileSync(path.join(SRCDIR, 'infra', 'tenants.json'), 'utf8'));
	delete doc.tenant1.twilio.twimlAppSid;
	delete doc.tenant1.twilio.conversationsServiceSid;
	delete doc.tenant1.twilio.workspaceSid;
	delete doc.tenant2.twilio.apiSecret;     // and no TWILIO_API_SECRET fallback below
	fs.writeFileSync(path.join(dir, 'tenants.json'), JSON.stringify(doc, null, 2));
}

before(async () => {
	stack = await startStack({ env: { NONFLEX_LOGIN_IP_MAX: '1000' } });
	seedStack(stack);
	await login(stack, 'sarah', 'tenant1');
	await login(stack, 'admin', 'tenant1');
	await login(stack, 'sarah', 'tenant2');
	bare = await startStack({
		setup: writeBareTenants,
		env: (dir) => ({ TENANTS_FILE: path.join(dir, 'tenants.json'),
			TWILIO_API_SECRET: undefined, NONFLEX_LOGIN_IP_MAX: '1000' }),
	});
	seedStack(bare);
	await login(bare, 'sarah', 'tenant1');
	await login(bare, 'sarah', 'tenant2');
});

after(() => {
	try {
		// The tokens are credentials too: none may reach a log line.
		for (const s of [stack, bare]) {
			if (!s || s.stopped)
				continue;
			for (const f of fs.readdirSync(s.logDir)) {
				const text = fs.readFileSync(path.join(s.logDir, f), 'utf8');
				for (const t of minted)
					assert.ok(!text.includes(t.split('.')[2]), `a minted token is in ${f}`);
			}
		}
	} finally {
		stopChecked(stack, bare);
	}
});

describe('each route mints a Twilio token verified with the API secret', () => {
	test('conversations: chat grant with the Conversations service', async () => {
		const got = verified(await mint(stack, 'sarah@tenant1', 'conversations'), T1, 'sarah');
		assert.deepEqual(got.payload.grants,
			{ identity: 'sarah', chat: { service_sid: T1.service } });
		sameAsTwilio(got, T1, 'sarah', new ChatGrant({ serviceSid: T1.service }));
	});
	test('video: video grant for the room', async () => {
		const room = 'case-1234 «support»';
		const got = verified(await mint(stack, 'sarah@tenant1', 'video', { room }), T1, 'sarah');
		assert.deepEqual(got.payload.grants, { identity: 'sarah', video: { room } });
		sameAsTwilio(got, T1, 'sarah', new VideoGrant({ room }));
	});
	test('voice: incoming allowed, outgoing through the TwiML app', async () => {
		const got = verified(await mint(stack, 'sarah@tenant1', 'voice'), T1, 'sarah');
		assert.deepEqual(got.payload.grants.voice,
			{ incoming: { allow: true }, outgoing: { application_sid: T1.app } });
		sameAsTwilio(got, T1, 'sarah',
			new VoiceGrant({ incomingAllow: true, outgoingApplicationSid: T1.app }));
	});
	test('a token fails verification with another secret', async () => {
		const { token } = assertJson(await mint(stack, 'sarah@tenant1', 'voice'), 200);
		minted.push(token);
		assert.throws(() => jwt.verify(token, T2.secret, { algorithms: ['HS256'] }),
			/invalid signature/);
		assert.throws(() => jwt.verify(token, T1.secret, { algorithms: ['HS512'] }),
			/invalid algorithm/);
	});
});

describe('tenant2 signs with its own (fallback) secret', () => {
	test('tenant2 token: tenant2 key and account, TWILIO_API_SECRET', async () => {
		const got = verified(await mint(stack, 'sarah@tenant2', 'conversations'), T2, 'sarah');
		assert.equal(got.payload.grants.chat.service_sid, 'IS00000000000000000000000000000002');
		assert.throws(() => jwt.verify(got.body.token, T1.secret, { algorithms: ['HS256'] }),
			/invalid signature/);
	});
});

describe('identity: own by default, another only for an admin', () => {
	test('an agent asking for another identity -> 403, audited', async () => {
		const e = assertError(await mint(stack, 'sarah@tenant1', 'conversations',
			{ identity: 'sam' }), 403, 'forbidden');
		assert.equal(e.field, 'identity');
		const a = assertJson(await api(stack, 'admin@tenant1', 'GET',
			'/api/audit?event=twilio.token_denied'), 200);
		assert.ok(a.entries.some((x) => x.data?.identity === 'sam' &&
			x.data?.grant === 'conversations' && x.actor === stack.sess['sarah@tenant1'].agent.id),
		JSON.stringify(a.entries));
	});
	test('an agent may name itself', async () => {
		verified(await mint(stack, 'sarah@tenant1', 'video', { identity: 'sarah', room: 'r' }),
			T1, 'sarah');
	});
	test('an admin may mint for another identity', async () => {
		const got = verified(await mint(stack, 'admin@tenant1', 'conversations',
			{ identity: 'customer-42' }), T1, 'customer-42');
		sameAsTwilio(got, T1, 'customer-42', new ChatGrant({ serviceSid: T1.service }));
	});
	test('identity is bounded and has no control characters', async () => {
		for (const identity of ['a\u0001b', 'tab\there', 'x'.repeat(122), '', 'c1\u0085x', 42]) {
			const e = assertError(await mint(stack, 'admin@tenant1', 'voice', { identity }),
				400, 'invalid_field');
			assert.equal(e.field, 'identity');
		}
		verified(await mint(stack, 'admin@tenant1', 'voice', { identity: 'é'.repeat(60) }),
			T1, 'é'.repeat(60));
	});
	test('each mint is audited without the token', async () => {
		const a = assertJson(await api(stack, 'admin@tenant1', 'GET',
			'/api/audit?event=twilio.token&limit=200'), 200);
		const grants = new Set(a.entries.map((x) => x.data?.grant));
		for (const g of ['conversations', 'video', 'voice'])
			assert.ok(grants.has(g), `${g} not audited: ${[...grants]}`);
		assert.ok(a.entries.some((x) => x.data?.identity === 'customer-42'));
		const text = JSON.stringify(a);
		for (const t of minted)
			assert.ok(!text.includes(t.split('.')[2]), 'a token is in the audit log');
	});
});

describe('ttl and body validation', () => {
	test('a shorter ttl may be asked for', async () => {
		const got = verified(await mint(stack, 'sarah@tenant1', 'conversations', { ttl: 600 }),
			T1, 'sarah', 600);
		sameAsTwilio(got, T1, 'sarah', new ChatGrant({ serviceSid: T1.service }), 600);
	});
	test('a ttl above the configured one (or too short, or not a number) -> 400', async () => {
		for (const ttl of [86400, TTL + 1, 59, 0, -5, '600', 1.5]) {
			const e = assertError(await mint(stack, 'admin@tenant1', 'conversations', { ttl }),
				400, 'invalid_field');
			assert.equal(e.field, 'ttl');
		}
	});
	test('unknown fields -> 400 naming them', async () => {
		const cases = [['conversations', { identity: 'sarah', role: 'admin' }, 'role'],
			['voice', { grants: {} }, 'grants'],
			['video', { room: 'r', ttl: 60, workspace_sid: 'x' }, 'workspace_sid'],
			['taskrouter', { identity: 'sarah' }, 'identity'],
			['taskrouter', { role: 'supervisor' }, 'role']];
		for (const [kind, body, field] of cases) {
			const e = assertError(await mint(stack, 'sarah@tenant1', kind, body), 400,
				'unknown_field');
			assert.equal(e.field, field);
		}
	});
	test('video needs a bounded room', async () => {
		assert.equal(assertError(await mint(stack, 'sarah@tenant1', 'video'), 400,
			'missing_field').field, 'room');
		for (const room of ['', 'r'.repeat(129), 'a\nb', ['r']])
			assert.equal(assertError(await mint(stack, 'sarah@tenant1', 'video', { room }), 400,
				'invalid_field').field, 'room');
	});
	test('a body that is not a JSON object -> 400', async () => {
		for (const body of ['[]', '"x"', ''])
			assertError(await request(stack, { method: 'POST', path: '/api/tokens/voice', body,
				headers: { 'X-Tenant-Id': 'tenant1', 'Content-Type': 'application/json',
					Authorization: `Bearer ${stack.sess['sarah@tenant1'].token}` } }), 400, 'invalid_json');
	});
	test('without a session -> 401 on every route', async () => {
		for (const kind of ['conversations', 'video', 'voice', 'taskrouter']) {
			const res = await mint(stack, null, kind, kind === 'video' ? { room: 'r' } : {});
			assertError(res, 401, 'unauthorized');
			assert.match(res.headers['www-authenticate'] ?? '', /^Bearer/);
		}
	});
});

describe('taskrouter: the agent\'s own worker', () => {
	test('no workerSid -> 400 no_worker', async () => {
		assertError(await mint(stack, 'sarah@tenant1', 'taskrouter'), 400, 'no_worker');
	});
	test('workerSid is validated and admin-only', async () => {
		const id = stack.sess['sarah@tenant1'].agent.id;
		const bad = ['WS0123456789abcdef0123456789abcdef', 'WK123', `${WORKER}0`,
			'wk0123456789abcdef0123456789abcdef', 7, ''];
		for (const workerSid of bad)
			assert.equal(assertError(await api(stack, 'admin@tenant1', 'PATCH', `/api/agents/${id}`,
				{ workerSid }), 400, 'invalid_field').field, 'workerSid');
		assertError(await api(stack, 'sarah@tenant1', 'PATCH', `/api/agents/${id}`,
			{ workerSid: WORKER }), 403, 'forbidden');
	});
	test('after an admin sets it, the token carries the worker', async () => {
		const id = stack.sess['sarah@tenant1'].agent.id;
		const a = assertJson(await api(stack, 'admin@tenant1', 'PATCH', `/api/agents/${id}`,
			{ workerSid: WORKER }), 200);
		assert.equal(a.workerSid, WORKER);
		assert.equal(assertJson(await api(stack, 'admin@tenant1', 'GET', `/api/agents/${id}`),
			200).workerSid, WORKER);
		const got = verified(await mint(stack, 'sarah@tenant1', 'taskrouter'), T1, 'sarah');
		assert.deepEqual(got.payload.grants.task_router,
			{ workspace_sid: T1.workspace, worker_sid: WORKER, role: 'worker' });
		sameAsTwilio(got, T1, 'sarah', new TaskRouterGrant({ workspaceSid: T1.workspace,
			workerSid: WORKER, role: 'worker' }));
	});
	test('an agent created with a workerSid shows it', async () => {
		const a = assertJson(await api(stack, 'admin@tenant1', 'POST', '/api/agents',
			{ username: 'tok-worker', password: 'Correct-Horse-Battery-9', workerSid: WORKER }), 201);
		assert.equal(a.workerSid, WORKER);
	});
});

describe('a Twilio token is not a session', () => {
	test('Bearer <twilio token> on /api/agents/me -> 401', async () => {
		const { token } = assertJson(await mint(stack, 'admin@tenant1', 'conversations'), 200);
		minted.push(token);
		assertError(await request(stack, { path: '/api/agents/me',
			headers: { 'X-Tenant-Id': 'tenant1', Authorization: `Bearer ${token}` } }), 401,
		'invalid_token');
	});
});

describe('a tenant lacking a setting -> 400 naming it', () => {
	test('each grant names what it misses', async () => {
		const cases = [['voice', {}, 'twilio.twimlAppSid'],
			['conversations', {}, 'twilio.conversationsServiceSid'],
			['taskrouter', {}, 'twilio.workspaceSid']];
		for (const [kind, body, field] of cases) {
			const e = assertError(await mint(bare, 'sarah@tenant1', kind, body), 400,
				'twilio_not_configured');
			assert.equal(e.field, field);
			assert.ok(e.message.includes(field), e.message);
		}
		// The rest of tenant1 still works.
		verified(await mint(bare, 'sarah@tenant1', 'video', { room: 'r' }), T1, 'sarah');
	});
	test('no API secret at all -> 400 twilio.apiSecret', async () => {
		for (const kind of ['conversations', 'video', 'voice']) {
			const e = assertError(await mint(bare, 'sarah@tenant2', kind,
				kind === 'video' ? { room: 'r' } : {}), 400, 'twilio_not_configured');
			assert.equal(e.field, 'twilio.apiSecret');
		}
	});
});
