// fake-crm.mjs - integration harness: a small CRM on 127.0.0.1 that
// serves the original's endpoints from fixtures and can fail, stall and lie
// on demand (crm.test.mjs, tests/bench/run).
//
// DESIGN: one node:http server.  Each accepted Bearer key selects a data
// set (so two tenants sharing the fake see different CRMs, which is how
// cache isolation is proven); any other key gets 401.  Michael Johnson is
// served in a NESTED shape (name{}, contact{}, phones[{number}]) and Emily
// Davis in a FLAT one (first_name, external_id, ...), the two shapes the
// original accepted.  setMode() switches every answer (or the next n) to:
//   ok        fixtures (404 for unknown keys)
//   500       {"error":"boom"} with status 500
//   stall     never answers (or answers after stallMs when given)
//   garbage   status 200, malformed JSON
//   redirect  302 to http://169.254.169.254/latest/meta-data
// Every request is counted per path (hits), tickets POSTed in ok mode are
// recorded (tickets) with the key's data set name, never the key itself.
// Run as a program (`node fake-crm.mjs PORT KEY...`) it serves until killed,
// for the benchmark.
//
// SPDX-License-Identifier: MIT

import http from 'node:http';

export const METADATA_URL = 'http://169.254.169.254/latest/meta-data';

// The data sets.  Phones match the demo seed's customers, so a lookup that
// falls back to the local store finds the same person (source tells which).
export const FIXTURES = {
	main: {
		contacts: [
			{
				id: 'CRM-MJ-1001',
				name: { first: 'Michael', last: 'Johnson' },
				contact: { email: 'michael.johnson@crm.example.com', phone: '+1 (555) 555-1234' },
				phones: [{ number: '555.555.1234' }, { number: '+44 20 7946 0958' }],
				language: 'en',
				tier: 'gold-crm',
				notes: 'Prefers email.',
				addresses: [{ type: 'home', street: '12 Main St', city: 'Springfield',
					state: 'IL', zip: '62701', country: 'US' }],
				orders: [{ order_id: 'ORD-1000', customer_id: 'CRM-MJ-1001', status: 'shipped',
					total: '129.90', currency: 'USD',
					items: [{ sku: 'SKU-1', name: 'Headphones', quantity: 1, price: 129.9 }] }],
			},
			{
				external_id: 'CRM-ED-1002',
				first_name: 'Emily',
				last_name: 'Davis',
				email: 'emily.davis@crm.example.com',
				phone: '15555555678',
				language: 'es',
				tier: 'silver-crm',
				addresses: [],
				orders: [],
			},
		],
		orders: [
			{ orderId: 'ORD-1000', customerId: 'CRM-MJ-1001', status: 'shipped', total: 129.9,
				currency: 'USD', items: [{ sku: 'SKU-1', name: 'Headphones', qty: 1, price: 129.9 }] },
		],
	},
	// What a second tenant's CRM knows: another person on Michael's number.
	alt: {
		contacts: [
			{ id: 'CRM-ALT-7', first_name: 'Carla', last_name: 'Ruiz', phone: '+15555551234' },
		],
		orders: [],
	},
};

// Every phone of a fixture contact, digits only with country code.
function digitsOf(c) {
	const raw = [c.phone, c.contact?.phone, c.profile?.phone,
		...(c.phones ?? []).map((p) => (typeof p === 'string' ? p : p?.number))];
	return raw.filter(Boolean).map((p) => {
		const d = String(p).replace(/\D/g, '');
		return d.length === 10 ? `1${d}` : d;
	});
}

function idOf(c) {
	return c.id ?? c.externalId ?? c.external_id;
}

/*
 * startFakeCrm({keys}) -> Promise<fake>.  keys maps a Bearer key to a data
 * set name of FIXTURES.  fake: {url, port, hits, tickets, setMode(mode,
 * {times, stallMs}), count(path), total(), reset(), setKeys(keys), stop()}.
 */
export async function startFakeCrm(opts = {}) {
	let keys = { ...(opts.keys ?? {}) };
	let mode = 'ok';
	let times = Infinity;
	let stallMs = 0;
	const hits = new Map();
	const tickets = [];
	const sockets = new Set();
	const timers = new Set();

	function send(res, status, body, headers = {}) {
		const text = typeof body === 'string' ? body : JSON.stringify(body);
		res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
		res.end(text);
	}

	function currentMode() {
		if (mode === 'ok' || times <= 0)
			return 'ok';
		times -= 1;
		return mode;
	}

	function answerOk(res, req, set, body) {
		const data = FIXTURES[set];
		const url = new URL(req.url, 'http://x');
		const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
		if (req.method === 'POST' && parts.length === 1 && parts[0] === 'tickets') {
			let t;
			try {
				t = JSON.parse(body);
			} catch {
				return send(res, 400, { error: 'bad json' });
			}
			const id = `CRM-TKT-${tickets.length + 1}`;
			tickets.push({ set, id, ticket: t });
			return send(res, 201, { id, status: 'open' });
		}
		if (req.method !== 'GET')
			return send(res, 405, { error: 'method' });
		if (parts.length === 3 && parts[0] === 'contacts' && parts[1] === 'phone') {
			const want = parts[2].replace(/\D/g, '');
			const c = data.contacts.find((x) => digitsOf(x).includes(want));
			return c ? send(res, 200, c) : send(res, 404, { error: 'not found' });
		}
		if (parts.length === 2 && parts[0] === 'contacts') {
			const c = data.contacts.find((x) => idOf(x) === parts[1]);
			return c ? send(res, 200, c) : send(res, 404, { error: 'not found' });
		}
		if (parts.length === 2 && parts[0] === 'orders') {
			const o = data.orders.find((x) => x.orderId === parts[1]);
			return o ? send(res, 200, o) : send(res, 404, { error: 'not found' });
		}
		return send(res, 404, { error: 'no route' });
	}

	const server = http.createServer((req, res) => {
		const chunks = [];
		req.on('data', (c) => chunks.push(c));
		req.on('end', () => {
			const path = new URL(req.url, 'http://x').pathname;
			hits.set(path, (hits.get(path) ?? 0) + 1);
			const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
			const set = m ? keys[m[1]] : undefined;
			if (!set)
				return send(res, 401, { error: 'unauthorized' });
			switch (currentMode()) {
			case '500':
				return send(res, 500, { error: 'boom' });
			case 'garbage':
				return send(res, 200, '{"id": "CRM-MJ-1001", "name": {"first": "Mich');
			case 'redirect':
				res.writeHead(302, { Location: METADATA_URL });
				return res.end();
			case 'stall':
				if (stallMs > 0) {
					const t = setTimeout(() => {
						timers.delete(t);
						answerOk(res, req, set, Buffer.concat(chunks).toString('utf8'));
					}, stallMs);
					timers.add(t);
				}
				return undefined;    // never answers: the socket is held
			default:
				return answerOk(res, req, set, Buffer.concat(chunks).toString('utf8'));
			}
		});
	});
	server.on('connection', (s) => {
		sockets.add(s);
		s.on('close', () => sockets.delete(s));
	});
	await new Promise((resolve, reject) => {
		server.once('error', reject);
		server.listen(opts.port ?? 0, '127.0.0.1', resolve);
	});
	const port = server.address().port;
	return {
		port,
		url: `http://127.0.0.1:${port}`,
		hits,
		tickets,
		setMode(m, o = {}) {
			mode = m;
			times = o.times ?? Infinity;
			stallMs = o.stallMs ?? 0;
		},
		setKeys(k) {
			keys = { ...k };
		},
		count(path) {
			return hits.get(path) ?? 0;
		},
		total() {
			let n = 0;
			for (const v of hits.values())
				n += v;
			return n;
		},
		reset() {
			hits.clear();
			tickets.length = 0;
			mode = 'ok';
			times = Infinity;
			stallMs = 0;
		},
		stop() {
			for (const t of timers)
				clearTimeout(t);
			for (const s of sockets)
				s.destroy();
			return new Promise((resolve) => server.close(() => resolve()));
		},
	};
}

// As a program: node fake-crm.mjs PORT KEY [KEY...] (every key -> "main").
if (import.meta.url === `file://${process.argv[1]}`) {
	const [port, ...ks] = process.argv.slice(2);
	const fake = await startFakeCrm({ port: Number(port),
		keys: Object.fromEntries(ks.map((k) => [k, 'main'])) });
	process.stdout.write(`${fake.url}\n`);
	process.on('SIGTERM', async () => {
		await fake.stop();
		process.exit(0);
	});
}
