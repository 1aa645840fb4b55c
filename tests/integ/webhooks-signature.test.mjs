// webhooks-signature.test.mjs - X-Twilio-Signature through the real stack
// (nginx -> worker; issue 4 item 3, RELIABILITY battery 1-7 and 9): webhooks
// signed by the official `twilio` package are accepted, with repeated
// parameters, UTF-8 values and raw query bytes; any change to the URL, a
// parameter, the token or the header is 403, audited (reason, request id,
// never the signature), and stores nothing; cross-tenant attempts are 403
// for the tenant they target; with PUBLIC_URL set, a forged Host /
// X-Forwarded-Host / X-Forwarded-Proto changes nothing; a flood of forged
// requests is audited at most 30 times a minute per address; the
// development bypass works only when set and warns on every request.
// The route exercised is POST /webhooks/twilio/taskrouter/events, whose
// EventSid dedupe shows whether anything was stored.
//
// SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import twilio from 'twilio';

import { assertError, assertJson, logLines, stopChecked, waitFor } from './lib/check.mjs';
import { request } from './lib/http.mjs';
import { loginDemo, seedStack } from './lib/session.mjs';
import { SECRET_ENV, startStack } from './lib/stack.mjs';
import { formBody } from './lib/twilio-sign.mjs';

const T1_TOKEN = SECRET_ENV.TENANT1_TWILIO_AUTH_TOKEN;
const T2_TOKEN = SECRET_ENV.TWILIO_AUTH_TOKEN;      // tenant2 falls back to it
const AC1 = 'AC00000000000000000000000000000001';
const AC2 = 'AC00000000000000000000000000000002';
const EVENTS = '/webhooks/twilio/taskrouter/events';
const AUDIT_PER_MIN = 30;                           // twilio_sig.c

let seq = 0;
// A fresh EventSid for every event this file sends.
function evSid() {
	seq += 1;
	return `EV${process.pid.toString(16).padStart(8, '0')}${seq.toString(16).padStart(24, '0')}`;
}

function eventParams(account = AC1, extra = {}) {
	return { AccountSid: account, EventType: 'task.created', Sid: evSid(),
		TaskSid: 'WT0123456789abcdef0123456789abcdef', WorkspaceSid: 'WS00000000000000000000000000000001',
		EventDescription: 'Task created', Timestamp: String(Math.floor(Date.now() / 1000)), ...extra };
}

// application/x-www-form-urlencoded as Twilio sends it; arrays repeat the name.
/*
 * POST a form webhook.  sign: {token, url, params} says what the signature
 * is computed over (defaults: T1_TOKEN, base + path, the params sent);
 * sig overrides the header (null: none).
 */
function post(stack, base, path, params, opts = {}) {
	const url = opts.url ?? `${base}${path}`;
	const token = opts.token ?? T1_TOKEN;
	let sig = twilio.getExpectedTwilioSignature(token, url, opts.signParams ?? params);
	if (opts.sig !== undefined)
		sig = opts.sig;
	const headers = { 'Content-Type': 'application/x-www-form-urlencoded', ...(opts.headers ?? {}) };
	if (sig !== null)
		headers['X-Twilio-Signature'] = sig;
	return request(stack, { method: 'POST', path, headers, body: opts.body ?? formBody(params),
		tls: opts.tls }).then((res) => ({ ...res, sentSig: sig }));
}

function accepted(res, duplicate = false) {
	const body = assertJson(res, 200);
	assert.deepEqual(body, { received: true, duplicate });
	assert.ok(res.ms < 1000, `took ${Math.round(res.ms)} ms`);
}

async function auditRows(stack, token, tenant) {
	const res = await request(stack, { path: '/api/audit?event=twilio.signature_failed&limit=200',
		headers: { 'X-Tenant-Id': tenant, Authorization: `Bearer ${token}` } });
	return assertJson(res, 200).entries;
}

describe('signatures with PUBLIC_URL as the launcher sets it', () => {
	let stack;
	let base;
	const admin = {};
	const sentSigs = [];

	before(async () => {
		stack = await startStack();
		base = `https://localhost:${stack.httpsPort}`;   // conf/stack's PUBLIC_URL
		seedStack(stack);
		admin.tenant1 = (await loginDemo(stack, 'tenant1', 'admin')).token;
		admin.tenant2 = (await loginDemo(stack, 'tenant2', 'admin')).token;
	});
	after(() => stopChecked(stack));

	test('a webhook signed by the twilio package is accepted, once', async () => {
		const p = eventParams();
		const url = `${base}${EVENTS}`;
		const sig = twilio.getExpectedTwilioSignature(T1_TOKEN, url, p);
		assert.ok(twilio.validateRequest(T1_TOKEN, sig, url, p));
		accepted(await post(stack, base, EVENTS, p));
		accepted(await post(stack, base, EVENTS, p), true);
		// Over TLS the URL is still PUBLIC_URL's.
		accepted(await post(stack, base, EVENTS, eventParams(), { tls: true }));
	});

	test('repeated parameters, UTF-8 values and raw query bytes', async () => {
		const p = eventParams(AC1, {
			MediaUrl0: ['https://media.example/b', 'https://media.example/a'],
			EventDescription: 'Tarea creada — ¡señor Müller! 你好 😀',
			WorkerName: 'O\'Brien & Co <x>',
		});
		accepted(await post(stack, base, EVENTS, p));
		// Values in another order in the body: still the same signature.
		const q = { ...p, Sid: evSid() };
		const sig = twilio.getExpectedTwilioSignature(T1_TOKEN, `${base}${EVENTS}`, q);
		accepted(await post(stack, base, EVENTS, q, { sig,
			body: formBody({ ...q, MediaUrl0: [...q.MediaUrl0].reverse() }) }));
		// The query string is hashed as sent: +, %20, ', %27, @, :, %C3%BC.
		const path = `${EVENTS}?a=b+c&b=b%20c&n=O'Brien&m=O%27Brien&sip=sip:alice@example.com&u=%C3%BC`;
		accepted(await post(stack, base, path, eventParams()));
		// Signed over a re-encoded form of the same query: refused.
		const reencoded = `${base}${EVENTS}?a=b%20c&b=b%20c&n=O%27Brien&m=O%27Brien` +
			'&sip=sip%3Aalice%40example.com&u=%C3%BC';
		const r = await post(stack, base, path, eventParams(), { url: reencoded });
		assertError(r, 403, 'invalid_signature');
	});

	test('any change is 403, audited with its reason, and stores nothing', async () => {
		const p = eventParams();
		const cases = [];
		const send = async (what, reason, opts, params = p, path = EVENTS) => {
			const res = await post(stack, base, path, params, opts);
			assertError(res, 403, 'invalid_signature');
			assert.ok(res.ms < 1000);
			cases.push({ what, reason, rid: res.headers['x-request-id'] });
			if (res.sentSig && res.sentSig.length >= 20)
				sentSigs.push(res.sentSig);
		};
		const good = twilio.getExpectedTwilioSignature(T1_TOKEN, `${base}${EVENTS}`, p);
		sentSigs.push(good);
		await send('URL changed', 'mismatch', { url: `${base}${EVENTS}?x=1` });
		await send('query added', 'mismatch', { sig: good }, p, `${EVENTS}?x=1`);
		await send('http instead of https', 'mismatch',
			{ url: `http://localhost:${stack.httpsPort}${EVENTS}` });
		await send('a value changed', 'mismatch', { sig: good },
			{ ...p, EventDescription: 'Task created!' });
		await send('a parameter added', 'mismatch', { sig: good }, { ...p, Extra: '1' });
		const { EventDescription: _dropped, ...fewer } = p;
		await send('a parameter removed', 'mismatch', { sig: good }, fewer);
		await send('a parameter moved to the query', 'mismatch', { sig: good }, fewer,
			`${EVENTS}?EventDescription=Task+created`);
		await send('another token', 'mismatch', { token: T2_TOKEN });
		await send('header missing', 'missing', { sig: null });
		await send('header empty', 'missing', { sig: '' });
		await send('header of 100 bytes', 'oversized', { sig: 'A'.repeat(100) });
		await send('header not base64', 'malformed', { sig: 'not*base64!' });
		await waitFor('audit rows', async () => {
			const rows = await auditRows(stack, admin.tenant1, 'tenant1');
			return cases.every((c) => rows.some((r) => r.requestId === c.rid)) ||
				`${rows.length} rows`;
		}, 5000);
		const rows = await auditRows(stack, admin.tenant1, 'tenant1');
		for (const c of cases) {
			const row = rows.find((r) => r.requestId === c.rid);
			assert.equal(row.data.reason, c.reason, c.what);
			assert.equal(row.data.route, EVENTS, c.what);
			assert.equal(row.ip, '127.0.0.1', c.what);
		}
		const text = JSON.stringify(rows);
		assert.ok(!text.includes(good) && !text.includes(T1_TOKEN));
		// None of the refused requests stored the event: the genuine one is new.
		accepted(await post(stack, base, EVENTS, p));
	});

	test('cross-tenant attempts are refused for the tenant they target', async () => {
		// tenant2's AccountSid, signed with tenant1's token: resolved to
		// tenant2, whose token does not match.
		const a = eventParams(AC2);
		const ra = await post(stack, base, EVENTS, a);
		assertError(ra, 403, 'invalid_signature');
		// tenant2 by Host, tenant1's AccountSid and token.
		const b = eventParams(AC1);
		const rb = await post(stack, base, EVENTS, b, { headers: { Host: `tenant2.localhost:${stack.httpPort}` } });
		assertError(rb, 403, 'account_mismatch');
		// tenant1 by X-Tenant-Id, tenant2's account, signed by tenant2.
		const c = eventParams(AC2);
		const rc = await post(stack, base, EVENTS, c, { token: T2_TOKEN,
			headers: { 'X-Tenant-Id': 'tenant1' } });
		assertError(rc, 403, 'account_mismatch');
		const rows2 = await auditRows(stack, admin.tenant2, 'tenant2');
		assert.equal(rows2.find((r) => r.requestId === ra.headers['x-request-id'])?.data.reason,
			'mismatch');
		const cross = rows2.find((r) => r.requestId === rb.headers['x-request-id']);
		assert.equal(cross?.data.reason, 'cross_tenant');
		assert.equal(cross.data.accountSid, AC1);
		const rows1 = await auditRows(stack, admin.tenant1, 'tenant1');
		assert.equal(rows1.find((r) => r.requestId === rc.headers['x-request-id'])?.data.reason,
			'cross_tenant');
		// Nothing was stored for either tenant: each genuine delivery is new.
		accepted(await post(stack, base, EVENTS, a, { token: T2_TOKEN }));
		accepted(await post(stack, base, EVENTS, b));
		accepted(await post(stack, base, EVENTS, c, { token: T2_TOKEN }));
	});

	test('no signature or token reaches a log line', async () => {
		const files = ['fcgi.log', 'nginx-error.log', 'access.log'];
		for (const f of files) {
			const text = logLines(stack, f).join('\n');
			for (const s of sentSigs)
				assert.ok(!text.includes(s), `a signature is in ${f}`);
			assert.ok(!text.includes(T1_TOKEN) && !text.includes(T2_TOKEN), `a token is in ${f}`);
		}
		assert.ok(logLines(stack, 'fcgi.log').some((l) => l.includes('twilio signature rejected')));
	});
});

describe('signatures with PUBLIC_URL set explicitly', () => {
	const PUBLIC = 'https://hooks.nonflex.test';
	let stack;
	let admin;

	before(async () => {
		stack = await startStack({ env: { PUBLIC_URL: PUBLIC } });
		seedStack(stack);
		admin = (await loginDemo(stack, 'tenant1', 'admin')).token;
	});
	after(() => stopChecked(stack));

	test('a forged Host, X-Forwarded-Host or -Proto does not choose the URL', async () => {
		const forged = { Host: 'evil.example', 'X-Forwarded-Host': 'evil.example',
			'X-Forwarded-Proto': 'http', 'X-Forwarded-Port': '80' };
		accepted(await post(stack, PUBLIC, EVENTS, eventParams(), { headers: forged }));
		// Twilio's other form of the URL, with the default port.
		accepted(await post(stack, PUBLIC, EVENTS, eventParams(),
			{ url: `${PUBLIC}:443${EVENTS}`, headers: forged }));
		// Signed for the URL the forged headers describe: refused.
		const res = await post(stack, PUBLIC, EVENTS, eventParams(),
			{ url: `http://evil.example${EVENTS}`, headers: forged });
		assertError(res, 403, 'invalid_signature');
	});

	test('a flood of forged requests is audited at most 30 times a minute', async () => {
		const n = AUDIT_PER_MIN + 15;
		for (let i = 0; i < n; i++)
			assertError(await post(stack, PUBLIC, EVENTS, eventParams(), { sig: 'AAAA' }), 403,
				'invalid_signature');
		const rows = await auditRows(stack, admin, 'tenant1');
		assert.ok(rows.length >= 1 && rows.length <= AUDIT_PER_MIN, `${rows.length} audit rows`);
		// ... while every one of them is still logged.
		await waitFor('log lines', () => logLines(stack, 'fcgi.log')
			.filter((l) => l.includes('twilio signature rejected')).length >= n + 1, 5000);
	});
});

describe('the development bypass', () => {
	let stack;

	before(async () => {
		stack = await startStack({ env: { NONFLEX_DEV_SKIP_TWILIO_SIGNATURE: '1' } });
	});
	after(() => stopChecked(stack));

	test('accepts unsigned webhooks and warns on every request', async () => {
		const rids = [];
		for (const sig of [null, 'garbage', '']) {
			const res = await post(stack, '', EVENTS, eventParams(), { sig });
			accepted(res);
			rids.push(res.headers['x-request-id']);
		}
		await waitFor('one warning per request', () => rids.every((rid) =>
			logLines(stack, 'fcgi.log').filter((l) => l.includes(rid) &&
				l.includes('NONFLEX_DEV_SKIP_TWILIO_SIGNATURE')).length === 1), 5000);
	});
});
