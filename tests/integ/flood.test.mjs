// flood.test.mjs - a request flood from one address (RELIABILITY battery
// 54) through the real stack: nginx's limit_req answers the login flood
// with 429 (JSON, Retry-After, security headers) before the workers spend
// a password hash on it, while Twilio's signed webhooks, limited by another
// zone, keep being accepted during the flood, and the API stays up.
//
// SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import twilio from 'twilio';

import { stopChecked } from './lib/check.mjs';
import { hammer, request } from './lib/http.mjs';
import { SECRET_ENV, startStack } from './lib/stack.mjs';
import { formBody, publicUrl } from './lib/twilio-sign.mjs';

const EVENTS = '/webhooks/twilio/taskrouter/events';
const AC1 = 'AC00000000000000000000000000000001';

let stack;

before(async () => {
	stack = await startStack();
});

after(() => stopChecked(stack));

// A signed TaskRouter event, as Twilio sends it to the stack's PUBLIC_URL.
function webhook(i) {
	const params = { AccountSid: AC1, WorkspaceSid: 'WS00000000000000000000000000000001',
		Sid: `EV${process.pid.toString(16).padStart(8, '0')}${i.toString(16).padStart(24, '0')}`,
		EventType: 'task.created', EventDescription: 'Task created', ResourceType: 'Task',
		ResourceSid: `WT${i.toString(16).padStart(32, '0')}`,
		TimestampMs: String(Date.now()) };
	return { method: 'POST', path: EVENTS, body: formBody(params),
		headers: { 'Content-Type': 'application/x-www-form-urlencoded',
			'X-Twilio-Signature': twilio.getExpectedTwilioSignature(
				SECRET_ENV.TENANT1_TWILIO_AUTH_TOKEN, publicUrl(stack, EVENTS), params) } };
}

describe('a flood from one address (battery 54)', () => {
	test('login is throttled by nginx while signed webhooks keep being accepted', async () => {
		const logins = hammer(stack, 300, 40, () => ({ method: 'POST', path: '/api/agents/login',
			headers: { 'X-Tenant-Id': 'tenant1' },
			body: { username: 'nobody', password: 'not-the-password' } }));
		const hooks = hammer(stack, 60, 4, (i) => webhook(i));
		const [l, h] = await Promise.all([logins, hooks]);

		const errors = l.filter((r) => r.error);
		assert.equal(errors.length, 0, JSON.stringify(errors.slice(0, 3)));
		const limited = l.filter((r) => r.json?.error?.code === 'rate_limited');
		// nginx lets a burst of 10 through at 5 r/s (conf/stack); the rest is
		// refused before any worker sees it.
		assert.ok(limited.length >= 250, `only ${limited.length} of 300 throttled by nginx`);
		for (const r of l.filter((x) => x.status === 429)) {
			assert.ok(Number(r.headers['retry-after']) >= 1, 'Retry-After missing');
			assert.equal(r.headers['x-content-type-options'], 'nosniff');
			assert.match(r.headers['content-type'], /^application\/json/);
		}
		// What got through met the application: a wrong password, or its own
		// per-address counter (too_many_attempts).
		for (const r of l.filter((x) => x.json?.error?.code !== 'rate_limited'))
			assert.ok([401, 429].includes(r.status) && ['invalid_credentials',
				'too_many_attempts'].includes(r.json?.error?.code), r.text);

		const bad = h.filter((r) => r.status !== 200);
		assert.equal(bad.length, 0, JSON.stringify(bad.slice(0, 3).map((r) => r.error ?? r.text)));

		const health = await request(stack, { path: '/api/health' });
		assert.equal(health.status, 200, health.text);
	});
});
