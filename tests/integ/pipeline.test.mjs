// pipeline.test.mjs - the request pipeline over the real stack (issue 2
// items 6 and 7, RELIABILITY battery 47-50 and 52): error envelope and
// statuses for every kind of bad input, request ids, security headers over
// HTTP and HTTPS, body limits in the worker and in nginx, JSON and form
// bodies, tenant resolution and the secret-free tenant view, one JSON log
// line per request.
//
// SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { assertError, assertJson, GENERATED_ID, logLines,
	stopChecked } from './lib/check.mjs';
import { rawRequest, request } from './lib/http.mjs';
import { sleep, startStack } from './lib/stack.mjs';

let stack;

before(async () => {
	stack = await startStack();
});

after(() => stopChecked(stack));

const get = (path, headers = {}, extra = {}) => request(stack, { path, headers, ...extra });
const post = (path, body, contentType, headers = {}) =>
	request(stack, { method: 'POST', path, body, headers: { 'Content-Type': contentType, ...headers } });
const postJson = (path, text, headers = {}) =>
	post(path, text, 'application/json', headers);

describe('bad JSON bodies -> 400 invalid_json', () => {
	const cases = {
		'truncated': '{"a":',
		'not JSON at all': 'hello',
		'trailing garbage': '{"a":1} x',
		'two documents': '{"a":1}{"b":2}',
		'duplicate keys': '{"a":1,"a":2}',
		'nested duplicate keys': '{"x":{"k":1,"k":1}}',
		'raw NUL byte': Buffer.from('{"a":"x\u0000y"}', 'utf8'),
		'single quotes': "{'a':1}",
		'trailing comma': '{"a":1,}',
	};
	for (const [name, body] of Object.entries(cases)) {
		test(name, async () => {
			assertError(await postJson('/api/dev/echo', body), 400, 'invalid_json');
		});
	}
	test('invalid UTF-8 inside a string', async () => {
		const body = Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
		assertError(await postJson('/api/dev/echo', body), 400, 'invalid_json');
	});
	test('overlong UTF-8 encoding', async () => {
		const body = Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]);
		assertError(await postJson('/api/dev/echo', body), 400, 'invalid_json');
	});
	test('deep nesting does not crash the worker', async () => {
		const body = '['.repeat(5000) + ']'.repeat(5000);
		assertError(await postJson('/api/dev/echo', body), 400, 'invalid_json');
		assertJson(await get('/api/tenants/current'), 200);
	});
});

describe('JSON and form bodies that are fine', () => {
	test('echo returns tenant and body unchanged', async () => {
		const body = { s: 'héllo ✓ 𝄞', n: 42, f: 1.5, b: true, z: null, a: [1, 'two', { three: 3 }],
			op: { $ne: 1 } };
		const res = await postJson('/api/dev/echo', JSON.stringify(body));
		const j = assertJson(res, 200);
		assert.deepEqual(j, { tenant: 'tenant1', body });
	});
	test('charset=utf-8 parameter is accepted', async () => {
		const res = await post('/api/dev/echo', '{"k":"v"}', 'application/json; charset=utf-8');
		assert.deepEqual(assertJson(res, 200), { tenant: 'tenant1', body: { k: 'v' } });
	});
	test('form fields keep order, duplicates and decoding', async () => {
		const res = await post('/api/dev/echo-form', 'a=1&b=x+y&a=%41%2b%26&empty=&c=%E2%9C%93',
			'application/x-www-form-urlencoded');
		assert.deepEqual(assertJson(res, 200), {
			tenant: 'tenant1',
			fields: [['a', '1'], ['b', 'x y'], ['a', 'A+&'], ['empty', ''], ['c', '✓']],
		});
	});
	test('form with charset parameter', async () => {
		const res = await post('/api/dev/echo-form', 'k=v',
			'application/x-www-form-urlencoded; charset=UTF-8');
		assert.deepEqual(assertJson(res, 200), { tenant: 'tenant1', fields: [['k', 'v']] });
	});
});

describe('bad form bodies -> 400 invalid_form', () => {
	for (const body of ['a=%zz', 'a=%4', 'a=%', 'a=1&b=%G0']) {
		test(JSON.stringify(body), async () => {
			assertError(await post('/api/dev/echo-form', body, 'application/x-www-form-urlencoded'),
				400, 'invalid_form');
		});
	}
});

describe('content types -> 415 unsupported_media_type', () => {
	test('text/plain to a JSON route', async () => {
		assertError(await post('/api/dev/echo', '{"a":1}', 'text/plain'), 415, 'unsupported_media_type');
	});
	test('form to a JSON route', async () => {
		assertError(await post('/api/dev/echo', 'a=1', 'application/x-www-form-urlencoded'),
			415, 'unsupported_media_type');
	});
	test('JSON to a form route', async () => {
		assertError(await post('/api/dev/echo-form', '{"a":1}', 'application/json'),
			415, 'unsupported_media_type');
	});
	test('no Content-Type with a body', async () => {
		const res = await request(stack, { method: 'POST', path: '/api/dev/echo', body: '{"a":1}' });
		assertError(res, 415, 'unsupported_media_type');
	});
	test('JSON in a charset other than UTF-8', async () => {
		const res = await post('/api/dev/echo', '{"a":1}', 'application/json; charset=iso-8859-1');
		assert.ok([400, 415].includes(res.status), `status ${res.status}`);
		assertError(res, res.status, res.status === 415 ? 'unsupported_media_type' : 'invalid_json');
	});
});

describe('routes and methods', () => {
	test('unknown route -> 404 route_not_found', async () => {
		assertError(await get('/api/no/such/route'), 404, 'route_not_found');
	});
	test('unknown route with odd bytes in the path', async () => {
		assertError(await get('/api/%0d%0aX-Injected:%201/x'), 404, 'route_not_found');
	});
	test('wrong method -> 405 with Allow', async () => {
		const res = await get('/api/dev/echo');
		assertError(res, 405, 'method_not_allowed');
		assert.match(res.headers.allow ?? '', /\bPOST\b/);
	});
	test('DELETE on a GET route -> 405 with Allow: GET', async () => {
		const res = await request(stack, { method: 'DELETE', path: '/api/tenants/current' });
		assertError(res, 405, 'method_not_allowed');
		assert.match(res.headers.allow ?? '', /\bGET\b/);
		assert.doesNotMatch(res.headers.allow ?? '', /\bDELETE\b/);
	});
});

describe('body size limits', () => {
	test('100 KB JSON to /api/dev/echo -> 413 payload_too_large from the worker', async () => {
		const body = JSON.stringify({ pad: 'x'.repeat(100 * 1024) });
		assertError(await postJson('/api/dev/echo', body), 413, 'payload_too_large');
	});
	test('just under the 64 KiB cap is accepted', async () => {
		const pad = 'y'.repeat(60 * 1024);
		const res = await postJson('/api/dev/echo', JSON.stringify({ pad }));
		assert.equal(assertJson(res, 200).body.pad.length, pad.length);
	});
	test('2 MB to /api/ -> 413 from nginx, worker untouched', async () => {
		const id = `big-api-${Date.now()}`;
		const res = await postJson('/api/dev/echo', JSON.stringify({ pad: 'z'.repeat(2 * 1024 * 1024) }),
			{ 'X-Request-Id': id });
		assert.equal(res.status, 413);
		await sleep(200);
		assert.ok(!logLines(stack, 'fcgi.log').some((l) => l.includes(id)),
			'the worker saw a request nginx should have refused');
	});
	test('100 KB to /webhooks/ -> 413 from nginx', async () => {
		const res = await post('/webhooks/twilio/voice', 'Body=' + 'w'.repeat(100 * 1024),
			'application/x-www-form-urlencoded');
		assert.equal(res.status, 413);
	});
	test('the stack still answers after the oversized bodies', async () => {
		assertJson(await get('/api/tenants/current'), 200);
	});
});

describe('request ids', () => {
	test('a sane incoming id is echoed', async () => {
		const id = 'Abc-123_x.y:z';
		const res = await get('/api/tenants/current', { 'X-Request-Id': id });
		assertJson(res, 200);
		assert.equal(res.headers['x-request-id'], id);
	});
	test('a 128-character id is echoed', async () => {
		const id = 'a'.repeat(128);
		const res = await get('/api/tenants/current', { 'X-Request-Id': id });
		assert.equal(res.headers['x-request-id'], id);
	});
	for (const [name, id] of [['too long', 'b'.repeat(129)], ['spaces', 'has space'],
		['slash', 'a/b'], ['quote', 'a"b'], ['non-ASCII', 'caf\u00e9']]) {
		test(`an insane incoming id is replaced (${name})`, async () => {
			const res = await get('/api/tenants/current', { 'X-Request-Id': id });
			assertJson(res, 200);
			assert.match(res.headers['x-request-id'], GENERATED_ID);
		});
	}
	test('generated ids are 32 hex and differ per request', async () => {
		const a = await get('/api/tenants/current');
		const b = await get('/api/no/such');
		assert.match(a.headers['x-request-id'], GENERATED_ID);
		assert.match(b.headers['x-request-id'], GENERATED_ID);
		assert.notEqual(a.headers['x-request-id'], b.headers['x-request-id']);
		assert.equal(b.json.error.request_id, b.headers['x-request-id']);
	});
	test('one JSON log line per request, carrying its id', async () => {
		const id = `logline-${Date.now()}`;
		assertJson(await get('/api/tenants/current', { 'X-Request-Id': id }), 200);
		const eid = `logline-err-${Date.now()}`;
		assertError(await get('/api/no/such', { 'X-Request-Id': eid }), 404, 'route_not_found');
		await sleep(300);
		const lines = logLines(stack, 'fcgi.log');
		for (const want of [id, eid]) {
			const hits = lines.filter((l) => l.includes(want));
			assert.equal(hits.length, 1, `expected one log line with ${want}, got ${hits.length}`);
			const rec = JSON.parse(hits[0]);
			assert.equal(typeof rec, 'object');
		}
	});
	test('every worker log line is one JSON object (CR/LF cannot forge lines)', async () => {
		await rawRequest(stack, 'GET /api/x%0d%0a%7b%22forged%22%3a1%7d HTTP/1.1\r\n' +
			'Host: localhost\r\nX-Tenant-Id: tenant1\r\nConnection: close\r\n\r\n');
		await sleep(300);
		for (const l of logLines(stack, 'fcgi.log')) {
			// The supervisors (spawn-fcgi, multiwatch) write plain text here too.
			if (l.trim() === '' || /^(spawn-fcgi|multiwatch)\b/.test(l))
				continue;
			let rec;
			assert.doesNotThrow(() => {
				rec = JSON.parse(l);
			}, `not JSON: ${l.slice(0, 200)}`);
			assert.equal(typeof rec, 'object');
			assert.notEqual(rec.forged, 1);
		}
	});
});

describe('security headers', () => {
	test('HTTPS answers carry HSTS and the common headers', async () => {
		const res = await request(stack, { path: '/api/tenants/current', tls: true });
		assertJson(res, 200);
		assert.match(res.headers['strict-transport-security'] ?? '', /max-age=\d+/);
	});
	test('HTTPS error answers carry HSTS too', async () => {
		const res = await request(stack, { path: '/api/no/such', tls: true });
		assertError(res, 404, 'route_not_found');
		assert.match(res.headers['strict-transport-security'] ?? '', /max-age=\d+/);
	});
	test('the SPA is served with a CSP', async () => {
		const res = await get('/');
		assert.equal(res.status, 200);
		assert.match(res.headers['content-type'] ?? '', /^text\/html/);
		const csp = res.headers['content-security-policy'] ?? '';
		assert.match(csp, /default-src/);
		assert.match(csp, /frame-ancestors/);
		assert.equal(res.headers['x-content-type-options'], 'nosniff');
		assert.match(res.text, /<html/i);
	});
});

describe('CORS', () => {
	test('a foreign origin is never allowed', async () => {
		const evil = 'https://evil.example';
		const pre = await request(stack, { method: 'OPTIONS', path: '/api/tenants/current', headers: {
			Origin: evil, 'Access-Control-Request-Method': 'GET',
			'Access-Control-Request-Headers': 'x-tenant-id' } });
		assert.notEqual(pre.headers['access-control-allow-origin'], evil);
		assert.notEqual(pre.headers['access-control-allow-origin'], '*');
		const res = await get('/api/tenants/current', { Origin: evil });
		assertJson(res, 200);
		assert.notEqual(res.headers['access-control-allow-origin'], evil);
		assert.notEqual(res.headers['access-control-allow-origin'], '*');
	});
});

describe('tenants', () => {
	const name = async (headers, tls = false) => {
		const res = await request(stack, { path: '/api/tenants/current', headers, tls });
		return assertJson(res, 200).id;
	};
	test('no hint -> DEFAULT_TENANT (tenant1)', async () => {
		assert.equal(await name({}), 'tenant1');
	});
	test('X-Tenant-Id selects the tenant', async () => {
		assert.equal(await name({ 'X-Tenant-Id': 'tenant2' }), 'tenant2');
		assert.equal(await name({ 'X-Tenant-Id': 'tenant1' }), 'tenant1');
	});
	test('the Host label selects the tenant and wins over X-Tenant-Id', async () => {
		assert.equal(await name({ Host: 'tenant2.example.com' }), 'tenant2');
		assert.equal(await name({ Host: 'tenant2.example.com', 'X-Tenant-Id': 'tenant1' }), 'tenant2');
		assert.equal(await name({ Host: 'tenant2.example.com' }, true), 'tenant2');
	});
	test('a Host label that is not a tenant falls through to X-Tenant-Id', async () => {
		assert.equal(await name({ Host: 'www.example.com', 'X-Tenant-Id': 'tenant2' }), 'tenant2');
		assert.equal(await name({ Host: 'localhost' }), 'tenant1');
	});
	test('malformed X-Tenant-Id -> 400 invalid_tenant_id', async () => {
		for (const bad of ['Bad_ID!', 'x'.repeat(200), '../tenant1', 'TENANT1', '{"$gt":""}',
			"' OR 1=1--", 'tenant1;tenant2']) {
			const res = await get('/api/tenants/current', { 'X-Tenant-Id': bad });
			assertError(res, 400, 'invalid_tenant_id');
		}
	});
	test('unknown well-formed X-Tenant-Id -> 404 tenant_not_found', async () => {
		assertError(await get('/api/tenants/current', { 'X-Tenant-Id': 'nosuchtenant' }),
			404, 'tenant_not_found');
	});
	test('the tenant is resolved for every route (echo)', async () => {
		const res = await postJson('/api/dev/echo', '{}', { 'X-Tenant-Id': 'tenant2' });
		assert.equal(assertJson(res, 200).tenant, 'tenant2');
		assertError(await postJson('/api/dev/echo', '{}', { 'X-Tenant-Id': 'nosuchtenant' }),
			404, 'tenant_not_found');
	});
	test('the public view has the original shape and no secret keys', async () => {
		for (const t of ['tenant1', 'tenant2']) {
			const v = assertJson(await get('/api/tenants/current', { 'X-Tenant-Id': t }), 200);
			assert.equal(v.id, t);
			assert.equal(typeof v.name, 'string');
			assert.equal(typeof v.twilio, 'object');
			assert.match(v.twilio.accountSid ?? '', /^AC[0-9a-fA-F]{32}$/);
			assert.equal(typeof v.ai, 'object');
			assert.equal(typeof v.ai.model, 'string');
			assert.equal(typeof v.crm, 'object');
			assert.ok('baseUrl' in v.crm);
			assert.ok(!('apiKey' in v), 'tenant apiKey exposed');
			assert.ok(!('apiKey' in v.crm), 'crm apiKey exposed');
			const keys = JSON.stringify(v);
			for (const k of ['authToken', 'apiSecret', 'openaiApiKey'])
				assert.ok(!keys.includes(`"${k}"`), `${k} exposed`);
		}
	});
});
