// stack.test.mjs - the launcher (issue 2 item 4): `conf/stack start`,
// `status` and `stop`; loopback-only listeners; health and the static SPA
// over HTTP and HTTPS; dev routes only with NONFLEX_DEV_ROUTES=1; two stacks
// side by side; `stop` leaves no process behind.
//
// SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { assertError, assertJson, assertNoSecrets, stopChecked } from './lib/check.mjs';
import { request } from './lib/http.mjs';
import { stackProcesses, startStack, workerPids } from './lib/stack.mjs';

let a;
let b;

before(async () => {
	a = await startStack();
	// The second stack: other ports and state dir, dev routes off.
	b = await startStack({ env: { NONFLEX_DEV_ROUTES: undefined } });
});

after(() => stopChecked(a, b));

// Loopback TCP listeners on port, from /proc/net/tcp{,6}: [{addr, port}].
function listeners(port) {
	const out = [];
	for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
		let text = '';
		try {
			text = fs.readFileSync(f, 'utf8');
		} catch {
			continue;
		}
		for (const line of text.split('\n').slice(1)) {
			const cols = line.trim().split(/\s+/);
			if (cols.length < 4 || cols[3] !== '0A')
				continue;
			const [addr, p] = cols[1].split(':');
			if (parseInt(p, 16) === port)
				out.push({ addr, file: f });
		}
	}
	return out;
}

describe('start and status', () => {
	test('status exits 0 for a running stack', () => {
		const r = a.status();
		assert.equal(r.status, 0, r.output);
	});
	test('the state dir has the documented layout', () => {
		for (const p of ['run', 'log', 'tls', 'nonflex.db', 'log/nginx-error.log', 'log/fcgi.log',
			'run/fcgi.sock', 'run/redis.sock'])
			assert.ok(fs.existsSync(path.join(a.stateDir, p)), `missing ${p}`);
		assert.ok(fs.readdirSync(path.join(a.stateDir, 'tls')).length > 0, 'no certificate');
	});
	test('NONFLEX_WORKERS=2 gives two workers per stack', () => {
		assert.equal(workerPids(a).length, 2);
		assert.equal(workerPids(b).length, 2);
		const shared = workerPids(a).filter((p) => workerPids(b).includes(p));
		assert.deepEqual(shared, []);
	});
	test('HTTP and HTTPS listen on loopback only', () => {
		for (const port of [a.httpPort, a.httpsPort]) {
			const l = listeners(port);
			assert.ok(l.length > 0, `nothing listens on ${port}`);
			for (const { addr, file } of l) {
				const loop = file.endsWith('6')
					? addr === '00000000000000000000000001000000'
					: addr === '0100007F';
				assert.ok(loop, `port ${port} bound to ${addr} (${file})`);
			}
		}
	});
});

describe('serving', () => {
	for (const tls of [false, true]) {
		test(`health over ${tls ? 'HTTPS' : 'HTTP'}`, async () => {
			const h = assertJson(await request(a, { path: '/api/health', tls }), 200);
			assert.equal(h.status, 'ok');
			assert.equal(typeof h.version, 'string');
			assert.ok(h.version.length > 0);
			assert.equal(h.store?.status, 'up');
			assert.equal(h.store?.backend, 'sqlite');
			assert.equal(h.redis?.status, 'up');
			assert.equal(h.events?.status, 'up');
		});
		test(`the SPA over ${tls ? 'HTTPS' : 'HTTP'}`, async () => {
			const res = await request(a, { path: '/', tls });
			assert.equal(res.status, 200);
			assert.match(res.headers['content-type'] ?? '', /^text\/html/);
			assert.ok(res.headers['content-security-policy'], 'no CSP');
			assert.match(res.text, /<html/i);
		});
	}
	test('HEAD / answers without a body', async () => {
		const res = await request(a, { method: 'HEAD', path: '/' });
		assert.equal(res.status, 200);
		assert.equal(res.text, '');
	});
});

describe('two stacks side by side', () => {
	test('both answer on their own ports and state dirs', async () => {
		assert.notEqual(a.httpPort, b.httpPort);
		assert.notEqual(a.stateDir, b.stateDir);
		const [ha, hb] = await Promise.all([
			request(a, { path: '/api/health' }), request(b, { path: '/api/health' })]);
		assertJson(ha, 200);
		assertJson(hb, 200);
	});
	test('dev routes answer only where NONFLEX_DEV_ROUTES=1', async () => {
		const ra = await request(a, { method: 'POST', path: '/api/dev/echo', body: { x: 1 } });
		assert.deepEqual(assertJson(ra, 200), { tenant: 'tenant1', body: { x: 1 } });
		assertError(await request(b, { method: 'POST', path: '/api/dev/echo', body: { x: 1 } }),
			404, 'route_not_found');
		assertError(await request(b, { path: '/api/dev/kv' }), 404, 'route_not_found');
		assertError(await request(b, { method: 'POST', path: '/api/dev/events',
			body: { topic: 'x', type: 'x', data: {}, via: 'direct' } }), 404, 'route_not_found');
	});
	test('stopping one leaves the other running', async () => {
		assertNoSecrets(b);
		assert.ok(stackProcesses(b).length > 0);
		const { launcher, leftovers } = b.stop();
		assert.equal(launcher.status, 0, launcher.output);
		assert.deepEqual(leftovers, [], 'processes left behind by conf/stack stop');
		assertJson(await request(a, { path: '/api/health' }), 200);
		assert.equal(a.status().status, 0);
	});
});

describe('stop', () => {
	test('status is non-zero after stop, and no process is left', async () => {
		assertNoSecrets(a);
		const procs = stackProcesses(a);
		const names = new Set(procs.map((p) => p.comm));
		for (const want of ['nginx', 'nonflex-fcgi', 'nonflex-jobs', 'redis-server'])
			assert.ok([...names].some((n) => n.startsWith(want)),
				`no ${want} process found before stop: ${[...names]}`);
		const { launcher, leftovers } = a.stop();
		assert.equal(launcher.status, 0, launcher.output);
		assert.deepEqual(leftovers, [], 'processes left behind by conf/stack stop');
		await assert.rejects(request(a, { path: '/api/health', timeout: 2000, record: false }));
		assert.notEqual(a.status().status, 0, 'status says running after stop');
	});
});
