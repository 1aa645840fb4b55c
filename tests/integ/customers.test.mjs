// customers.test.mjs - the customer routes through the real stack (issue 5,
// local store path; the CRM path is crm.test.mjs): lookups by every phone
// spelling, 404s, search with pagination, creating and changing customers,
// orders and tickets with each validation error naming its field, the 360
// view, sessions required, tenant isolation by id (RELIABILITY battery 42),
// mass assignment (43), crafted search input (45, 49) and the audit trail.
// The test stack has no CRM, so lookups answer with source "local" and
// tickets carry no crm field (no job is queued for them).
//
// SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { assertError, assertJson, stopChecked } from './lib/check.mjs';
import { request } from './lib/http.mjs';
import { loginDemo, seedStack } from './lib/session.mjs';
import { startStack } from './lib/stack.mjs';

let stack;
const tok = {};

function api(who, method, path, body) {
	const tenant = who.endsWith('2') ? 'tenant2' : 'tenant1';
	const headers = { 'X-Tenant-Id': tenant };
	if (tok[who])
		headers.Authorization = `Bearer ${tok[who]}`;
	return request(stack, { method, path, headers, body });
}

// 400 with this code and field.
function assertField(res, field, code) {
	const e = assertError(res, 400, code ?? res.json?.error?.code);
	assert.equal(e.field, field, JSON.stringify(res.json));
	return e;
}

before(async () => {
	stack = await startStack();
	seedStack(stack);
	tok.sarah = (await loginDemo(stack, 'tenant1')).token;
	tok.admin = (await loginDemo(stack, 'tenant1', 'admin')).token;
	tok.sarah2 = (await loginDemo(stack, 'tenant2')).token;
});

after(() => stopChecked(stack));

describe('lookups', () => {
	test('every spelling of the phone finds Michael, from the local store', async () => {
		for (const p of ['+1 (555) 555-1234', '15555551234', '+15555551234', '555-555-1234',
			'(555) 555.1234']) {
			const c = assertJson(await api('sarah', 'GET',
				`/api/customers/phone/${encodeURIComponent(p)}`), 200);
			assert.equal(c.externalId, 'CUST-1001', p);
			assert.equal(c.source, 'local');
			assert.equal(c.profile.firstName, 'Michael');
			assert.equal(c.tier, 'gold');
			assert.deepEqual(c.orders.map((o) => o.orderId).sort(), ['ORD-1000', 'ORD-1001']);
			assert.equal(c.tenant, undefined);
			assert.equal(c._id, undefined);
			assert.equal(c.searchKeys, undefined);
		}
		// A second number in phones[] finds him too.
		const c = assertJson(await api('sarah', 'GET', '/api/customers/phone/5555550100'), 200);
		assert.equal(c.externalId, 'CUST-1001');
	});

	test('by externalId, and 404 customer_not_found for unknown ones', async () => {
		const c = assertJson(await api('sarah', 'GET', '/api/customers/CUST-1002'), 200);
		assert.equal(c.profile.lastName, 'Davis');
		assert.equal(c.source, 'local');
		assert.deepEqual(c.orders.map((o) => o.orderId), ['ORD-2000']);
		assertError(await api('sarah', 'GET', '/api/customers/CUST-9999'), 404,
			'customer_not_found');
		assertError(await api('sarah', 'GET', '/api/customers/%24ne'), 404,
			'customer_not_found');
		assertError(await api('sarah', 'GET', '/api/customers/phone/%2B15550000000'), 404,
			'customer_not_found');
		assertField(await api('sarah', 'GET', '/api/customers/phone/call-me'), 'phone',
			'invalid_phone');
	});

	test('every customer route needs a session', async () => {
		for (const [m, p] of [['GET', '/api/customers'], ['POST', '/api/customers'],
			['GET', '/api/customers/phone/15555551234'], ['GET', '/api/customers/CUST-1001'],
			['PATCH', '/api/customers/CUST-1001'], ['GET', '/api/customers/CUST-1001/orders'],
			['POST', '/api/customers/CUST-1001/orders'],
			['GET', '/api/customers/CUST-1001/tickets'],
			['POST', '/api/customers/CUST-1001/tickets'],
			['PATCH', '/api/customers/CUST-1001/tickets/TKT-1001'],
			['GET', '/api/customers/CUST-1001/360']]) {
			const res = await request(stack, { method: m, path: p,
				headers: { 'X-Tenant-Id': 'tenant1' }, body: m === 'GET' ? undefined : {} });
			assert.equal(res.status, 401, `${m} ${p}: ${res.text}`);
			assert.equal(res.json?.profile, undefined);
		}
	});
});

describe('search', () => {
	test('by name, e-mail or phone', async () => {
		for (const [q, id] of [['michael', 'CUST-1001'], ['Davis', 'CUST-1002'],
			['emily davis', 'CUST-1002'], ['michael.johnson@example.com', 'CUST-1001'],
			['555-555-5678', 'CUST-1002'], ['+1 555 555 1234', 'CUST-1001']]) {
			const b = assertJson(await api('sarah', 'GET',
				`/api/customers?q=${encodeURIComponent(q)}`), 200);
			assert.deepEqual(b.customers.map((c) => c.externalId), [id], q);
		}
		const none = assertJson(await api('sarah', 'GET', '/api/customers?q=nobody'), 200);
		assert.deepEqual(none.customers, []);
	});

	test('operator-looking input is data, never a query', async () => {
		for (const q of ['{"$ne":""}', '{"$gt":""}', "' OR 1=1--", '$where']) {
			const b = assertJson(await api('sarah', 'GET',
				`/api/customers?q=${encodeURIComponent(q)}`), 200);
			assert.deepEqual(b.customers, [], q);
		}
		assertField(await api('sarah', 'GET', `/api/customers?q=${'x'.repeat(300)}`), 'q');
	});

	test('pages with limit and cursor', async () => {
		const p1 = assertJson(await api('sarah', 'GET', '/api/customers?limit=1'), 200);
		assert.equal(p1.customers.length, 1);
		assert.equal(typeof p1.next, 'string');
		const p2 = assertJson(await api('sarah', 'GET',
			`/api/customers?limit=1&cursor=${encodeURIComponent(p1.next)}`), 200);
		assert.equal(p2.customers.length, 1);
		assert.notEqual(p2.customers[0].externalId, p1.customers[0].externalId);
		assertField(await api('sarah', 'GET', '/api/customers?limit=0'), 'limit');
		assertField(await api('sarah', 'GET', '/api/customers?limit=-5'), 'limit');
		assertField(await api('sarah', 'GET', '/api/customers?cursor=garbage'), 'cursor');
	});
});

describe('creating and changing customers', () => {
	const base = () => ({ externalId: 'CUST-T1', profile: { firstName: 'Tina',
		lastName: 'One', email: 'tina@example.com', phone: '555 010 0001' } });

	test('each bad field is named and nothing is stored', async () => {
		const cases = [
			[{ ...base(), externalId: undefined }, 'externalId'],
			[{ ...base(), externalId: 'has space' }, 'externalId'],
			[{ ...base(), externalId: 'x'.repeat(65) }, 'externalId'],
			[{ ...base(), profile: { lastName: 'x' } }, 'profile.firstName'],
			[{ ...base(), profile: { firstName: 'x'.repeat(101) } }, 'profile.firstName'],
			[{ ...base(), profile: { firstName: 'T', email: 'not-mail' } }, 'profile.email'],
			[{ ...base(), profile: { firstName: 'T', phone: 'call me' } }, 'profile.phone'],
			[{ ...base(), phones: ['+15555551234', '12'] }, 'phones[1]'],
			[{ ...base(), phones: '+15555551234' }, 'phones'],
			[{ ...base(), language: 'english!' }, 'language'],
			[{ ...base(), tier: 'x'.repeat(40) }, 'tier'],
			[{ ...base(), notes: 'x'.repeat(2001) }, 'notes'],
			[{ ...base(), addresses: [{ city: 'X', planet: 'Mars' }] }, 'addresses[0].planet'],
			[{ ...base(), vip: true }, 'vip'],
			[{ ...base(), tenant: 'tenant2' }, 'tenant'],
			[{ ...base(), _id: 'aaaaaaaaaaaaaaaaaaaaaaaa' }, '_id'],
			[{ ...base(), createdAt: '2000-01-01T00:00:00.000Z' }, 'createdAt'],
		];
		for (const [body, field] of cases)
			assertField(await api('sarah', 'POST', '/api/customers', body), field);
		assertError(await api('sarah', 'GET', '/api/customers/CUST-T1'), 404,
			'customer_not_found');
	});

	test('create, duplicate, patch', async () => {
		const c = assertJson(await api('sarah', 'POST', '/api/customers',
			{ ...base(), phones: ['0044 20 7946 0000'], language: 'en', tier: 'bronze',
				addresses: [{ type: 'home', city: 'Leeds', country: 'GB' }] }), 201);
		assert.equal(c.profile.phone, '+15550100001');
		assert.deepEqual(c.phones, ['+442079460000']);
		assert.equal(c.tenant, undefined);
		assertError(await api('sarah', 'POST', '/api/customers', base()), 409,
			'customer_exists');
		const found = assertJson(await api('sarah', 'GET',
			'/api/customers/phone/%2B44%2020%207946%200000'), 200);
		assert.equal(found.externalId, 'CUST-T1');

		const p = assertJson(await api('sarah', 'PATCH', '/api/customers/CUST-T1',
			{ profile: { lastName: 'Two' }, tier: 'gold' }), 200);
		assert.equal(p.profile.lastName, 'Two');
		assert.equal(p.profile.firstName, 'Tina');
		assert.equal(p.tier, 'gold');
		const s = assertJson(await api('sarah', 'GET', '/api/customers?q=tina%20two'), 200);
		assert.deepEqual(s.customers.map((x) => x.externalId), ['CUST-T1']);

		for (const [body, field] of [[{ externalId: 'CUST-X' }, 'externalId'],
			[{ tenant: 'tenant2' }, 'tenant'], [{ createdAt: 'x' }, 'createdAt'],
			[{ profile: { email: 'bad' } }, 'profile.email'], [{ owner: 'me' }, 'owner']])
			assertField(await api('sarah', 'PATCH', '/api/customers/CUST-T1', body), field);
		const after = assertJson(await api('sarah', 'GET', '/api/customers/CUST-T1'), 200);
		assert.equal(after.externalId, 'CUST-T1');
		assert.equal(after.profile.email, 'tina@example.com');
		assertError(await api('sarah', 'PATCH', '/api/customers/CUST-NONE', { tier: 'x' }),
			404, 'customer_not_found');
	});
});

describe('orders and tickets', () => {
	const order = () => ({ orderId: 'ORD-T1', total: 30, currency: 'EUR', status: 'pending',
		items: [{ sku: 'S1', name: 'Thing', qty: 2, price: 15 }] });

	test('orders: validation names the field; create and list', async () => {
		const item = (o) => ({ ...order(), items: [{ ...order().items[0], ...o }] });
		const cases = [
			[{ ...order(), orderId: undefined }, 'orderId'],
			[{ ...order(), orderId: 'bad id' }, 'orderId'],
			[{ ...order(), total: -1 }, 'total'],
			[{ ...order(), total: '30' }, 'total'],
			[{ ...order(), total: undefined }, 'total'],
			[{ ...order(), currency: 'euro' }, 'currency'],
			[{ ...order(), status: 'lost' }, 'status'],
			[{ ...order(), items: 'S1' }, 'items'],
			[item({ qty: 0 }), 'items[0].qty'],
			[item({ qty: 1.5 }), 'items[0].qty'],
			[item({ price: -1 }), 'items[0].price'],
			[item({ sku: '' }), 'items[0].sku'],
			[item({ colour: 'red' }), 'items[0].colour'],
			[{ ...order(), customerId: 'CUST-1002' }, 'customerId'],
			[{ ...order(), tenant: 'tenant2' }, 'tenant'],
		];
		for (const [body, field] of cases)
			assertField(await api('sarah', 'POST', '/api/customers/CUST-1001/orders', body),
				field);
		assertError(await api('sarah', 'POST', '/api/customers/CUST-9999/orders', order()),
			404, 'customer_not_found');
		const o = assertJson(await api('sarah', 'POST', '/api/customers/CUST-1001/orders',
			order()), 201);
		assert.equal(o.customerId, 'CUST-1001');
		assert.equal(o.total, 30);
		assertError(await api('sarah', 'POST', '/api/customers/CUST-1001/orders', order()),
			409, 'order_exists');
		const l = assertJson(await api('sarah', 'GET', '/api/customers/CUST-1001/orders'), 200);
		assert.deepEqual(l.orders.map((x) => x.orderId).sort(),
			['ORD-1000', 'ORD-1001', 'ORD-T1']);
		assertError(await api('sarah', 'GET', '/api/customers/CUST-9999/orders'), 404,
			'customer_not_found');
	});

	test('tickets: validation, create without CRM, status changes, audit', async () => {
		const cases = [
			[{}, 'subject'],
			[{ subject: '' }, 'subject'],
			[{ subject: 'x'.repeat(201) }, 'subject'],
			[{ subject: 'ok', description: 'x'.repeat(5001) }, 'description'],
			[{ subject: 'ok', priority: 'asap' }, 'priority'],
			[{ subject: 'ok', status: 'gone' }, 'status'],
			[{ subject: 'ok', ticketId: 'TKT-MINE' }, 'ticketId'],
			[{ subject: 'ok', crm: { status: 'synced' } }, 'crm'],
			[{ subject: 'ok', tenant: 'tenant2' }, 'tenant'],
			[{ subject: 'ok', assignee: 'me' }, 'assignee'],
		];
		for (const [body, field] of cases)
			assertField(await api('sarah', 'POST', '/api/customers/CUST-1002/tickets', body),
				field);
		assertError(await api('sarah', 'POST', '/api/customers/CUST-9999/tickets',
			{ subject: 'x' }), 404, 'customer_not_found');
		const t = assertJson(await api('sarah', 'POST', '/api/customers/CUST-1002/tickets',
			{ subject: 'Refund please', description: 'Damaged box', priority: 'high' }), 201);
		assert.match(t.ticketId, /^TKT-[0-9a-f]{24}$/);
		assert.equal(t.status, 'open');
		assert.equal(t.priority, 'high');
		assert.equal(t.crm, undefined, 'no CRM configured: nothing to sync');

		const l = assertJson(await api('sarah', 'GET', '/api/customers/CUST-1002/tickets'),
			200);
		assert.deepEqual(l.tickets.map((x) => x.ticketId).sort(), ['TKT-1002', t.ticketId].sort());

		const u = assertJson(await api('sarah', 'PATCH',
			`/api/customers/CUST-1002/tickets/${t.ticketId}`, { status: 'solved' }), 200);
		assert.equal(u.status, 'solved');
		assertField(await api('sarah', 'PATCH',
			`/api/customers/CUST-1002/tickets/${t.ticketId}`, { status: 'done' }), 'status');
		assertField(await api('sarah', 'PATCH',
			`/api/customers/CUST-1002/tickets/${t.ticketId}`, { subject: 'new' }), 'subject');
		// Only through its own customer.
		assertError(await api('sarah', 'PATCH',
			`/api/customers/CUST-1001/tickets/${t.ticketId}`, { status: 'closed' }), 404,
		'ticket_not_found');

		const a = assertJson(await api('admin', 'GET', '/api/audit?event=ticket.update'), 200);
		const rec = a.entries ?? a.audit ?? a.events ?? Object.values(a).find(Array.isArray);
		assert.ok(rec.some((x) => x.data?.ticketId === t.ticketId && x.data?.from === 'open' &&
			x.data?.to === 'solved'), JSON.stringify(a));
	});

	test('the 360 view', async () => {
		const v = assertJson(await api('sarah', 'GET', '/api/customers/CUST-1001/360'), 200);
		assert.equal(v.source, 'local');
		assert.equal(v.customer.externalId, 'CUST-1001');
		assert.equal(v.customer.orders, undefined);
		assert.ok(v.orders.some((o) => o.orderId === 'ORD-1000'));
		assert.ok(v.tickets.some((t) => t.ticketId === 'TKT-1001'));
		assert.deepEqual(v.conversations, []);
		assertError(await api('sarah', 'GET', '/api/customers/CUST-9999/360'), 404,
			'customer_not_found');
	});
});

describe('tenant isolation', () => {
	test("tenant2's agent never reaches tenant1's customer, orders or tickets", async () => {
		// CUST-T1 exists only in tenant1 (created above).
		assertJson(await api('sarah', 'GET', '/api/customers/CUST-T1'), 200);
		for (const [m, p, body] of [
			['GET', '/api/customers/CUST-T1'],
			['GET', '/api/customers/phone/%2B15550100001'],
			['PATCH', '/api/customers/CUST-T1', { tier: 'stolen' }],
			['GET', '/api/customers/CUST-T1/orders'],
			['POST', '/api/customers/CUST-T1/orders', { orderId: 'ORD-X', total: 1 }],
			['GET', '/api/customers/CUST-T1/tickets'],
			['POST', '/api/customers/CUST-T1/tickets', { subject: 'x' }],
			['GET', '/api/customers/CUST-T1/360'],
		]) {
			const res = await api('sarah2', m, p, body);
			assert.equal(res.status, 404, `${m} ${p}: ${res.text}`);
			assert.ok(!res.text.includes('Tina'), res.text);
		}
		const s = assertJson(await api('sarah2', 'GET', '/api/customers?q=tina'), 200);
		assert.deepEqual(s.customers, []);
		// tenant2 has its own demo CUST-1002 with TKT-1002; changing it leaves
		// tenant1's ticket alone, and a tenant1-only ticket id is 404 there.
		const t1 = assertJson(await api('sarah', 'GET', '/api/customers/CUST-1002/tickets'), 200);
		const mine = t1.tickets.find((x) => x.ticketId !== 'TKT-1002');
		assertError(await api('sarah2', 'PATCH',
			`/api/customers/CUST-1002/tickets/${mine.ticketId}`, { status: 'closed' }), 404,
		'ticket_not_found');
		assertJson(await api('sarah2', 'PATCH', '/api/customers/CUST-1002/tickets/TKT-1002',
			{ status: 'closed' }), 200);
		const again = assertJson(await api('sarah', 'GET', '/api/customers/CUST-1002/tickets'),
			200);
		assert.equal(again.tickets.find((x) => x.ticketId === 'TKT-1002').status, 'open');
		assert.equal(again.tickets.find((x) => x.ticketId === mine.ticketId).status, 'solved');
		const c = assertJson(await api('sarah', 'GET', '/api/customers/CUST-T1'), 200);
		assert.equal(c.tier, 'gold');
	});
});
