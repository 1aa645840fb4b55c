// failures.test.mjs - worker failure modes through the real stack
// (RELIABILITY battery 57-59, the 503/429 conventions):
//  - a request stuck past NONFLEX_REQUEST_TIMEOUT_MS (endless loop or
//    blocked sleep) costs only itself: nginx answers 502/504 fast, the
//    watchdog's log line names the request id, the pool is whole again and
//    later requests succeed;
//  - a worker crashing mid-request (SIGSEGV, abort) fails only that request
//    with 502 while a request on the other worker completes, the crash is
//    logged with the request id, multiwatch replaces the worker;
//  - every 503 and 429 from the worker carries Retry-After (rate limit:
//    the real remaining window; Redis down; store down; store busy past
//    SQLite's busy timeout), and an unavailable store answers 503 quickly,
//    never 500;
//  - many concurrent read-then-write increments of one document across
//    workers: all 200, each value handed out once, exact final count.
// Graceful SIGTERM under load (battery 60) is covered by
// resilience.test.mjs ("a worker stopped with SIGTERM").
//
// SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { assertError, assertJson, logLines, stopChecked, waitFor } from './lib/check.mjs';
import { hammer, request } from './lib/http.mjs';
import { sleep, startStack, workerPids } from './lib/stack.mjs';

const DEADLINE_MS = 1500;

// The JSON lines of the worker log (fcgi.log also holds multiwatch's text).
function workerLog(stack) {
	const out = [];
	for (const l of logLines(stack, 'fcgi.log')) {
		if (!l.startsWith('{'))
			continue;
		try {
			out.push(JSON.parse(l));
		} catch {
			// a line cut short by a dying process is not ours to judge here
		}
	}
	return out;
}

async function logLineFor(stack, rid, re) {
	let hit;
	await waitFor(`log line for ${rid}`, () => {
		hit = workerLog(stack).find((o) => o.request_id === rid && re.test(o.msg ?? ''));
		return hit !== undefined || workerLog(stack).filter((o) => o.request_id === rid);
	}, 3000);
	return hit;
}

// The pool is back to `n` workers, none of them in `gone`.
async function poolWhole(stack, n, gone) {
	await waitFor('pool back to full size', () => {
		const now = workerPids(stack);
		return (now.length === n && !now.some((p) => gone.includes(p))) || now;
	}, 10000);
}

async function allSucceed(stack, n) {
	const res = await hammer(stack, n, 4, () => ({ path: '/api/tenants/current',
		headers: { 'X-Tenant-Id': 'tenant1' }, timeout: 5000 }));
	const bad = res.filter((r) => r.status !== 200);
	assert.equal(bad.length, 0, `${bad.length} of ${n} failed: ${JSON.stringify(bad.slice(0, 3))}`);
}

const rid = (tag) => `${tag}-${process.pid}-${Date.now()}`;

function assertRetryAfter(res, min, max) {
	const v = res.headers['retry-after'];
	assert.match(v ?? '', /^\d+$/, `no Retry-After on ${res.status}: ${JSON.stringify(res.headers)}`);
	assert.ok(Number(v) >= min && Number(v) <= max, `Retry-After ${v} not in ${min}..${max}`);
}

describe('a worker with a short request deadline', () => {
	let stack;

	before(async () => {
		stack = await startStack({ workers: 2,
			env: { NONFLEX_REQUEST_TIMEOUT_MS: String(DEADLINE_MS) } });
	});
	after(() => stopChecked(stack));

	for (const spin of [true, false]) {
		const kind = spin ? 'an endless loop' : 'a blocked sleep';
		test(`${kind} past the deadline: 502/504 fast, logged, worker replaced`, async () => {
			await poolWhole(stack, 2, []);
			const id = rid(spin ? 'hang-spin' : 'hang-sleep');
			const res = await request(stack, { method: 'POST', path: '/api/dev/hang',
				headers: { 'X-Request-Id': id }, body: { ms: 20000, spin }, timeout: 15000 });
			assert.ok([502, 504].includes(res.status), `status ${res.status}: ${res.text.slice(0, 200)}`);
			assert.ok(res.ms >= DEADLINE_MS - 100 && res.ms < DEADLINE_MS + 3000,
				`answered after ${Math.round(res.ms)} ms`);
			const line = await logLineFor(stack, id, /deadline/);
			assert.equal(line.level, 'error');
			assert.equal(line.timeout_ms, DEADLINE_MS);
			assert.equal(line.path, '/api/dev/hang');
			await poolWhole(stack, 2, [line.pid]);
			await allSucceed(stack, 100);
		});
	}

	test('a request under the deadline completes', async () => {
		const res = await request(stack, { method: 'POST', path: '/api/dev/hang',
			body: { ms: 300, spin: true } });
		assert.deepEqual(assertJson(res, 200), { ms: 300, spin: true });
	});

	for (const [how, sig] of [['segv', 11], ['abort', 6]]) {
		test(`a ${how} crash fails only its request; the other worker's request completes`, async () => {
			await poolWhole(stack, 2, []);
			const id = rid(`crash-${how}`);
			// Occupy one worker, then crash the other one.
			const slow = request(stack, { method: 'POST', path: '/api/dev/hang',
				body: { ms: 700 }, timeout: 10000 });
			await sleep(200);
			const crash = await request(stack, { method: 'POST', path: '/api/dev/crash',
				headers: { 'X-Request-Id': id }, body: { how } });
			assert.equal(crash.status, 502, `crash answered ${crash.status}: ${crash.text.slice(0, 200)}`);
			assert.deepEqual(assertJson(await slow, 200), { ms: 700, spin: false });
			const line = await logLineFor(stack, id, new RegExp(`crashed: SIG${how === 'segv' ? 'SEGV' : 'ABRT'}`));
			assert.equal(line.signal, sig);
			assert.equal(line.path, '/api/dev/crash');
			assert.ok(!/segmentation|backtrace/i.test(crash.text), 'crash details reached the client');
			await poolWhole(stack, 2, [line.pid]);
			await allSucceed(stack, 100);
		});
	}

	test('bad failure-route input is a 400, not a crash', async () => {
		const pids = workerPids(stack).sort();
		assertError(await request(stack, { method: 'POST', path: '/api/dev/crash',
			body: { how: 'kill' } }), 400, 'invalid_field');
		assertError(await request(stack, { method: 'POST', path: '/api/dev/hang',
			body: { ms: -1 } }), 400, 'invalid_field');
		assertError(await request(stack, { method: 'POST', path: '/api/dev/counter',
			body: { name: 'Not A Slug' } }), 400, 'invalid_field');
		assert.deepEqual(workerPids(stack).sort(), pids);
	});

	test('200 concurrent read-then-write increments: all 200, exact count', async () => {
		await poolWhole(stack, 2, []);
		const name = `race-${process.pid}-${Date.now()}`;
		const res = await hammer(stack, 200, 200, () => ({ method: 'POST', path: '/api/dev/counter',
			body: { name }, timeout: 20000 }));
		const bad = res.filter((r) => r.status !== 200);
		assert.equal(bad.length, 0, `failed increments: ${JSON.stringify(bad.slice(0, 3).map((r) =>
			r.error ?? `${r.status} ${r.text}`))}`);
		// Each value handed out exactly once: no two workers read the same "before".
		const seen = res.map((r) => r.json.n).sort((a, b) => a - b);
		assert.deepEqual(seen, Array.from({ length: 200 }, (_, i) => i + 1));
		const got = assertJson(await request(stack, { path: `/api/dev/counter/${name}` }), 200);
		assert.deepEqual(got, { name, n: 200 });
		assertError(await request(stack, { path: '/api/dev/counter/no-such-counter' }), 404, 'not_found');
	});

	test('429 carries the rate limit\'s remaining window in Retry-After', async () => {
		const bucket = `ra-${Date.now()}`;
		const kv = () => request(stack, { path: `/api/dev/kv?bucket=${bucket}&limit=2&window_ms=4000` });
		assertJson(await kv(), 200);
		assertJson(await kv(), 200);
		const res = await kv();
		assertError(res, 429, 'rate_limited');
		assertRetryAfter(res, 1, 4);
		const ok = await request(stack, { path: '/api/tenants/current' });
		assertJson(ok, 200);
		assert.equal(ok.headers['retry-after'], undefined, 'Retry-After on a 200');
	});

	// Last: it leaves this stack without Redis.
	test('Redis down: 503 redis_unavailable and degraded health carry Retry-After', async () => {
		const pid = Number(fs.readFileSync(path.join(stack.runDir, 'redis.pid'), 'utf8').trim());
		assert.ok(pid > 0);
		process.kill(pid, 'SIGKILL');
		await waitFor('redis gone', () => !fs.existsSync(`/proc/${pid}`) ||
			/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')), 5000);
		for (let i = 0; i < 4; i++) {
			const res = await request(stack, { path: '/api/dev/kv', timeout: 3000 });
			assertError(res, 503, 'redis_unavailable');
			assertRetryAfter(res, 1, 5);
			assert.ok(res.ms < 1500, `took ${Math.round(res.ms)} ms`);
		}
		const h = await request(stack, { path: '/api/health', timeout: 3000 });
		assert.equal(assertJson(h, 503).redis?.status, 'down');
		assertRetryAfter(h, 1, 5);
	});
});

describe('a store that cannot be opened', () => {
	let stack;

	before(async () => {
		// A directory where the SQLite file should be: open fails.
		stack = await startStack({ workers: 2, waitHealthy: false,
			env: (dir) => {
				fs.mkdirSync(path.join(dir, 'db-is-a-dir'), { recursive: true });
				return { STORE_URI: `sqlite://${path.join(dir, 'db-is-a-dir')}` };
			} });
	});
	after(() => stopChecked(stack));

	test('answers 503 with Retry-After quickly, never 500', async () => {
		for (let i = 0; i < 6; i++) {
			const h = await request(stack, { path: '/api/health', timeout: 3000 });
			const body = assertJson(h, 503);
			assert.equal(body.store?.status, 'down');
			assert.equal(body.status, 'degraded');
			assertRetryAfter(h, 1, 5);
			assert.ok(h.ms < 1500, `health took ${Math.round(h.ms)} ms`);
			const c = await request(stack, { method: 'POST', path: '/api/dev/counter',
				body: { name: 'x' }, timeout: 3000 });
			assertError(c, 503, 'store_unavailable');
			assertRetryAfter(c, 1, 5);
			assert.ok(c.ms < 1500, `counter took ${Math.round(c.ms)} ms`);
		}
		// Routes that need no store are unaffected.
		assertJson(await request(stack, { path: '/api/tenants/current' }), 200);
	});
});

describe('a store held busy past SQLite\'s busy timeout', () => {
	let stack;

	before(async () => {
		stack = await startStack({ workers: 2 });
	});
	after(() => stopChecked(stack));

	test('503 store_unavailable with Retry-After, no partial write, then recovery', async () => {
		const name = `busy-${process.pid}`;
		const inc = (timeout = 10000) => request(stack, { method: 'POST', path: '/api/dev/counter',
			body: { name }, timeout });
		assert.equal(assertJson(await inc(), 200).n, 1);
		const db = path.join(stack.stateDir, 'nonflex.db');
		assert.ok(fs.existsSync(db), `no ${db}`);
		// Another process takes the write lock and keeps it.
		const holder = spawn('sqlite3', [db], { stdio: ['pipe', 'pipe', 'pipe'] });
		let out = '';
		holder.stdout.on('data', (c) => {
			out += c;
		});
		try {
			holder.stdin.write('PRAGMA busy_timeout=2000;\nBEGIN EXCLUSIVE;\nSELECT \'locked\';\n');
			await waitFor('lock taken', () => out.includes('locked') || out, 5000);
			const res = await inc(15000);
			assertError(res, 503, 'store_unavailable');
			assertRetryAfter(res, 1, 5);
			// Other routes keep working meanwhile.
			assertJson(await request(stack, { path: '/api/tenants/current' }), 200);
		} finally {
			holder.stdin.end('ROLLBACK;\n.quit\n');
			await new Promise((resolve) => holder.once('close', resolve));
		}
		// The refused increment left nothing behind: the next one is 2.
		assert.equal(assertJson(await inc(), 200).n, 2);
		assert.deepEqual(assertJson(await request(stack, { path: `/api/dev/counter/${name}` }), 200),
			{ name, n: 2 });
	});
});
