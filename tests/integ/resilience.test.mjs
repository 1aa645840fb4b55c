// resilience.test.mjs - failures of the running stack (issue 2 items 4, 7,
// 9, 10, 11; RELIABILITY battery 55 and 58): a worker killed with SIGKILL
// is replaced and nothing fails afterwards; Redis killed and restarted under
// traffic (fast 503 redis_unavailable, health degraded, Redis-free routes
// unaffected, recovery); SIGHUP reloads the tenants file.
//
// SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { assertError, assertJson, killWorkers, stopChecked, waitFor } from './lib/check.mjs';
import { hammer, request, traffic } from './lib/http.mjs';
import { keepPidFile, killRedis, restartRedis } from './lib/redis.mjs';
import { SRCDIR, sleep, startStack, workerPids } from './lib/stack.mjs';

let stack;
let tenantsFile;

before(async () => {
	stack = await startStack({
		setup(dir) {
			// A private copy of the tenants file the SIGHUP test may edit.
			tenantsFile = path.join(dir, 'tenants.json');
			fs.copyFileSync(path.join(SRCDIR, 'infra', 'tenants.json'), tenantsFile);
		},
		env: (dir) => ({ TENANTS_FILE: path.join(dir, 'tenants.json') }),
	});
});

after(() => stopChecked(stack));

const current = (tenant = 'tenant1', timeout = 10000) =>
	request(stack, { path: '/api/tenants/current', headers: { 'X-Tenant-Id': tenant }, timeout });
const kv = (timeout = 5000) =>
	request(stack, { path: '/api/dev/kv', headers: { 'X-Tenant-Id': 'tenant1' }, timeout });

describe('stack basics', () => {
	test('NONFLEX_WORKERS nonflex-fcgi processes run', () => {
		assert.equal(workerPids(stack).length, 2, `workers: ${workerPids(stack)}`);
	});
	test('health is 200 with every dependency up', async () => {
		const h = assertJson(await request(stack, { path: '/api/health' }), 200);
		assert.equal(h.status, 'ok');
		assert.equal(typeof h.version, 'string');
		assert.deepEqual({ status: h.store?.status, backend: h.store?.backend },
			{ status: 'up', backend: 'sqlite' });
		assert.equal(h.redis?.status, 'up');
		assert.equal(h.events?.status, 'up');
	});
	test('the Redis dev route works while Redis is up', async () => {
		assertJson(await kv(), 200);
	});
});

describe('SIGHUP reloads the tenants file', () => {
	test('a renamed tenant is served after SIGHUP', async () => {
		assert.equal(stack.env.TENANTS_FILE, tenantsFile);
		const before = assertJson(await current(), 200).name;
		const doc = JSON.parse(fs.readFileSync(tenantsFile, 'utf8'));
		const fresh = `Reloaded ${process.pid}-${Date.now()}`;
		doc.tenant1.name = fresh;
		fs.writeFileSync(tenantsFile + '.tmp', JSON.stringify(doc, null, 2));
		fs.renameSync(tenantsFile + '.tmp', tenantsFile);
		// Without SIGHUP nothing changes: configuration is read once.
		for (let i = 0; i < 6; i++)
			assert.equal(assertJson(await current(), 200).name, before);
		const pids = workerPids(stack);
		assert.equal(pids.length, 2);
		for (const pid of pids)
			process.kill(pid, 'SIGHUP');
		await waitFor('new name served', async () => {
			const name = (await current()).json?.name;
			return name === fresh || name;
		}, 5000);
		for (let i = 0; i < 20; i++)
			assert.equal(assertJson(await current(), 200).name, fresh);
		// The workers reloaded; none of them died of the signal.
		assert.deepEqual(workerPids(stack).sort(), pids.sort());
	});
	test('a broken tenants file is refused and the old one stays in use', async () => {
		const good = assertJson(await current(), 200).name;
		const saved = fs.readFileSync(tenantsFile);
		fs.writeFileSync(tenantsFile, '{"tenant1": {');
		const pids = workerPids(stack);
		for (const pid of pids)
			process.kill(pid, 'SIGHUP');
		await sleep(500);
		for (let i = 0; i < 10; i++)
			assert.equal(assertJson(await current(), 200).name, good);
		fs.writeFileSync(tenantsFile, saved);
	});
});

describe('a worker killed with SIGKILL', () => {
	test('is replaced and no request fails afterwards', async () => {
		const pids = workerPids(stack);
		assert.equal(pids.length, 2);
		const bg = traffic(stack, 4, () => ({ path: '/api/tenants/current',
			headers: { 'X-Tenant-Id': 'tenant1' } }));
		await sleep(300);
		process.kill(pids[0], 'SIGKILL');
		await waitFor('worker replaced', () => {
			const now = workerPids(stack);
			return (now.length === 2 && !now.includes(pids[0])) || now;
		}, 10000);
		await sleep(300);
		const during = await bg.stop();
		// Only a request in flight on the killed worker may fail, with 502.
		const bad = during.filter((r) => r.status !== 200);
		assert.ok(bad.every((r) => r.status === 502), `failures: ${JSON.stringify(bad.slice(0, 5))}`);
		assert.ok(bad.length <= 1, `${bad.length} failed requests around the kill`);
		const res = await hammer(stack, 200, 8, () => ({ path: '/api/tenants/current',
			headers: { 'X-Tenant-Id': 'tenant1' } }));
		const failed = res.filter((r) => r.status !== 200);
		assert.equal(failed.length, 0, `after replacement: ${JSON.stringify(failed.slice(0, 5))}`);
	});
	test('killing every worker at once is survived too', async () => {
		assert.equal(workerPids(stack).length, 2);
		await killWorkers(stack);
		const res = await hammer(stack, 50, 4, () => ({ path: '/api/tenants/current' }));
		assert.equal(res.filter((r) => r.status !== 200).length, 0);
	});
});

describe('a worker stopped with SIGTERM (graceful restart)', () => {
	test('finishes its request, is replaced, and no request fails', async () => {
		const pids = workerPids(stack);
		assert.equal(pids.length, 2);
		const bg = traffic(stack, 4, () => ({ path: '/api/tenants/current',
			headers: { 'X-Tenant-Id': 'tenant2' } }));
		for (const pid of pids) {
			await sleep(300);
			process.kill(pid, 'SIGTERM');
			await waitFor(`worker ${pid} replaced`, () => {
				const now = workerPids(stack);
				return (now.length === 2 && !now.includes(pid)) || now;
			}, 10000);
		}
		await sleep(300);
		const all = await bg.stop();
		const bad = all.filter((r) => r.status !== 200);
		assert.equal(bad.length, 0, `failed across SIGTERM: ${JSON.stringify(bad.slice(0, 5))}`);
		assert.ok(all.length > 20, `only ${all.length} requests ran`);
	});
});

// Open a connection and dribble `bytes` one byte per `everyMs`; resolves
// {closedAfterMs, reply} once the server closes it (or after capMs).
function slowClient(bytes, everyMs, capMs) {
	return new Promise((resolve) => {
		const t0 = Date.now();
		const chunks = [];
		const sock = net.connect(stack.httpPort, '127.0.0.1');
		let i = 0;
		const tick = setInterval(() => {
			if (i < bytes.length && !sock.destroyed)
				sock.write(bytes.subarray(i, ++i));
		}, everyMs);
		const cap = setTimeout(() => sock.destroy(), capMs);
		sock.on('data', (c) => chunks.push(c));
		sock.on('error', () => {});
		sock.on('close', () => {
			clearInterval(tick);
			clearTimeout(cap);
			resolve({ closedAfterMs: Date.now() - t0, reply: Buffer.concat(chunks).toString('latin1') });
		});
	});
}

describe('slow clients (slowloris, dribbled bodies)', () => {
	test('are cut off by nginx and never tie up the workers', async () => {
		const header = Buffer.from('GET /api/tenants/current HTTP/1.1\r\nHost: localhost\r\n' +
			'X-Tenant-Id: tenant1\r\nX-Pad: ' + 'p'.repeat(200) + '\r\n\r\n');
		const body = Buffer.from('POST /api/dev/echo HTTP/1.1\r\nHost: localhost\r\n' +
			'Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n{"a":"');
		const slow = [];
		for (let i = 0; i < 100; i++)
			slow.push(slowClient(header, 500, 30000));
		// Whole headers, then the body stalls after a few bytes.
		for (let i = 0; i < 20; i++)
			slow.push(slowClient(body, 1, 30000));
		await sleep(1000);
		// With only 2 workers, any slow client handed to a worker would
		// block these.
		const res = await hammer(stack, 60, 4, () => ({ path: '/api/tenants/current', timeout: 5000 }));
		const bad = res.filter((r) => r.status !== 200);
		assert.equal(bad.length, 0, `normal requests failed: ${JSON.stringify(bad.slice(0, 3))}`);
		assert.ok(res.every((r) => r.ms < 2000), 'a normal request waited behind slow clients');
		const done = await Promise.all(slow);
		for (const d of done) {
			assert.ok(d.closedAfterMs < 20000, `slow client kept open ${d.closedAfterMs} ms`);
			assert.ok(d.reply === '' || /^HTTP\/1\.1 408/.test(d.reply),
				`slow client got: ${d.reply.slice(0, 100)}`);
		}
	});
});

describe('Redis restarted under traffic', () => {
	test('503 redis_unavailable fast while down, recovery after restart', async () => {
		assertJson(await kv(), 200);

		// Redis-free traffic runs all along and must never fail.
		const bg = traffic(stack, 2, () => ({ path: '/api/tenants/current',
			headers: { 'X-Tenant-Id': 'tenant2' } }));
		try {
			const redis = await killRedis(stack);

			for (let i = 0; i < 10; i++) {
				const res = await kv(3000);
				assertError(res, 503, 'redis_unavailable');
				assert.ok(res.ms < 1000, `redis_unavailable took ${Math.round(res.ms)} ms`);
			}
			// Checked after the recovery, so that one failure here does not
			// hide whether the stack recovers.
			const downHealth = await request(stack, { path: '/api/health', timeout: 3000 });
			assertJson(await current(), 200);

			const spawnError = restartRedis(stack, redis);
			// Every worker must have reconnected: a worker whose last
			// connect failed waits a short backoff before trying again,
			// so ask until 20 answers in a row (spread over the workers)
			// are 200 - bounded, so a stack that never recovers fails.
			let streak = 0;
			await waitFor('every worker reconnected to redis', async () => {
				assert.equal(spawnError(), null, `cannot restart ${redis.argv.join(' ')}`);
				streak = (await kv(3000)).status === 200 ? streak + 1 : 0;
				return streak >= 20;
			}, 8000);
			keepPidFile(redis);
			const res = await hammer(stack, 40, 4, () => ({ path: '/api/dev/kv',
				headers: { 'X-Tenant-Id': 'tenant1' } }));
			assert.equal(res.filter((r) => r.status !== 200).length, 0,
				`after restart: ${JSON.stringify(res.filter((r) => r.status !== 200).slice(0, 3))}`);
			assertJson(await request(stack, { path: '/api/health' }), 200);

			const hj = assertJson(downHealth, 503);
			assert.equal(hj.status, 'degraded');
			assert.notEqual(hj.redis?.status, 'up');
			assert.equal(hj.store?.status, 'up');
			assert.ok(downHealth.ms < 1500,
				`health took ${Math.round(downHealth.ms)} ms with Redis down`);
		} finally {
			const all = await bg.stop();
			const bad = all.filter((r) => r.status !== 200);
			assert.equal(bad.length, 0, `Redis-free requests failed: ${JSON.stringify(bad.slice(0, 5))}`);
			assert.ok(all.length > 20, `only ${all.length} background requests ran`);
		}
	});
});
