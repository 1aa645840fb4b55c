// events.test.mjs - live events end to end (issue 2 items 4 and 11): an
// EventSource subscriber at /api/events/<topic> (nginx + nchan, authorized
// by a FastCGI subrequest) receives an event a worker publishes directly and
// one published by nonflex-jobs; events stay within their tenant and topic;
// nobody can publish through the public port.  Subscribing needs a
// signed-in agent of the tenant (issue 3): bearer token or session cookie.
//
// SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { assertError, assertJson, stopChecked } from './lib/check.mjs';
import { request } from './lib/http.mjs';
import { subscribe } from './lib/sse.mjs';
import { BUILDDIR, SRCDIR, startStack } from './lib/stack.mjs';

let stack;
const subs = [];

const tokens = {};

async function loginAs(tenant) {
	const res = await request(stack, { method: 'POST', path: '/api/agents/login',
		headers: { 'X-Tenant-Id': tenant }, body: { username: 'sarah', password: 'password123' } });
	assert.equal(res.status, 200, `login: ${res.text}`);
	return res.json;
}

before(async () => {
	stack = await startStack();
	execFileSync(path.join(BUILDDIR, 'nonflexctl'), ['seed'], {
		env: { ...stack.env, STORE_URI: `sqlite://${stack.stateDir}/nonflex.db`,
			TENANTS_FILE: path.join(SRCDIR, 'infra', 'tenants.json') },
		cwd: SRCDIR, stdio: 'pipe',
	});
	for (const t of ['tenant1', 'tenant2'])
		tokens[t] = (await loginAs(t)).token;
});

after(() => {
	for (const s of subs)
		s.close();
	stopChecked(stack);
});

let seq = 0;
// A topic no other test uses, so buffered messages never cross tests.
const topic = (what) => `t-${what}-${process.pid}-${++seq}`;

// Subscribe as sarah of the tenant the headers name (X-Tenant-Id or Host).
async function sub(t, headers = {}, auth = true) {
	const tenant = headers['X-Tenant-Id'] ?? headers.Host?.split('.')[0];
	if (auth && tokens[tenant])
		headers = { ...headers, Authorization: `Bearer ${tokens[tenant]}` };
	const s = await subscribe(stack, t, { headers });
	subs.push(s);
	return s;
}

async function publish(tenant, t, type, data, via = 'direct') {
	const res = await request(stack, {
		method: 'POST', path: '/api/dev/events', headers: { 'X-Tenant-Id': tenant },
		body: { topic: t, type, data, via },
	});
	assert.ok(res.status >= 200 && res.status < 300,
		`publish answered ${res.status}: ${res.text.slice(0, 300)}`);
	assertJson(res, res.status);
	return res;
}

function assertEvent(ev, type, data) {
	assert.ok(ev.json, `event data is not JSON: ${ev.data}`);
	assert.equal(ev.json.type, type);
	assert.deepEqual(ev.json.data, data);
	assert.ok(typeof ev.json.at === 'string' && !Number.isNaN(Date.parse(ev.json.at)),
		`"at" is not an ISO-8601 time: ${JSON.stringify(ev.json.at)}`);
	assert.ok(Math.abs(Date.parse(ev.json.at) - Date.now()) < 60000, 'at is not now');
	assert.deepEqual(Object.keys(ev.json).sort(), ['at', 'data', 'type']);
}

describe('subscribe and receive', () => {
	test('the subscription answers an event stream', async () => {
		const s = await sub(topic('hdr'), { 'X-Tenant-Id': 'tenant1' });
		assert.equal(s.status, 200);
		assert.match(s.headers['content-type'] ?? '', /^text\/event-stream/);
		s.close();
	});

	test('an event published directly by a worker arrives', async () => {
		const t = topic('direct');
		const s = await sub(t, { 'X-Tenant-Id': 'tenant1' });
		assert.equal(s.status, 200);
		const data = { n: 1, text: 'hé ✓', nested: { list: [1, 2] } };
		await publish('tenant1', t, 'test.direct', data);
		assertEvent(await s.next(5000), 'test.direct', data);
	});

	test('an event published through a nonflex-jobs job arrives', async () => {
		const t = topic('job');
		const s = await sub(t, { 'X-Tenant-Id': 'tenant1' });
		assert.equal(s.status, 200);
		const data = { via: 'job', k: 7 };
		await publish('tenant1', t, 'test.job', data, 'job');
		assertEvent(await s.next(10000), 'test.job', data);
	});

	test('several events arrive in order', async () => {
		const t = topic('order');
		const s = await sub(t, { 'X-Tenant-Id': 'tenant2' });
		for (let i = 0; i < 5; i++)
			await publish('tenant2', t, 'test.seq', { i });
		for (let i = 0; i < 5; i++)
			assertEvent(await s.next(5000), 'test.seq', { i });
	});

	test('the Host label selects the tenant for subscribers too', async () => {
		const t = topic('host');
		const s = await sub(t, { Host: 'tenant2.example.com' });
		assert.equal(s.status, 200);
		await publish('tenant2', t, 'test.host', { ok: true });
		assertEvent(await s.next(5000), 'test.host', { ok: true });
	});
});

describe('isolation', () => {
	test("tenant1's event reaches tenant1 only", async () => {
		const t = topic('iso');
		const s1 = await sub(t, { 'X-Tenant-Id': 'tenant1' });
		const s2 = await sub(t, { 'X-Tenant-Id': 'tenant2' });
		assert.equal(s1.status, 200);
		assert.equal(s2.status, 200);
		await publish('tenant1', t, 'test.iso', { for: 'tenant1' });
		assertEvent(await s1.next(5000), 'test.iso', { for: 'tenant1' });
		const leaked = await s2.nextOrNull(1500);
		assert.equal(leaked, null, `tenant2 received tenant1's event: ${leaked?.data}`);
		// tenant2's subscription does work: its own event arrives, and only it.
		await publish('tenant2', t, 'test.iso', { for: 'tenant2' });
		assertEvent(await s2.next(5000), 'test.iso', { for: 'tenant2' });
		assert.equal(await s1.nextOrNull(1000), null);
	});

	test('an event on one topic does not reach another topic', async () => {
		const a = topic('a');
		const b = topic('b');
		const sa = await sub(a, { 'X-Tenant-Id': 'tenant1' });
		const sb = await sub(b, { 'X-Tenant-Id': 'tenant1' });
		await publish('tenant1', a, 'test.topic', { on: 'a' });
		assertEvent(await sa.next(5000), 'test.topic', { on: 'a' });
		assert.equal(await sb.nextOrNull(1500), null);
	});
});

describe('refusals', () => {
	test('no session cannot subscribe (401)', async () => {
		const s = await sub(topic('anon'), { 'X-Tenant-Id': 'tenant1' }, false);
		assert.equal(s.status, 401);
		s.close();
	});
	test('a session of another tenant cannot subscribe (403)', async () => {
		const s = await sub(topic('cross'), { 'X-Tenant-Id': 'tenant2',
			Authorization: `Bearer ${tokens.tenant1}` }, false);
		assert.equal(s.status, 403);
		s.close();
	});
	test('a session cookie subscribes', async () => {
		const s = await sub(topic('cookie'), { 'X-Tenant-Id': 'tenant1',
			Cookie: `nf_session=${tokens.tenant1}` }, false);
		assert.equal(s.status, 200);
		s.close();
	});
	test('unknown tenant cannot subscribe', async () => {
		const s = await sub(topic('unknown'), { 'X-Tenant-Id': 'nosuchtenant' });
		assert.ok(s.status >= 400 && s.status < 500, `status ${s.status}`);
		s.close();
	});
	test('malformed tenant id cannot subscribe', async () => {
		const s = await sub(topic('bad'), { 'X-Tenant-Id': 'Bad_ID!' });
		assert.ok(s.status >= 400 && s.status < 500, `status ${s.status}`);
		s.close();
	});
	test('an invalid topic is refused', async () => {
		for (const bad of ['UPPER', 'a.b', 'x'.repeat(65), '%2e%2e']) {
			const s = await sub(bad, { 'X-Tenant-Id': 'tenant1' });
			assert.ok(s.status >= 400 && s.status < 500, `topic ${bad}: status ${s.status}`);
			s.close();
		}
	});
	test('nobody can publish through the public port', async () => {
		const t = topic('nopub');
		const s = await sub(t, { 'X-Tenant-Id': 'tenant1' });
		assert.equal(s.status, 200);
		for (const tls of [false, true]) {
			for (const path of [`/api/events/${t}`, `/api/events/tenant1.${t}`]) {
				const res = await request(stack, {
					method: 'POST', path, tls,
					headers: { 'X-Tenant-Id': 'tenant1', 'Content-Type': 'application/json' },
					body: '{"type":"forged","at":"x","data":{}}',
				});
				assert.ok(res.status >= 400, `POST ${path} answered ${res.status}`);
			}
		}
		assert.equal(await s.nextOrNull(1500), null, 'a forged event reached the subscriber');
	});
	test('dev publish validates its input', async () => {
		const res = await request(stack, {
			method: 'POST', path: '/api/dev/events', headers: { 'X-Tenant-Id': 'tenant1' },
			body: { topic: 'BAD TOPIC', type: 'x', data: {}, via: 'direct' },
		});
		assert.equal(res.status, 400);
		assertError(res, 400, res.json?.error?.code);
		const res2 = await request(stack, {
			method: 'POST', path: '/api/dev/events', headers: { 'X-Tenant-Id': 'tenant1' },
			body: { topic: 'ok', type: 'x', data: {}, via: 'carrier-pigeon' },
		});
		assert.equal(res2.status, 400);
		assertError(res2, 400, res2.json?.error?.code);
	});
});
