// taskrouter-webhooks.test.mjs - TaskRouter's callbacks through the real
// stack (RELIABILITY section 2, battery 17, 21 and 22), every request
// signed by the official `twilio` package with the tenant's auth token:
// the assignment callback answers a voice task with "dequeue" from the
// tenant's number and anything else with "accept", in well under a second;
// a replayed reservation gets the same answer, a settled one {}; malformed
// callbacks are 400 and store nothing.  Workspace events are stored once
// (a replay is 200 and changes nothing) and reach an EventSource subscriber
// of the tenant's "queue" topic once.  With the store down both answer 503,
// never 2xx.
//
// SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { assertError, assertJson, stopChecked } from './lib/check.mjs';
import { request } from './lib/http.mjs';
import { loginDemo, seedStack } from './lib/session.mjs';
import { subscribe } from './lib/sse.mjs';
import { SECRET_ENV, startStack } from './lib/stack.mjs';
import { formBody, signedPost } from './lib/twilio-sign.mjs';

const T1_TOKEN = SECRET_ENV.TENANT1_TWILIO_AUTH_TOKEN;
const AC1 = 'AC00000000000000000000000000000001';
const WS1 = 'WS00000000000000000000000000000001';
const VOICE_NUMBER = '+15005550001';               // infra/tenants.json, tenant1
const ASSIGN = '/webhooks/twilio/taskrouter/assignment';
const EVENTS = '/webhooks/twilio/taskrouter/events';

let seq = 0;
// A SID of this kind no other test run uses.
function sid(prefix) {
	seq += 1;
	return `${prefix}${process.pid.toString(16).padStart(8, '0')}${seq.toString(16).padStart(24, '0')}`;
}

function signed(stack, p, params) {
	return signedPost(stack, p, params, { token: T1_TOKEN });
}

function assignment(extra = {}) {
	return { AccountSid: AC1, WorkspaceSid: WS1, WorkflowSid: 'WW00000000000000000000000000000001',
		TaskQueueSid: sid('WQ'), WorkerSid: sid('WK'), TaskSid: sid('WT'),
		ReservationSid: sid('WR'), TaskAge: '3', TaskPriority: '0',
		Timestamp: String(Math.floor(Date.now() / 1000)),
		WorkerAttributes: JSON.stringify({ contact_uri: 'client:sarah' }),
		TaskAttributes: JSON.stringify({ channel: 'chat', conversation_sid: sid('CH') }), ...extra };
}

const voiceAttrs = () => JSON.stringify({ call_sid: sid('CA'), from: '+15551230000',
	to: VOICE_NUMBER, direction: 'inbound' });

function event(type, extra = {}) {
	return { AccountSid: AC1, WorkspaceSid: WS1, WorkspaceName: 'Acme', Sid: sid('EV'),
		EventType: type, EventDescription: `${type} happened`, ResourceType: 'Task',
		ResourceSid: sid('WT'), Timestamp: String(Math.floor(Date.now() / 1000)),
		TimestampMs: String(Date.now()), ...extra };
}

// A 200 application/json answer within TaskRouter's patience; its body.
function answered(res) {
	const body = assertJson(res, 200);
	assert.ok(res.ms < 1000, `took ${Math.round(res.ms)} ms`);
	return body;
}

describe('TaskRouter callbacks', () => {
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

	test('a voice task is dequeued from the tenant\'s number, any other accepted', async () => {
		const voice = assignment({ TaskAttributes: voiceAttrs() });
		assert.deepEqual(answered(await signed(stack, ASSIGN, voice)),
			{ instruction: 'dequeue', from: VOICE_NUMBER });
		assert.deepEqual(answered(await signed(stack, ASSIGN, assignment())),
			{ instruction: 'accept' });
	});

	test('a replayed reservation gets the same answer; a settled one {}', async () => {
		const a = assignment();
		assert.deepEqual(answered(await signed(stack, ASSIGN, a)), { instruction: 'accept' });
		assert.deepEqual(answered(await signed(stack, ASSIGN, a)), { instruction: 'accept' });
		// Even if the replay now looked like a voice task: the first answer stands.
		assert.deepEqual(answered(await signed(stack, ASSIGN,
			{ ...a, TaskAttributes: voiceAttrs() })), { instruction: 'accept' });
		// Concurrent copies of one new reservation: one answer for all.
		const v = assignment({ TaskAttributes: voiceAttrs() });
		const all = await Promise.all(Array.from({ length: 6 }, () => signed(stack, ASSIGN, v)));
		for (const res of all)
			assert.deepEqual(answered(res), { instruction: 'dequeue', from: VOICE_NUMBER });
		// Once TaskRouter has reported the outcome, nothing is left to instruct.
		const done = event('reservation.timeout', { ResourceType: 'Reservation',
			ResourceSid: a.ReservationSid, ReservationSid: a.ReservationSid, TaskSid: a.TaskSid,
			WorkerSid: a.WorkerSid });
		answered(await signed(stack, EVENTS, done));
		assert.deepEqual(answered(await signed(stack, ASSIGN, a)), {});
		const late = assignment();
		answered(await signed(stack, EVENTS, event('reservation.canceled', {
			ReservationSid: late.ReservationSid, TaskSid: late.TaskSid })));
		assert.deepEqual(answered(await signed(stack, ASSIGN, late)), {});
	});

	test('malformed assignment callbacks are 400 and store nothing', async () => {
		const bad = [
			[{ ReservationSid: 'WR123' }, 'invalid_field', 'ReservationSid'],
			[{ ReservationSid: sid('WK') }, 'invalid_field', 'ReservationSid'],
			[{ WorkerSid: 'WKzz000000000000000000000000000000' }, 'invalid_field', 'WorkerSid'],
			[{ TaskSid: undefined }, 'missing_field', 'TaskSid'],
			[{ TaskQueueSid: 'nope' }, 'invalid_field', 'TaskQueueSid'],
			[{ TaskAttributes: '{"call_sid": ' }, 'invalid_field', 'TaskAttributes'],
			[{ TaskAttributes: '[1, 2]' }, 'invalid_field', 'TaskAttributes'],
			[{ TaskAttributes: '{"a": 1, "a": 2}' }, 'invalid_field', 'TaskAttributes'],
			[{ TaskAttributes: '{"call_sid": "CA-not-a-sid"}' }, 'invalid_field',
				'TaskAttributes.call_sid'],
			[{ TaskAttributes: undefined }, 'missing_field', 'TaskAttributes'],
		];
		for (const [change, code, field] of bad) {
			const a = assignment({ TaskAttributes: voiceAttrs() });
			for (const [k, v] of Object.entries(change))
				if (v === undefined)
					delete a[k];
				else
					a[k] = v;
			const e = assertError(await signed(stack, ASSIGN, a), 400, code);
			assert.equal(e.field, field, JSON.stringify(change));
		}
		// A repeated ReservationSid is ambiguous.
		const twice = assignment();
		const e = assertError(await signed(stack, ASSIGN,
			{ ...twice, ReservationSid: [twice.ReservationSid, sid('WR')] }), 400, 'invalid_field');
		assert.equal(e.field, 'ReservationSid');
		// Refused as a voice task with a bad worker; then sent properly as a
		// chat task: had the first been stored, the answer would be dequeue.
		const r = assignment({ TaskAttributes: voiceAttrs(), WorkerSid: 'WK1' });
		assertError(await signed(stack, ASSIGN, r), 400, 'invalid_field');
		assert.deepEqual(answered(await signed(stack, ASSIGN,
			{ ...assignment(), ReservationSid: r.ReservationSid })), { instruction: 'accept' });
	});

	test('events are stored once and published once on "queue"', async () => {
		const ev = event('task.created', { TaskSid: sid('WT'), TaskQueueSid: sid('WQ'),
			TaskAttributes: JSON.stringify({ channel: 'voice' }) });
		assert.deepEqual(answered(await signed(stack, EVENTS, ev)),
			{ received: true, duplicate: false });
		assert.deepEqual(answered(await signed(stack, EVENTS, ev)),
			{ received: true, duplicate: true });
		// "EventSid" names the same event as "Sid".
		const { Sid: evSid, ...rest } = ev;
		assert.deepEqual(answered(await signed(stack, EVENTS, { ...rest, EventSid: evSid })),
			{ received: true, duplicate: true });
		let got;
		for (;;) {
			const m = await sub.next(5000);
			if (m.json?.data?.eventSid === ev.Sid) {
				got = m.json;
				break;
			}
		}
		assert.equal(got.type, 'taskrouter.task.created');
		assert.deepEqual(got.data, { eventSid: ev.Sid, eventType: 'task.created',
			taskSid: ev.TaskSid, workerSid: null, reservationSid: null,
			taskQueueSid: ev.TaskQueueSid, at: new Date(Number(ev.TimestampMs)).toISOString() });
		// The replays published nothing.
		for (let m; (m = await sub.nextOrNull(1000)) !== null;)
			assert.notEqual(m.json?.data?.eventSid, ev.Sid, 'a replay was published');
	});

	test('malformed events are 400 and store nothing', async () => {
		const ev = event('worker.activity.update', { WorkerSid: sid('WK') });
		const bad = [
			[{ Sid: undefined }, 'missing_field', 'Sid'],
			[{ Sid: 'EV1' }, 'invalid_field', 'Sid'],
			[{ EventSid: sid('EV') }, 'invalid_field', 'EventSid'],
			[{ EventType: undefined }, 'missing_field', 'EventType'],
			[{ EventType: 'Task Created' }, 'invalid_field', 'EventType'],
			[{ WorkerSid: 'WK' }, 'invalid_field', 'WorkerSid'],
			[{ ReservationSid: sid('WT') }, 'invalid_field', 'ReservationSid'],
		];
		for (const [change, code, field] of bad) {
			const p = { ...ev };
			for (const [k, v] of Object.entries(change))
				if (v === undefined)
					delete p[k];
				else
					p[k] = v;
			const e = assertError(await signed(stack, EVENTS, p), 400, code);
			assert.equal(e.field, field, JSON.stringify(change));
		}
		assert.deepEqual(answered(await signed(stack, EVENTS, ev)),
			{ received: true, duplicate: false });
	});
});

describe('TaskRouter callbacks with the store down', () => {
	let stack;

	before(async () => {
		// A directory where the SQLite file should be: the store cannot open.
		stack = await startStack({ waitHealthy: false, env: (dir) => {
			fs.mkdirSync(path.join(dir, 'db-is-a-dir'), { recursive: true });
			return { STORE_URI: `sqlite://${path.join(dir, 'db-is-a-dir')}` };
		} });
	});
	after(() => stopChecked(stack));

	test('503 with Retry-After, never a 2xx', async () => {
		for (const [p, params] of [[EVENTS, event('task.created')], [ASSIGN, assignment()]]) {
			const res = await signed(stack, p, params);
			assertError(res, 503, 'store_unavailable');
			assert.ok(Number(res.headers['retry-after']) >= 1);
			assert.ok(res.ms < 1500, `took ${Math.round(res.ms)} ms`);
		}
		// An unsigned one is refused before the store is even needed.
		const res = await request(stack, { method: 'POST', path: EVENTS,
			body: formBody(event('task.created')),
			headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
		assertError(res, 403, 'invalid_signature');
	});
});
