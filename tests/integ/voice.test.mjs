// voice.test.mjs - the Voice webhooks through the real stack (issue 4;
// RELIABILITY battery 10, 13, 18): a call signed as Twilio signs it (the
// twilio package's getExpectedTwilioSignature with the tenant's auth token)
// is answered with TwiML in the tenant's language that enqueues it into
// the tenant's TaskRouter workflow with a Task naming the call; a replay
// stores one `calls` row and publishes one event; status callbacks that
// arrive out of order never regress the call's state; a hostile From or To
// never changes the TwiML; a malformed CallSid is 400 and stores nothing;
// and with the store down the caller still hears TwiML (battery 18) while
// status callbacks get 503.  A tenant without a workflow says goodbye.
// TwiML is read with the strict parser of lib/xml.mjs.
//
// SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import twilio from 'twilio';

import { assertCommonHeaders, assertError, assertJson, stopChecked } from './lib/check.mjs';
import { request } from './lib/http.mjs';
import { loginDemo, seedStack } from './lib/session.mjs';
import { subscribe } from './lib/sse.mjs';
import { SECRET_ENV, SRCDIR, startStack } from './lib/stack.mjs';
import { signedPost } from './lib/twilio-sign.mjs';
import { parseXml, structure } from './lib/xml.mjs';

const T1 = { account: 'AC00000000000000000000000000000001',
	token: SECRET_ENV.TENANT1_TWILIO_AUTH_TOKEN, number: '+15005550001' };
const T2 = { account: 'AC00000000000000000000000000000002',
	token: SECRET_ENV.TWILIO_AUTH_TOKEN, number: '+15005550002' };   // tenant2 falls back
const VOICE = '/webhooks/twilio/voice';
const STATUS = '/webhooks/twilio/voice/status';
const TWIML_TYPE = /^text\/xml; ?charset=utf-8$/i;
const ENQUEUED = ['Response', 'Response/Say', 'Response/Enqueue', 'Response/Enqueue/Task'];

const newCallSid = () => `CA${crypto.randomBytes(16).toString('hex')}`;

// A form webhook signed as Twilio signs it, over the URL Twilio would
// have called: the stack's PUBLIC_URL (conf/stack: https://localhost:<port>).
function signed(stack, route, params, tenant = T1) {
	return signedPost(stack, route, params, { token: tenant.token });
}

// The parameters of Twilio's incoming-call request.
function callParams(tenant, sid, extra = {}) {
	return { AccountSid: tenant.account, ApiVersion: '2010-04-01', CallSid: sid,
		CallStatus: 'ringing', Called: tenant.number, Caller: '+14155550100',
		Direction: 'inbound', From: '+14155550100', To: tenant.number, ...extra };
}

// A TwiML answer: 200, text/xml with charset, common headers; parsed.
function twimlOf(res) {
	assert.equal(res.status, 200, res.text.slice(0, 300));
	assert.match(res.headers['content-type'] ?? '', TWIML_TYPE);
	assertCommonHeaders(res);
	const doc = parseXml(res.text);
	assert.equal(doc.version, '1.0');
	assert.equal(doc.encoding, 'UTF-8');
	return doc.root;
}

const textOf = (el) => el.children.filter((c) => typeof c === 'string').join('');

// Say element, Enqueue element and parsed Task of an enqueued answer.
function enqueued(root) {
	assert.deepEqual(structure(root), ENQUEUED);
	const [say, enqueue] = root.children;
	return { say, enqueue, task: JSON.parse(textOf(enqueue.children[0])) };
}

function sql(stack, q) {
	return execFileSync('sqlite3', [path.join(stack.stateDir, 'nonflex.db'), q],
		{ encoding: 'utf8' }).trim();
}

function callRows(stack, sid) {
	const out = sql(stack, `SELECT tenant, doc FROM c_calls WHERE json_extract(doc, '$.callSid') = '${sid}'`);
	return out === '' ? [] : out.split('\n').map((l) => {
		const bar = l.indexOf('|');
		return { tenant: l.slice(0, bar), ...JSON.parse(l.slice(bar + 1)) };
	});
}

describe('Voice webhooks', () => {
	let stack;
	let sub;

	before(async () => {
		stack = await startStack();
		seedStack(stack);
		const { token } = await loginDemo(stack, 'tenant1', 'sarah');
		sub = await subscribe(stack, 'queue', { headers: { 'X-Tenant-Id': 'tenant1',
			Authorization: `Bearer ${token}` } });
		assert.equal(sub.status, 200);
	});
	after(() => {
		sub?.close();
		stopChecked(stack);
	});

	test('an incoming call is greeted in English and enqueued with its Task', async () => {
		const sid = newCallSid();
		const res = await signed(stack, VOICE, callParams(T1, sid));
		assert.ok(res.ms < 1000, `took ${Math.round(res.ms)} ms`);
		const { say, enqueue, task } = enqueued(twimlOf(res));
		assert.equal(say.attrs.language, 'en-US');
		assert.match(textOf(say), /^Thank you for calling Acme Retail\./);
		assert.deepEqual(enqueue.attrs, { workflowSid: 'WW00000000000000000000000000000001' });
		assert.deepEqual(task, { type: 'inbound_call', channel: 'voice', call_sid: sid,
			from: '+14155550100', to: T1.number, language: 'en', skill: 'support' });

		const rows = callRows(stack, sid);
		assert.equal(rows.length, 1);
		assert.deepEqual({ tenant: rows[0].tenant, from: rows[0].from, to: rows[0].to,
			direction: rows[0].direction, status: rows[0].status },
		{ tenant: 'tenant1', from: '+14155550100', to: T1.number, direction: 'inbound',
			status: 'ringing' });
		assert.match(rows[0].at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

		const ev = await sub.next(5000);
		assert.equal(ev.json?.type, 'call.incoming');
		assert.equal(ev.json?.data?.callSid, sid);
	});

	test('the TwiML is what the twilio package builds for the same answer', async () => {
		const sid = newCallSid();
		const res = await signed(stack, VOICE, callParams(T1, sid));
		const root = twimlOf(res);
		const { say, task } = enqueued(root);
		const ref = new twilio.twiml.VoiceResponse();
		ref.say(say.attrs, textOf(say));
		ref.enqueue({ workflowSid: 'WW00000000000000000000000000000001' })
			.task({}, JSON.stringify(task));
		assert.deepEqual(root, parseXml(ref.toString()).root);
		await sub.next(5000);
	});

	test('tenant2 is answered in Spanish', async () => {
		const sid = newCallSid();
		const res = await signed(stack, VOICE, callParams(T2, sid), T2);
		const { say, enqueue, task } = enqueued(twimlOf(res));
		assert.equal(say.attrs.language, 'es-MX');
		assert.match(textOf(say), /^Gracias por llamar a Tienda Ejemplo\./);
		assert.equal(enqueue.attrs.workflowSid, 'WW00000000000000000000000000000002');
		assert.equal(task.language, 'es');
		assert.equal(task.call_sid, sid);
		assert.equal(callRows(stack, sid)[0]?.tenant, 'tenant2');
		// tenant1's subscriber never hears of tenant2's call.
		assert.equal(await sub.nextOrNull(500), null);
	});

	test('a replayed call is stored and announced once, answered the same', async () => {
		const sid = newCallSid();
		const first = await signed(stack, VOICE, callParams(T1, sid));
		const again = await signed(stack, VOICE, callParams(T1, sid));
		twimlOf(first);
		assert.equal(again.text, first.text);
		assert.equal(callRows(stack, sid).length, 1);
		const ev = await sub.next(5000);
		assert.equal(ev.json?.data?.callSid, sid);
		assert.equal(await sub.nextOrNull(700), null, 'a second call.incoming for a replay');
	});

	test('status callbacks in order advance the call', async () => {
		const sid = newCallSid();
		await signed(stack, VOICE, callParams(T1, sid));
		await sub.next(5000);
		let n = 0;
		for (const st of ['in-progress', 'completed']) {
			const res = await signed(stack, STATUS, { AccountSid: T1.account, CallSid: sid,
				CallStatus: st, SequenceNumber: String(n++), CallDuration: '7' });
			assert.equal(res.status, 204, res.text);
			assert.equal(res.text, '');
			assert.equal(callRows(stack, sid)[0].status, st);
			const ev = await sub.next(5000);
			assert.deepEqual([ev.json?.type, ev.json?.data?.status], ['call.status', st]);
		}
		assert.equal(callRows(stack, sid)[0].duration, 7);
	});

	test('out-of-order status callbacks never regress a final state', async () => {
		// By SequenceNumber: the final one first, older ones after it.
		const sid = newCallSid();
		await signed(stack, VOICE, callParams(T1, sid));
		const cb = (CallStatus, SequenceNumber, extra = {}) => signed(stack, STATUS,
			{ AccountSid: T1.account, CallSid: sid, CallStatus, SequenceNumber, ...extra });
		assert.equal((await cb('completed', '3', { CallDuration: '42' })).status, 204);
		for (const [st, seq] of [['ringing', '1'], ['in-progress', '2'], ['initiated', '0'],
			['completed', '2']])
			assert.equal((await cb(st, seq, { CallDuration: '1' })).status, 204);
		let row = callRows(stack, sid)[0];
		assert.deepEqual([row.status, row.duration, row.sequence], ['completed', 42, 3]);

		// Without SequenceNumber the precedence alone decides.
		const sid2 = newCallSid();
		const cb2 = (CallStatus) => signed(stack, STATUS,
			{ AccountSid: T1.account, CallSid: sid2, CallStatus });
		for (const st of ['busy', 'ringing', 'in-progress', 'failed'])
			assert.equal((await cb2(st)).status, 204);
		row = callRows(stack, sid2)[0];
		assert.equal(row.status, 'busy');
		// Drain the events of this test (incoming + the applied statuses).
		while (await sub.nextOrNull(300) !== null)
			;
	});

	test('a status callback for an unknown call creates its record', async () => {
		const sid = newCallSid();
		const res = await signed(stack, STATUS, { AccountSid: T1.account, CallSid: sid,
			CallStatus: 'no-answer', SequenceNumber: '4', From: T1.number,
			To: '+14155550199', Direction: 'outbound-api' });
		assert.equal(res.status, 204);
		const rows = callRows(stack, sid);
		assert.equal(rows.length, 1);
		assert.deepEqual([rows[0].status, rows[0].from, rows[0].to, rows[0].direction],
			['no-answer', T1.number, '+14155550199', 'outbound-api']);
		while (await sub.nextOrNull(300) !== null)
			;
	});

	test('a hostile From or To never changes the TwiML', async () => {
		const hostile = ['<Say>pwned</Say>', '"><Hangup/><Say x="', '</Task></Enqueue><Dial>+1900',
			']]>&amp;&#60;', '+1415555\u0001', 'client:al ice', 'client:' + 'a'.repeat(122),
			'sip:bob@example.com'];
		for (const h of hostile) {
			const sid = newCallSid();
			const res = await signed(stack, VOICE, callParams(T1, sid, { From: h, To: h }));
			const { task } = enqueued(twimlOf(res));
			assert.deepEqual([task.from, task.to, task.call_sid], ['anonymous', 'unknown', sid],
				JSON.stringify(h));
			assert.ok(!res.text.includes('pwned') && !res.text.includes('Dial'), res.text);
			assert.deepEqual([callRows(stack, sid)[0].from, callRows(stack, sid)[0].to],
				['anonymous', 'unknown']);
		}
		// A Twilio Client caller keeps its identity.
		const sid = newCallSid();
		const res = await signed(stack, VOICE, callParams(T1, sid, { From: 'client:agent_7.x' }));
		assert.equal(enqueued(twimlOf(res)).task.from, 'client:agent_7.x');
		while (await sub.nextOrNull(300) !== null)
			;
	});

	test('a malformed CallSid is 400 and stores nothing', async () => {
		const bad = ['CA123', `CA${'g'.repeat(32)}`, `XX${'a'.repeat(32)}`, `CA${'a'.repeat(33)}`,
			`ca${'a'.repeat(32)}`, `CA${'a'.repeat(31)}<`];
		const before = sql(stack, 'SELECT count(*) FROM c_calls');
		for (const sid of bad) {
			const e = assertError(await signed(stack, VOICE, callParams(T1, sid)), 400,
				'invalid_field');
			assert.equal(e.field, 'CallSid');
			assertError(await signed(stack, STATUS, { AccountSid: T1.account, CallSid: sid,
				CallStatus: 'completed' }), 400, 'invalid_field');
		}
		const { CallSid, ...noSid } = callParams(T1, newCallSid());
		void CallSid;
		assert.equal(assertError(await signed(stack, VOICE, noSid), 400, 'missing_field').field,
			'CallSid');
		const sid = newCallSid();
		for (const [params, field] of [
			[{ CallStatus: 'ringing-ish' }, 'CallStatus'], [{}, 'CallStatus'],
			[{ CallStatus: 'completed', SequenceNumber: '-1' }, 'SequenceNumber'],
			[{ CallStatus: 'completed', SequenceNumber: '1.5' }, 'SequenceNumber'],
			[{ CallStatus: 'completed', CallDuration: 'x' }, 'CallDuration']]) {
			const e = assertError(await signed(stack, STATUS,
				{ AccountSid: T1.account, CallSid: sid, ...params }), 400,
			Object.keys(params).includes(field) ? 'invalid_field' : 'missing_field');
			assert.equal(e.field, field);
		}
		assert.equal(sql(stack, 'SELECT count(*) FROM c_calls'), before);
	});

	test('an unsigned or wrongly signed call is refused and not stored', async () => {
		const sid = newCallSid();
		const params = callParams(T1, sid);
		const unsigned = await request(stack, { method: 'POST', path: VOICE,
			body: new URLSearchParams(params).toString(),
			headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
		assert.equal(unsigned.status, 403);
		// Signed with tenant2's token while claiming tenant1's account.
		const wrong = await signed(stack, VOICE, params, { ...T1, token: T2.token });
		assert.equal(wrong.status, 403);
		assertJson(wrong, 403);
		assert.equal(callRows(stack, sid).length, 0);
	});
});

describe('Voice webhooks without a store, and a tenant without a workflow', () => {
	let stack;

	before(async () => {
		// tenant2 loses its workflow; the store is a directory, so it cannot open.
		const tenants = JSON.parse(fs.readFileSync(path.join(SRCDIR, 'infra', 'tenants.json'), 'utf8'));
		delete tenants.tenant2.twilio.workflowSid;
		stack = await startStack({ waitHealthy: false, env: (dir) => {
			fs.mkdirSync(path.join(dir, 'db-is-a-dir'), { recursive: true });
			fs.writeFileSync(path.join(dir, 'tenants.json'), JSON.stringify(tenants));
			return { STORE_URI: `sqlite://${path.join(dir, 'db-is-a-dir')}`,
				TENANTS_FILE: path.join(dir, 'tenants.json') };
		} });
		// Ready when the worker answers at all (health is 503: store down).
		for (let i = 0; i < 100; i++) {
			try {
				const h = await request(stack, { path: '/api/health', timeout: 2000, record: false });
				if (h.status === 503)
					break;
			} catch {
				// not up yet
			}
			await new Promise((r) => setTimeout(r, 200));
		}
	});
	after(() => stopChecked(stack));

	test('the caller still hears TwiML and is enqueued when the store is down', async () => {
		const sid = newCallSid();
		const res = await signed(stack, VOICE, callParams(T1, sid));
		assert.ok(res.ms < 2000, `took ${Math.round(res.ms)} ms`);
		const { task } = enqueued(twimlOf(res));
		assert.equal(task.call_sid, sid);
		// Status callbacks need the store: 503 so Twilio (or reconciliation) retries.
		assertError(await signed(stack, STATUS, { AccountSid: T1.account, CallSid: sid,
			CallStatus: 'completed' }), 503, 'store_unavailable');
	});

	test('a tenant without a TaskRouter workflow says goodbye and hangs up', async () => {
		const res = await signed(stack, VOICE, callParams(T2, newCallSid()), T2);
		const root = twimlOf(res);
		assert.deepEqual(structure(root), ['Response', 'Response/Say', 'Response/Say',
			'Response/Hangup']);
		assert.equal(root.children[1].attrs.language, 'es-MX');
		assert.match(textOf(root.children[1]), /no hay agentes disponibles/);
	});
});
