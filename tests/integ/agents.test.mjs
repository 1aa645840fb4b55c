// agents.test.mjs - agent management through the real stack (issue 3 items
// 6-9; RELIABILITY battery 42-45 and 47-49): the role column of every
// agent and audit route (agent 403, supervisor read-only, admin), presence
// changes (own, someone else's, bad values, unknown ids), tenant isolation
// by id, mass assignment, the last-admin rule, the audit log and its NDJSON
// export, and the `nonflexctl agent` commands against the stack's store.
//
// SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { assertError as assertErrorCode, assertJson, stopChecked } from './lib/check.mjs';
import { request } from './lib/http.mjs';
import { BUILDDIR, SRCDIR, sleep, startStack } from './lib/stack.mjs';

let stack;
const tok = {};          // tenant1 tokens by username, plus admin2 (tenant2)
const ids = {};          // tenant1 agent ids by username

// The error envelope with this status (and code, when given).
function assertError(res, status, code) {
	return assertErrorCode(res, status, code ?? res.json?.error?.code);
}

function ctlEnv() {
	return { ...stack.env, STORE_URI: `sqlite://${stack.stateDir}/nonflex.db`,
		TENANTS_FILE: path.join(SRCDIR, 'infra', 'tenants.json') };
}

// Run nonflexctl with stdin text; returns {status, stdout, stderr}.
function ctl(args, input = '') {
	const r = spawnSync(path.join(BUILDDIR, 'nonflexctl'), args, {
		env: ctlEnv(), input, encoding: 'utf8', cwd: SRCDIR });
	return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

// Waits out nginx's own login limit (429 rate_limited), as auth.test.mjs.
async function login(username, password, tenant = 'tenant1') {
	for (;;) {
		const res = await request(stack, { method: 'POST', path: '/api/agents/login',
			headers: { 'X-Tenant-Id': tenant }, body: { username, password } });
		if (res.status !== 429 || res.json?.error?.code !== 'rate_limited')
			return res;
		await sleep(300);
	}
}

function api(who, method, p, body, tenant = 'tenant1') {
	const headers = { 'X-Tenant-Id': tenant };
	if (who)
		headers.Authorization = `Bearer ${tok[who]}`;
	return request(stack, { method, path: p, headers, body });
}

before(async () => {
	stack = await startStack({ env: { NONFLEX_LOGIN_IP_MAX: '1000' } });
	execFileSync(path.join(BUILDDIR, 'nonflexctl'), ['seed'],
		{ env: ctlEnv(), stdio: 'pipe', cwd: SRCDIR });
	for (const u of ['sarah', 'sam', 'admin']) {
		const res = await login(u, 'password123');
		assert.equal(res.status, 200, res.text);
		tok[u] = res.json.token;
		ids[u] = res.json.agent.id;
	}
	const res = await login('admin', 'password123', 'tenant2');
	assert.equal(res.status, 200, res.text);
	tok.admin2 = res.json.token;
});

after(() => stopChecked(stack));

describe('role column of every agent and audit route', () => {
	const routes = () => [
		['GET', '/api/agents', undefined, 'read'],
		['GET', `/api/agents/${ids.sarah}`, undefined, 'read'],
		['POST', '/api/agents', { username: 'role-probe', password: 'x' }, 'write'],
		['PATCH', `/api/agents/${ids.sarah}`, { tenant: 'x' }, 'write'],
		['DELETE', '/api/agents/0123456789abcdef01234567', undefined, 'write'],
		['GET', '/api/audit', undefined, 'write'],
		['GET', '/api/audit/export', undefined, 'write'],
	];
	test('no token -> 401 everywhere', async () => {
		for (const [m, p, b] of routes())
			assertError(await api(null, m, p, b), 401, undefined);
	});
	test('agent -> 403 everywhere', async () => {
		for (const [m, p, b] of routes())
			assertError(await api('sarah', m, p, b), 403, undefined);
	});
	test('supervisor reads agents, nothing else', async () => {
		for (const [m, p, b, kind] of routes()) {
			const res = await api('sam', m, p, b);
			if (kind === 'read')
				assert.equal(res.status, 200, `${m} ${p}: ${res.text}`);
			else
				assertError(res, 403, undefined);
		}
	});
	test('admin passes the role check everywhere', async () => {
		const want = [200, 200, 400, 400, 404, 200, 200];
		const got = [];
		for (const [m, p, b] of routes())
			got.push((await api('admin', m, p, b)).status);
		assert.deepEqual(got, want);
	});
});

describe('presence: POST /api/agents/:id/status', () => {
	test('own status -> 200, visible to the admin', async () => {
		const res = await api('sarah', 'POST', `/api/agents/${ids.sarah}/status`,
			{ status: 'available' });
		assert.deepEqual(assertJson(res, 200), { id: ids.sarah, status: 'available' });
		const a = assertJson(await api('admin', 'GET', `/api/agents/${ids.sarah}`), 200);
		assert.equal(a.status, 'available');
		assert.equal(a.password, undefined);
		assert.ok(!JSON.stringify(a).includes('$y$'));
	});
	test("someone else's status -> 403 (agent and supervisor)", async () => {
		assertError(await api('sarah', 'POST', `/api/agents/${ids.sam}/status`,
			{ status: 'busy' }), 403, 'forbidden');
		assertError(await api('sam', 'POST', `/api/agents/${ids.sarah}/status`,
			{ status: 'busy' }), 403, 'forbidden');
	});
	test('any other value -> 400 naming status', async () => {
		for (const status of ['away', 'BUSY', '', 1, null, { $ne: '' }, ['busy']]) {
			const res = await api('sarah', 'POST', `/api/agents/${ids.sarah}/status`, { status });
			assertError(res, 400, undefined);
			assert.equal(res.json.error.field, 'status');
		}
	});
	test('unknown or malformed id -> 404 for the admin', async () => {
		assertError(await api('admin', 'POST', '/api/agents/0123456789abcdef01234567/status',
			{ status: 'busy' }), 404, 'agent_not_found');
		assertError(await api('admin', 'POST', '/api/agents/nope/status',
			{ status: 'busy' }), 404, 'agent_not_found');
	});
	test('the admin may set anyone; the level is readable', async () => {
		assertJson(await api('admin', 'POST', `/api/agents/${ids.sarah}/status`,
			{ status: 'offline' }), 200);
		const l = assertJson(await api('sarah', 'GET', `/api/agents/${ids.sarah}/level`), 200);
		assert.equal(l.id, ids.sarah);
		assert.equal(typeof l.level, 'number');
		assertError(await api('sarah', 'GET', `/api/agents/${ids.sam}/level`), 403, 'forbidden');
	});
});

describe('tenant isolation (battery 42)', () => {
	test("tenant2's admin gets 404 for tenant1's agent ids", async () => {
		const id = ids.sarah;
		for (const [m, p, b] of [
			['GET', `/api/agents/${id}`], ['PATCH', `/api/agents/${id}`, { level: 9 }],
			['DELETE', `/api/agents/${id}`], ['POST', `/api/agents/${id}/status`, { status: 'busy' }],
			['GET', `/api/agents/${id}/level`]])
			assertError(await api('admin2', m, p, b, 'tenant2'), 404, 'agent_not_found');
		const list = assertJson(await api('admin2', 'GET', '/api/agents', undefined, 'tenant2'), 200);
		assert.ok(!list.agents.some((a) => a.id === id));
		const a = assertJson(await api('admin', 'GET', `/api/agents/${id}`), 200);
		assert.equal(a.level !== 9 && a.username, 'sarah');
	});
	test("a tenant1 token used for tenant2 -> 403", async () => {
		assertError(await api('admin', 'GET', '/api/agents', undefined, 'tenant2'), 403, undefined);
	});
});

describe('admin management', () => {
	let bob;
	test('create: 201 without hash; weak password and bad fields -> 400; duplicate -> 409', async () => {
		const res = await api('admin', 'POST', '/api/agents', { username: 'bob', password:
			'a long enough secret', skills: ['sales'], languages: ['en'], level: 3, name: 'Bob' });
		const a = assertJson(res, 201);
		assert.equal(a.username, 'bob');
		assert.deepEqual(a.roles, ['agent']);
		assert.ok(!res.text.includes('password') && !res.text.includes('secret'));
		bob = a.id;
		let r = await api('admin', 'POST', '/api/agents', { username: 'bob2', password: 'password123' });
		assertError(r, 400, 'weak_password');
		assert.equal(r.json.error.field, 'password');
		r = await api('admin', 'POST', '/api/agents', { username: 'Bad Name', password: 'a long enough secret' });
		assertError(r, 400, 'invalid_field');
		assert.equal(r.json.error.field, 'username');
		r = await api('admin', 'POST', '/api/agents', { username: 'bob3', password: 'a long enough secret',
			roles: ['root'] });
		assert.equal(r.json.error.field, 'roles');
		assertError(await api('admin', 'POST', '/api/agents', { username: 'bob',
			password: 'another long secret' }), 409, 'username_taken');
		const l = await login('bob', 'a long enough secret');
		assert.equal(l.status, 200, l.text);
	});
	test('list filters by status and skill, paginates', async () => {
		const s = assertJson(await api('sam', 'GET', '/api/agents?skill=sales'), 200);
		assert.deepEqual(s.agents.map((a) => a.username).sort(), ['bob', 'sarah']);
		const p1 = assertJson(await api('admin', 'GET', '/api/agents?limit=2'), 200);
		assert.equal(p1.agents.length, 2);
		assert.ok(p1.next);
		const p2 = assertJson(await api('admin', 'GET',
			`/api/agents?limit=2&cursor=${encodeURIComponent(p1.next)}`), 200);
		assert.ok(p2.agents.every((a) => !p1.agents.some((b) => b.id === a.id)));
		assertError(await api('admin', 'GET', '/api/agents?limit=-1'), 400, 'invalid_query');
		assertError(await api('admin', 'GET', '/api/agents?status=away'), 400, 'invalid_query');
		assertError(await api('admin', 'GET', '/api/agents?cursor=abc'), 400, 'invalid_cursor');
	});
	test('PATCH: mass assignment -> 400 and nothing changes (battery 43)', async () => {
		const before = assertJson(await api('admin', 'GET', `/api/agents/${bob}`), 200);
		for (const body of [{ tenant: 'tenant2' }, { _id: '0123456789abcdef01234567' },
			{ createdAt: '2000-01-01T00:00:00.000Z' }, { level: 5, role: 'admin' },
			{ username: 'eve' }, { level: { $gt: 0 } }])
			assertError(await api('admin', 'PATCH', `/api/agents/${bob}`, body), 400, undefined);
		assert.deepEqual(assertJson(await api('admin', 'GET', `/api/agents/${bob}`), 200), before);
	});
	test('PATCH: level, skills, roles, password reset; disable ends sessions', async () => {
		const a = assertJson(await api('admin', 'PATCH', `/api/agents/${bob}`,
			{ level: 7, skills: ['billing'], roles: ['agent', 'supervisor'],
				password: 'the new bob secret' }), 200);
		assert.equal(a.level, 7);
		assert.deepEqual(a.roles, ['agent', 'supervisor']);
		assert.equal((await login('bob', 'a long enough secret')).status, 401);
		const l = await login('bob', 'the new bob secret');
		assert.equal(l.status, 200);
		tok.bob = l.json.token;
		assertJson(await api('bob', 'GET', '/api/agents'), 200);
		assertJson(await api('admin', 'PATCH', `/api/agents/${bob}`, { disabled: true }), 200);
		assertError(await api('bob', 'GET', '/api/agents'), 401, undefined);
	});
	test('the last enabled admin cannot be demoted, disabled or deleted', async () => {
		const id = ids.admin;
		assertError(await api('admin', 'PATCH', `/api/agents/${id}`, { roles: ['agent'] }),
			409, 'last_admin');
		assertError(await api('admin', 'PATCH', `/api/agents/${id}`, { disabled: true }),
			409, 'last_admin');
		assertError(await api('admin', 'DELETE', `/api/agents/${id}`), 409, 'last_admin');
		assertJson(await api('admin', 'GET', '/api/agents'), 200);
	});
	test('DELETE -> 204, then 404', async () => {
		const r = await api('admin', 'DELETE', `/api/agents/${bob}`);
		assert.equal(r.status, 204);
		assertError(await api('admin', 'GET', `/api/agents/${bob}`), 404, 'agent_not_found');
		assertError(await api('admin', 'DELETE', `/api/agents/${bob}`), 404, 'agent_not_found');
	});
});

describe('audit log', () => {
	test('changes are listed newest first with filters', async () => {
		const all = assertJson(await api('admin', 'GET', '/api/audit?limit=200'), 200);
		const events = all.entries.map((e) => e.event);
		for (const ev of ['agent.status', 'agent.create', 'agent.update', 'agent.delete'])
			assert.ok(events.includes(ev), `${ev} missing from ${events}`);
		const ats = all.entries.map((e) => e.at);
		assert.deepEqual([...ats].sort().reverse(), ats);
		assert.ok(!JSON.stringify(all).includes('secret'));
		assert.ok(all.entries.every((e) => e.tenant === undefined));
		const st = assertJson(await api('admin', 'GET',
			`/api/audit?event=agent.status&actor=${ids.sarah}`), 200);
		assert.ok(st.entries.length >= 1);
		assert.ok(st.entries.every((e) => e.event === 'agent.status' && e.actor === ids.sarah));
		assert.deepEqual(st.entries.at(-1).data.to, 'available');
		const future = assertJson(await api('admin', 'GET', '/api/audit?since=2999-01-01'), 200);
		assert.equal(future.entries.length, 0);
		assertError(await api('admin', 'GET', '/api/audit?since=tomorrow'), 400, 'invalid_query');
		const t2 = assertJson(await api('admin2', 'GET', '/api/audit?event=agent.status',
			undefined, 'tenant2'), 200);
		assert.equal(t2.entries.length, 0);
	});
	test('cursor pagination walks every entry once', async () => {
		const seen = new Set();
		let cursor = '';
		for (let i = 0; i < 100; i++) {
			const q = `/api/audit?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
			const page = assertJson(await api('admin', 'GET', q), 200);
			for (const e of page.entries) {
				assert.ok(!seen.has(e.id));
				seen.add(e.id);
			}
			if (!page.next)
				break;
			cursor = page.next;
		}
		const all = assertJson(await api('admin', 'GET', '/api/audit?limit=200'), 200);
		assert.equal(seen.size, all.entries.length);
	});
	test('NDJSON export: one object per line, same filters', async () => {
		const res = await api('admin', 'GET', '/api/audit/export?event=agent.create');
		assert.equal(res.status, 200);
		assert.match(res.headers['content-type'], /^application\/x-ndjson; charset=utf-8$/);
		const lines = res.text.split('\n');
		assert.equal(lines.pop(), '');
		assert.ok(lines.length >= 1);
		for (const l of lines)
			assert.equal(JSON.parse(l).event, 'agent.create');
	});
});

describe('nonflexctl agent', () => {
	test('add reads the password from stdin and the agent can log in', async () => {
		let r = ctl(['agent', 'add', '--tenant', 'tenant1', '--role', 'supervisor',
			'--skill', 'support', '--password-stdin', 'carol'], 'carol secret phrase\n');
		assert.equal(r.status, 0, r.stderr);
		assert.match(r.stdout, /created agent carol/);
		const l = await login('carol', 'carol secret phrase');
		assert.equal(l.status, 200, l.text);
		assert.deepEqual(l.json.agent.roles, ['supervisor']);
		r = ctl(['agent', 'add', '--tenant', 'tenant1', 'dave'], 'password123\n');
		assert.equal(r.status, 1);
		assert.match(r.stderr, /weak_password/);
		r = ctl(['agent', 'add', '--tenant', 'tenant1', 'dave', 'dave-password-here']);
		assert.equal(r.status, 2);
		r = ctl(['agent', 'add', '--tenant', 'nope', 'dave'], 'dave secret phrase\n');
		assert.equal(r.status, 1);
		r = ctl(['agent', 'add', '--tenant', 'tenant1', 'carol'], 'carol secret phrase\n');
		assert.equal(r.status, 1);
		assert.match(r.stderr, /username_taken/);
	});
	test('list shows the tenant\'s agents without hashes', () => {
		const r = ctl(['agent', 'list', '--tenant', 'tenant1']);
		assert.equal(r.status, 0, r.stderr);
		for (const u of ['carol', 'sarah', 'sam', 'admin'])
			assert.match(r.stdout, new RegExp(`\\b${u}\\b`));
		assert.ok(!r.stdout.includes('$y$') && !r.stdout.includes('$2'));
	});
	test('passwd and disable take effect for login; audited as nonflexctl', async () => {
		let r = ctl(['agent', 'passwd', '--tenant', 'tenant1', 'carol'], 'carol second phrase\n');
		assert.equal(r.status, 0, r.stderr);
		assert.equal((await login('carol', 'carol secret phrase')).status, 401);
		assert.equal((await login('carol', 'carol second phrase')).status, 200);
		r = ctl(['agent', 'disable', '--tenant', 'tenant1', 'carol']);
		assert.equal(r.status, 0, r.stderr);
		assert.equal((await login('carol', 'carol second phrase')).status, 401);
		r = ctl(['agent', 'disable', '--tenant', 'tenant1', 'admin']);
		assert.equal(r.status, 1);
		assert.match(r.stderr, /last_admin/);
		const a = assertJson(await api('admin', 'GET', '/api/audit?actor=nonflexctl'), 200);
		assert.deepEqual(new Set(a.entries.map((e) => e.event)),
			new Set(['agent.create', 'agent.update']));
		assert.ok(!JSON.stringify(a).includes('phrase'));
	});
});
