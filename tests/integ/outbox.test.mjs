// outbox.test.mjs - nothing is lost while Redis is down (RELIABILITY
// battery 55, jobs): with the stack's Redis killed, an event sent through
// a job is accepted (202, deferred) into the store's outbox, health shows
// it waiting, and once Redis is back nonflex-jobs drains the outbox and the
// subscriber receives the event exactly once.
//
// SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { assertJson, stopChecked, waitFor } from './lib/check.mjs';
import { request } from './lib/http.mjs';
import { keepPidFile, killRedis, restartRedis } from './lib/redis.mjs';
import { subscribe } from './lib/sse.mjs';
import { loginDemo, seedStack } from './lib/session.mjs';
import { startStack } from './lib/stack.mjs';

let stack;
const subs = [];

let token;

before(async () => {
	stack = await startStack();
	seedStack(stack);
	token = (await loginDemo(stack, 'tenant1')).token;
});

after(() => {
	for (const s of subs)
		s.close();
	stopChecked(stack);
});

async function sub(topic) {
	const s = await subscribe(stack, topic, { headers: { 'X-Tenant-Id': 'tenant1',
		Authorization: `Bearer ${token}` } });
	subs.push(s);
	assert.equal(s.status, 200);
	return s;
}

const viaJob = (topic, data) => request(stack, {
	method: 'POST', path: '/api/dev/events', headers: { 'X-Tenant-Id': 'tenant1' },
	body: { topic, type: 'test.outbox', data, via: 'job' }, timeout: 5000,
});

const health = () => request(stack, { path: '/api/health', timeout: 3000 });

// Every log line of the stack that contains text.
function logsWith(text) {
	const out = [];
	for (const f of fs.readdirSync(stack.logDir))
		for (const l of fs.readFileSync(path.join(stack.logDir, f), 'utf8').split('\n'))
			if (l.includes(text))
				out.push(`${f}: ${l}`);
	return out;
}

describe('jobs while Redis is down', () => {
	test('with Redis up a job is queued at once (deferred false)', async () => {
		const topic = `ob-up-${process.pid}`;
		const s = await sub(topic);
		const body = assertJson(await viaJob(topic, { n: 0 }), 202);
		assert.equal(body.queued, true);
		assert.equal(body.deferred, false);
		assert.match(body.id, /^[0-9a-f]{24}$/);
		const ev = await s.next(10000);
		assert.equal(ev.json?.type, 'test.outbox');
		assert.deepEqual(ev.json?.data, { n: 0 });
		const h = assertJson(await health(), 200);
		assert.equal(h.jobs?.outbox, 0);
	});

	test('are kept in the outbox and delivered exactly once after the restart', async () => {
		const topic = `ob-down-${process.pid}`;
		const marker = `payload-marker-${process.pid}-${Date.now()}`;
		const s = await sub(topic);
		const redis = await killRedis(stack);
		let restarted = false;
		try {
			const ids = [];
			for (let i = 1; i <= 2; i++) {
				const res = await viaJob(topic, { i, marker });
				const body = assertJson(res, 202);
				assert.equal(body.queued, true);
				assert.equal(body.deferred, true);
				assert.match(body.id, /^[0-9a-f]{24}$/);
				assert.ok(res.ms < 1500, `deferred enqueue took ${Math.round(res.ms)} ms`);
				ids.push(body.id);
			}
			assert.notEqual(ids[0], ids[1]);
			const h = await health();
			const hj = assertJson(h, 503);
			assert.equal(hj.status, 'degraded');
			assert.equal(hj.redis?.status, 'down');
			assert.equal(hj.jobs?.outbox, 2);
			// Nothing can be delivered yet.
			assert.equal(await s.nextOrNull(1000), null);

			const spawnError = restartRedis(stack, redis);
			restarted = true;
			await waitFor('redis answering', async () => {
				assert.equal(spawnError(), null, `cannot restart ${redis.argv.join(' ')}`);
				return (await health()).json?.redis?.status === 'up';
			}, 8000);
			keepPidFile(redis);

			const got = [];
			for (let k = 0; k < 2; k++) {
				const ev = await s.next(15000);
				assert.equal(ev.json?.type, 'test.outbox');
				got.push(ev.json.data);
			}
			got.sort((a, b) => a.i - b.i);
			assert.deepEqual(got, [{ i: 1, marker }, { i: 2, marker }]);
			// No second copy of either.
			const extra = await s.nextOrNull(4000);
			assert.equal(extra, null, `a second copy arrived: ${extra?.data}`);
			await waitFor('outbox empty and health ok', async () => {
				const r = await health();
				return (r.status === 200 && r.json?.jobs?.outbox === 0) ||
					`${r.status} ${r.text.slice(0, 200)}`;
			}, 5000);
			// Logs name ids and counts, never the payload.
			assert.deepEqual(logsWith(marker), []);
			assert.ok(logsWith(ids[0]).length > 0, 'the deferral is not logged');
		} finally {
			if (!restarted)
				restartRedis(stack, redis);
		}
	});
});
