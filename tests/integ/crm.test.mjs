// crm.test.mjs - the CRM path through the real stack (issue 5 items 1 and 5;
// RELIABILITY battery 31, 32, 42): customer lookups answered by a fake CRM
// in both of the original's shapes, the Redis cache in front of it (per
// tenant), the fallback to the local store when the CRM fails (500, stall,
// garbage, redirect to the metadata address, 404, wrong key), and tickets
// carried to the CRM by nonflex-jobs, retried until the CRM accepts.
//
// DESIGN: one stack whose CRM_BASE_URL points at tests/integ/lib/fake-crm.mjs
// on 127.0.0.1 (NONFLEX_CRM_ALLOW_PRIVATE=1, short CRM timeouts and job
// backoff so failures take well under a second).  tenant1 authenticates
// with TENANT1_CRM_API_KEY and sees the fake's "main" data, tenant2 falls
// back to CRM_API_KEY and sees "alt": the same phone number is a different
// person in each, which is what proves the cache is tenant-scoped.  Each
// test empties the CRM cache keys in the stack's Redis and resets the
// fake's counters and mode first.
//
// SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, beforeEach, test } from 'node:test';

import { assertError, assertJson, stopChecked, waitFor } from './lib/check.mjs';
import { METADATA_URL, startFakeCrm } from './lib/fake-crm.mjs';
import { request } from './lib/http.mjs';
import { loginDemo, seedStack } from './lib/session.mjs';
import { SECRET_ENV, startStack } from './lib/stack.mjs';

const CRM_TIMEOUT_MS = 800;
const MICHAEL = '/contacts/phone/%2B15555551234';
const TICKETS = '/tickets';

let stack;
let fake;
const tok = {};

function api(tenant, method, p, body) {
	return request(stack, { method, path: p, body,
		headers: { 'X-Tenant-Id': tenant, Authorization: `Bearer ${tok[tenant]}` } });
}

function lookupPhone(tenant, phone) {
	return api(tenant, 'GET', `/api/customers/phone/${encodeURIComponent(phone)}`);
}

function redisCli(...args) {
	const r = spawnSync('redis-cli', ['-s', path.join(stack.runDir, 'redis.sock'), ...args],
		{ encoding: 'utf8', timeout: 5000 });
	assert.equal(r.status, 0, `redis-cli ${args.join(' ')}: ${r.stderr}`);
	return r.stdout.split('\n').filter(Boolean);
}

function crmCacheKeys() {
	return redisCli('--scan', '--pattern', 'nf:*:crm:*');
}

// Every log line of the stack, all files.
function allLogs() {
	let text = '';
	for (const f of fs.readdirSync(stack.logDir))
		text += fs.readFileSync(path.join(stack.logDir, f), 'utf8');
	return text;
}

const KEYS = { [SECRET_ENV.TENANT1_CRM_API_KEY]: 'main', [SECRET_ENV.CRM_API_KEY]: 'alt' };

before(async () => {
	fake = await startFakeCrm({ keys: KEYS });
	stack = await startStack({ env: {
		CRM_BASE_URL: fake.url,
		NONFLEX_CRM_ALLOW_PRIVATE: '1',
		NONFLEX_CRM_TIMEOUT_MS: String(CRM_TIMEOUT_MS),
		NONFLEX_CRM_CONNECT_TIMEOUT_MS: '300',
		NONFLEX_JOBS_BACKOFF_BASE_MS: '100',
		NONFLEX_JOBS_BACKOFF_MAX_MS: '300',
		NONFLEX_JOBS_MAX_ATTEMPTS: '8',
		NONFLEX_CRM_BREAKER_FAILURES: '3',
		NONFLEX_CRM_BREAKER_OPEN_S: '2',
	} });
	seedStack(stack);
	tok.tenant1 = (await loginDemo(stack, 'tenant1')).token;
	tok.tenant2 = (await loginDemo(stack, 'tenant2')).token;
});

after(async () => {
	try {
		stopChecked(stack);
	} finally {
		await fake?.stop();
	}
});

beforeEach(() => {
	for (const k of [...crmCacheKeys(), ...redisCli('--scan', '--pattern', 'nf:*:breaker:*')])
		redisCli('DEL', k);
	fake.reset();
	fake.setKeys(KEYS);
});

test('a lookup is answered by the CRM: nested shape mapped, then served from the cache', async () => {
	let c = assertJson(await lookupPhone('tenant1', '+1 (555) 555-1234'), 200);
	assert.equal(c.source, 'crm');
	assert.equal(c.externalId, 'CRM-MJ-1001');
	assert.deepEqual(c.profile, { firstName: 'Michael', lastName: 'Johnson',
		email: 'michael.johnson@crm.example.com', phone: '+15555551234' });
	assert.deepEqual(c.phones, ['+15555551234', '+442079460958']);
	assert.equal(c.tier, 'gold-crm');
	assert.equal(c.addresses[0].city, 'Springfield');
	assert.equal(c.orders[0].orderId, 'ORD-1000');
	assert.equal(c.orders[0].total, 129.9);
	assert.deepEqual(c.orders[0].items, [{ sku: 'SKU-1', name: 'Headphones', qty: 1, price: 129.9 }]);
	assert.equal(fake.count(MICHAEL), 1);
	assert.deepEqual(crmCacheKeys(), ['nf:tenant1:crm:phone:+15555551234']);

	// Another spelling of the same number: the cache answers, the CRM is not asked.
	c = assertJson(await lookupPhone('tenant1', '15555551234'), 200);
	assert.equal(c.source, 'cache');
	assert.equal(c.externalId, 'CRM-MJ-1001');
	assert.equal(c.profile.firstName, 'Michael');
	assert.equal(fake.total(), 1);
});

test('flat CRM fields are mapped to the same shape, by id and by phone', async () => {
	let c = assertJson(await api('tenant1', 'GET', '/api/customers/CRM-ED-1002'), 200);
	assert.equal(c.source, 'crm');
	assert.equal(c.externalId, 'CRM-ED-1002');
	assert.deepEqual(c.profile, { firstName: 'Emily', lastName: 'Davis',
		email: 'emily.davis@crm.example.com', phone: '+15555555678' });
	assert.deepEqual(c.phones, ['+15555555678']);
	assert.equal(c.language, 'es');
	assert.equal(fake.count('/contacts/CRM-ED-1002'), 1);
	c = assertJson(await lookupPhone('tenant1', '(555) 555-5678'), 200);
	assert.equal(c.source, 'crm');
	assert.equal(c.externalId, 'CRM-ED-1002');
	c = assertJson(await api('tenant1', 'GET', '/api/customers/CRM-ED-1002'), 200);
	assert.equal(c.source, 'cache');
	assert.equal(fake.count('/contacts/CRM-ED-1002'), 1);
});

test('CRM 500: retried once, then the local store answers (and nothing is cached)', async () => {
	fake.setMode('500');
	const c = assertJson(await lookupPhone('tenant1', '+15555551234'), 200);
	assert.equal(c.source, 'local');
	assert.equal(c.externalId, 'CUST-1001');
	assert.equal(c.profile.firstName, 'Michael');
	assert.equal(fake.count(MICHAEL), 2);
	assert.equal(fake.total(), 2);
	assert.deepEqual(crmCacheKeys(), []);
});

test('CRM stalls: local answer within the timeout, other requests still served', async () => {
	fake.setMode('stall');
	const started = Date.now();
	const slow = lookupPhone('tenant1', '+15555551234');
	await new Promise((r) => setTimeout(r, 150));
	const t0 = Date.now();
	const health = await request(stack, { path: '/api/health', timeout: 3000 });
	assert.equal(health.status, 200);
	assert.ok(Date.now() - t0 < 1000, `health took ${Date.now() - t0} ms during the stall`);
	const c = assertJson(await slow, 200);
	const ms = Date.now() - started;
	assert.equal(c.source, 'local');
	assert.equal(c.externalId, 'CUST-1001');
	// one retry after a timeout: two deadlines, plus a margin for the machine
	assert.ok(ms >= CRM_TIMEOUT_MS, `answered after ${ms} ms: the stall was not waited for`);
	assert.ok(ms < 2 * CRM_TIMEOUT_MS + 1500, `answered after ${ms} ms`);
	assert.equal(fake.count(MICHAEL), 2);
});

test('CRM answers garbage: local answer, not retried', async () => {
	fake.setMode('garbage');
	const c = assertJson(await lookupPhone('tenant1', '+15555551234'), 200);
	assert.equal(c.source, 'local');
	assert.equal(c.externalId, 'CUST-1001');
	assert.equal(fake.total(), 1);
	assert.deepEqual(crmCacheKeys(), []);
});

test('CRM redirects to the metadata address: not followed, refused, logged, local answer', async () => {
	fake.setMode('redirect');
	const c = assertJson(await lookupPhone('tenant1', '+15555551234'), 200);
	assert.equal(c.source, 'local');
	assert.equal(c.externalId, 'CUST-1001');
	// one request, no retry, nothing asked of the redirect target (the
	// fake is the only server the CRM client could have reached)
	assert.equal(fake.total(), 1);
	await waitFor('the refused redirect in the log', () =>
		allLogs().split('\n').some((l) => l.includes('refused') && l.includes(METADATA_URL)), 3000);
});

test('CRM 404: the local store answers, 404 customer_not_found when neither knows', async () => {
	// Michael's second number is only in the local store
	let c = assertJson(await lookupPhone('tenant1', '+15555550100'), 200);
	assert.equal(c.source, 'local');
	assert.equal(c.externalId, 'CUST-1001');
	assert.equal(fake.count('/contacts/phone/%2B15555550100'), 1);   // a 404 is not retried
	assertError(await lookupPhone('tenant1', '+15555559999'), 404, 'customer_not_found');
	assertError(await api('tenant1', 'GET', '/api/customers/NOPE-1'), 404, 'customer_not_found');
	assert.equal(fake.count('/contacts/NOPE-1'), 1);
	c = assertJson(await api('tenant1', 'GET', '/api/customers/CUST-1002'), 200);
	assert.equal(c.source, 'local');
	assert.equal(c.profile.firstName, 'Emily');
});

test('wrong CRM key: 401 from the CRM, local answer, the key in no log or answer', async () => {
	fake.setKeys({ 'some-other-key': 'main' });
	const c = assertJson(await lookupPhone('tenant1', '+15555551234'), 200);
	assert.equal(c.source, 'local');
	assert.equal(fake.total(), 1);
	await waitFor('crm_unauthorized logged', () => allLogs().includes('crm_unauthorized'), 3000);
	const logs = allLogs();
	for (const s of [SECRET_ENV.TENANT1_CRM_API_KEY, SECRET_ENV.CRM_API_KEY])
		assert.ok(!logs.includes(s), 'a CRM key is in the logs');
});

test('the cache is per tenant: tenant2 never gets tenant1\'s cached customer', async () => {
	let c = assertJson(await lookupPhone('tenant1', '+15555551234'), 200);
	assert.equal(c.source, 'crm');
	assert.equal(c.externalId, 'CRM-MJ-1001');
	c = assertJson(await lookupPhone('tenant2', '+15555551234'), 200);
	assert.equal(c.source, 'crm');
	assert.equal(c.externalId, 'CRM-ALT-7');
	assert.equal(c.profile.firstName, 'Carla');
	assert.equal(fake.count(MICHAEL), 2);
	c = assertJson(await lookupPhone('tenant2', '+15555551234'), 200);
	assert.equal(c.source, 'cache');
	assert.equal(c.externalId, 'CRM-ALT-7');
	c = assertJson(await lookupPhone('tenant1', '+15555551234'), 200);
	assert.equal(c.source, 'cache');
	assert.equal(c.externalId, 'CRM-MJ-1001');
	assert.equal(fake.count(MICHAEL), 2);
	// tenant2 asking for tenant1's CRM id by id: its own CRM does not know it
	assertError(await api('tenant2', 'GET', '/api/customers/CRM-MJ-1001'), 404,
		'customer_not_found');
	assert.deepEqual(crmCacheKeys().sort(), ['nf:tenant1:crm:phone:+15555551234',
		'nf:tenant2:crm:phone:+15555551234']);
});

function ticketsOf(res) {
	const body = assertJson(res, 200);
	return body.tickets ?? body.items ?? body;
}

async function ticketState(tenant, customer, ticketId) {
	const list = ticketsOf(await api(tenant, 'GET', `/api/customers/${customer}/tickets`));
	return list.find((t) => t.ticketId === ticketId);
}

test('a CRM that keeps failing is skipped for a while, for its tenant only (battery 31)', async () => {
	fake.setMode('500');
	for (let i = 0; i < 3; i++)
		assert.equal(assertJson(await lookupPhone('tenant1', '+15555551234'), 200).source, 'local');
	assert.equal(fake.total(), 6);                       // each failure retried once
	// Open: answered from the local store at once, the CRM is not asked.
	fake.setMode('stall', { stallMs: 5000 });
	const t0 = Date.now();
	const c = assertJson(await lookupPhone('tenant1', '+15555551234'), 200);
	assert.equal(c.source, 'local');
	assert.equal(c.externalId, 'CUST-1001');
	assert.ok(Date.now() - t0 < CRM_TIMEOUT_MS, `took ${Date.now() - t0} ms`);
	assert.equal(fake.total(), 6);
	// Another tenant's CRM calls go on.
	fake.setMode('ok');
	assert.equal(assertJson(await lookupPhone('tenant2', '+15555551234'), 200).source, 'crm');
	// Once it closes, a trial call reaches the CRM again and succeeds.
	await waitFor('the breaker closes', async () =>
		(await lookupPhone('tenant1', '+15555551234')).json?.source === 'crm', 5000);
	assert.ok(allLogs().includes('crm of tenant1 failed 3 times'));
});

test('a ticket reaches the CRM through nonflex-jobs and is marked synced', async () => {
	const res = await api('tenant1', 'POST', '/api/customers/CUST-1001/tickets',
		{ subject: 'Headphones arrived broken', description: 'Left ear is silent.' });
	const t = assertJson(res, 201);
	assert.equal(t.crm?.status, 'pending');
	await waitFor('the ticket synced', async () =>
		(await ticketState('tenant1', 'CUST-1001', t.ticketId))?.crm?.status === 'synced', 8000);
	const synced = await ticketState('tenant1', 'CUST-1001', t.ticketId);
	assert.equal(synced.crm.id, 'CRM-TKT-1');
	assert.equal(fake.tickets.length, 1);
	const sent = fake.tickets[0];
	assert.equal(sent.set, 'main');
	assert.equal(sent.ticket.ticketId, t.ticketId);
	assert.equal(sent.ticket.customerId, 'CUST-1001');
	assert.equal(sent.ticket.subject, 'Headphones arrived broken');
	assert.equal(sent.ticket.tenant, undefined);
	assert.equal(sent.ticket.crm, undefined);
	assert.equal(fake.count(TICKETS), 1);
});

test('a ticket is retried with backoff while the CRM fails, then synced', async () => {
	fake.setMode('500', { times: 3 });
	const t = assertJson(await api('tenant1', 'POST', '/api/customers/CUST-1002/tickets',
		{ subject: 'Where is my order?' }), 201);
	await waitFor('the ticket synced', async () =>
		(await ticketState('tenant1', 'CUST-1002', t.ticketId))?.crm?.status === 'synced', 15000);
	assert.equal(fake.count(TICKETS), 4);
	assert.equal(fake.tickets.length, 1);
	assert.equal(fake.tickets[0].ticket.ticketId, t.ticketId);
});

test('a ticket the CRM refuses (401) is not retried and stays pending', async () => {
	fake.setKeys({ 'some-other-key': 'main' });
	const t = assertJson(await api('tenant1', 'POST', '/api/customers/CUST-1001/tickets',
		{ subject: 'Refused by the CRM' }), 201);
	await waitFor('the CRM asked', () => fake.count(TICKETS) === 1, 8000);
	await new Promise((r) => setTimeout(r, 1500));   // many backoff periods
	assert.equal(fake.count(TICKETS), 1);
	assert.equal((await ticketState('tenant1', 'CUST-1001', t.ticketId)).crm.status, 'pending');
});
