// twilio-state.mjs - a small stateful fake of Twilio's TaskRouter and
// Conversations APIs whose every request is also judged by Prism.
//
// DESIGN: Prism serves Twilio's OpenAPI definitions but keeps no state, so
// "a second run changes nothing" cannot be shown on it alone.  This fake
// listens on 127.0.0.1 and, for each request, first FORWARDS it unchanged
// (method, path, query, Authorization, form body) to a Prism mock of the
// product (startPrism('taskrouter') / ('conversations')) and records the
// validator's verdict; then it answers from its own in-memory state, in
// Twilio's shapes: SIDs matching Twilio's patterns, product-API paging
// (meta.next_page_url on the fake's own origin; opts.pageSize makes lists
// span several pages), Twilio's error body {code, message, more_info,
// status}.  Requests are handled one at a time, so Prism's log lines stay
// in order (prism.mjs).
//
// It implements only what provisioning uses: workspaces, activities, task
// queues and workflows (list, fetch, create, update) and a Conversations
// service's webhook configuration (fetch, update).  A new workspace has
// no activities unless defaultActivities(true) makes it get Twilio's
// defaults (Offline, Available, Unavailable), as a real one does.  Like Twilio,
// it refuses a second activity or task queue with the same friendly name
// and a request without Basic credentials.  failWith() makes every
// answer a given Twilio error (e.g. 401 / 20003) until cleared.
//
// SPDX-License-Identifier: MIT

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { OAI_DIR, PRODUCTS, forward, startPrism } from './prism.mjs';

// Prism 5.16 refuses repeated form fields (Filters=a&Filters=b) although
// Twilio's definition declares Filters an array and Twilio's API and
// helper libraries send and read arrays exactly so: the one violation a
// correct client gets (DESIGN.md, "How it is tested").
export const FILTERS_QUIRK = {
	method: 'POST',
	path: /^\/v1\/Services\/IS[0-9a-fA-F]{32}\/Configuration\/Webhooks$/,
	error: 'Request body property Filters must be array',
};

// The one known quirk: this request was refused for that reason only.
export function isFiltersQuirk(r) {
	return r.method === FILTERS_QUIRK.method && FILTERS_QUIRK.path.test(r.path) &&
		r.errors.length === 1 && r.errors[0] === FILTERS_QUIRK.error;
}

// Requests Prism refused (or never judged) for any other reason.
export function unexpectedViolations(reqs) {
	return reqs.filter((r) => r.ok !== true && !isFiltersQuirk(r));
}

// Each product's operations from Twilio's definition: [{re, literal,
// method, params: Set}] where params are the declared query (GET) or form
// body (POST) parameter names.
const operations = {};
function operationsOf(product) {
	if (operations[product])
		return operations[product];
	const spec = JSON.parse(fs.readFileSync(path.join(OAI_DIR, PRODUCTS[product].spec), 'utf8'));
	const ops = [];
	for (const [tmpl, item] of Object.entries(spec.paths)) {
		const re = new RegExp(`^${tmpl.replace(/\{[^}]+\}/g, '[^/]+')}$`);
		const literal = tmpl.replace(/\{[^}]+\}/g, '').length;
		for (const method of ['get', 'post', 'delete']) {
			const op = item[method];
			if (!op)
				continue;
			const params = new Set((op.parameters ?? []).filter((x) => x.in === 'query')
				.map((x) => x.name));
			const form = op.requestBody?.content?.['application/x-www-form-urlencoded']?.schema;
			for (const k of Object.keys(form?.properties ?? {}))
				params.add(k);
			ops.push({ re, literal, method: method.toUpperCase(), params });
		}
	}
	operations[product] = ops;
	return ops;
}

// Parameters (query or form) that Twilio's definition does not declare for
// the operation, which Prism lets through: [{method, path, name}].
export function undeclaredParams(reqs) {
	const out = [];
	for (const r of reqs) {
		const op = operationsOf(r.product).filter((o) => o.method === r.method && o.re.test(r.path))
			.sort((a, b) => b.literal - a.literal)[0];
		const names = [...new URLSearchParams(r.query).keys(), ...r.form.map(([k]) => k)];
		for (const name of names)
			if (!op || !op.params.has(name))
				out.push({ method: r.method, path: r.path, name });
	}
	return out;
}

const hex32 = () => crypto.randomBytes(16).toString('hex');
const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

// Twilio's error body ({code, message, more_info, status}) as a fake's answer.
export function twilioError(status, code, message) {
	return { status, body: { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`,
		status } };
}

const notFound = (p) => twilioError(404, 20404, `The requested resource ${p} was not found`);

// Parse an x-www-form-urlencoded body into [[name, value], ...] (order and
// repeated names kept).
function parseForm(text) {
	return [...new URLSearchParams(text)];
}

function formGet(form, name) {
	const hit = form.find(([k]) => k === name);
	return hit ? hit[1] : undefined;
}

const bool = (v) => v === 'true' || v === '1' || v === 'yes';

// The in-memory account: workspaces with their children, and the webhook
// configuration of each Conversations service.
class State {
	constructor(accountSid) {
		this.accountSid = accountSid;
		this.workspaces = new Map();   // sid -> {ws, activities, taskQueues, workflows}
		this.hooks = new Map();        // IS... -> configuration
		this.defaultActivities = false;
	}

	base(res) {
		return {
			account_sid: this.accountSid,
			date_created: now(),
			date_updated: now(),
			...res,
		};
	}
}

const CHILDREN = {
	Activities: { key: 'activities', prefix: 'WA', unique: true },
	TaskQueues: { key: 'task_queues', prefix: 'WQ', unique: true },
	Workflows: { key: 'workflows', prefix: 'WW', unique: false },
};

const TR = 'https://taskrouter.twilio.com';

// Apply the form fields a resource kind knows to its state object.
function setWorkspace(ws, form) {
	for (const [k, v] of form) {
		if (k === 'FriendlyName') ws.friendly_name = v;
		else if (k === 'EventCallbackUrl') ws.event_callback_url = v;
		else if (k === 'EventsFilter') ws.events_filter = v;
		else if (k === 'MultiTaskEnabled') ws.multi_task_enabled = bool(v);
		else if (k === 'PrioritizeQueueOrder') ws.prioritize_queue_order = v;
	}
}

function setChild(kind, r, form, creating) {
	for (const [k, v] of form) {
		if (k === 'FriendlyName') r.friendly_name = v;
		else if (kind === 'Activities' && k === 'Available' && creating) r.available = bool(v);
		else if (kind === 'TaskQueues' && k === 'TargetWorkers') r.target_workers = v;
		else if (kind === 'TaskQueues' && k === 'MaxReservedWorkers') r.max_reserved_workers = Number(v);
		else if (kind === 'TaskQueues' && k === 'TaskOrder') r.task_order = v;
		else if (kind === 'Workflows' && k === 'Configuration') r.configuration = v;
		else if (kind === 'Workflows' && k === 'AssignmentCallbackUrl') r.assignment_callback_url = v;
		else if (kind === 'Workflows' && k === 'TaskReservationTimeout')
			r.task_reservation_timeout = Number(v);
	}
}

function newChild(state, kind, wsSid) {
	const sid = `${CHILDREN[kind].prefix}${hex32()}`;
	const url = `${TR}/v1/Workspaces/${wsSid}/${kind}/${sid}`;
	const common = state.base({ sid, workspace_sid: wsSid, friendly_name: null, url, links: {} });
	if (kind === 'Activities')
		return { ...common, available: false };
	if (kind === 'TaskQueues')
		return { ...common, target_workers: '1==1', max_reserved_workers: 1, task_order: 'FIFO',
			assignment_activity_sid: null, assignment_activity_name: null,
			reservation_activity_sid: null, reservation_activity_name: null };
	return { ...common, configuration: null, assignment_callback_url: null,
		fallback_assignment_callback_url: null, task_reservation_timeout: 120,
		document_content_type: 'application/json' };
}

// One page of items under the product-API paging rules.
function page(items, key, origin, pathname, query, pageSize) {
	const size = Math.max(1, Math.min(1000, Number(query.get('PageSize')) || pageSize));
	const n = Math.max(0, Number(query.get('Page')) || 0);
	const link = (p) => `${origin}${pathname}?PageSize=${size}&Page=${p}` +
		(p > 0 ? `&PageToken=PT${p}` : '');
	const more = (n + 1) * size < items.length;
	return {
		[key]: items.slice(n * size, (n + 1) * size),
		meta: {
			first_page_url: link(0), key, next_page_url: more ? link(n + 1) : null,
			page: n, page_size: size, previous_page_url: n > 0 ? link(n - 1) : null,
			url: link(n),
		},
	};
}

// Answer one request from the state: {status, body}.
function answer(state, req, form, origin, pageSize) {
	const url = new URL(req.url, origin);
	const p = url.pathname;
	const post = req.method === 'POST';
	let m;
	if (p === '/v1/Workspaces') {
		if (!post)
			return { status: 200, body: page([...state.workspaces.values()].map((w) => w.ws),
				'workspaces', origin, p, url.searchParams, pageSize) };
		if (!formGet(form, 'FriendlyName'))
			return twilioError(400, 20001, 'Missing required parameter FriendlyName in the post body');
		const sid = `WS${hex32()}`;
		const ws = state.base({ sid, friendly_name: null, event_callback_url: null,
			events_filter: null, multi_task_enabled: false, prioritize_queue_order: 'FIFO',
			default_activity_name: null, default_activity_sid: null,
			timeout_activity_name: null, timeout_activity_sid: null,
			url: `${TR}/v1/Workspaces/${sid}`, links: {} });
		setWorkspace(ws, form);
		const w = { ws, Activities: [], TaskQueues: [], Workflows: [] };
		if (state.defaultActivities) {
			for (const [name, available] of [['Offline', false], ['Available', true],
				['Unavailable', false]]) {
				const a = newChild(state, 'Activities', sid);
				Object.assign(a, { friendly_name: name, available });
				w.Activities.push(a);
			}
			Object.assign(ws, { default_activity_name: 'Offline',
				default_activity_sid: w.Activities[0].sid, timeout_activity_name: 'Offline',
				timeout_activity_sid: w.Activities[0].sid });
		}
		state.workspaces.set(sid, w);
		return { status: 201, body: ws };
	}
	if ((m = /^\/v1\/Workspaces\/(WS[0-9a-f]{32})$/.exec(p))) {
		const w = state.workspaces.get(m[1]);
		if (!w)
			return notFound(p);
		if (post) {
			setWorkspace(w.ws, form);
			w.ws.date_updated = now();
		}
		return { status: 200, body: w.ws };
	}
	if ((m = /^\/v1\/Workspaces\/(WS[0-9a-f]{32})\/(Activities|TaskQueues|Workflows)(?:\/(W[AQW][0-9a-f]{32}))?$/.exec(p))) {
		const [, wsSid, kind, sid] = m;
		const w = state.workspaces.get(wsSid);
		if (!w)
			return notFound(p);
		const list = w[kind];
		if (!sid && !post)
			return { status: 200, body: page(list, CHILDREN[kind].key, origin, p,
				url.searchParams, pageSize) };
		if (!sid) {
			const name = formGet(form, 'FriendlyName');
			if (!name)
				return twilioError(400, 20001, 'Missing required parameter FriendlyName in the post body');
			if (CHILDREN[kind].unique && list.some((r) => r.friendly_name === name))
				return twilioError(400, 20001, `${kind} with FriendlyName ${name} already exists`);
			const r = newChild(state, kind, wsSid);
			setChild(kind, r, form, true);
			list.push(r);
			return { status: 201, body: r };
		}
		const r = list.find((x) => x.sid === sid);
		if (!r)
			return notFound(p);
		if (post) {
			setChild(kind, r, form, false);
			r.date_updated = now();
		}
		return { status: 200, body: r };
	}
	if ((m = /^\/v1\/Services\/(IS[0-9a-fA-F]{32})\/Configuration\/Webhooks$/.exec(p))) {
		const hook = state.hooks.get(m[1]) ?? { account_sid: state.accountSid, chat_service_sid: m[1],
			pre_webhook_url: null, post_webhook_url: null, filters: [], method: 'POST',
			url: `https://conversations.twilio.com${p}` };
		if (post) {
			const filters = form.filter(([k]) => k === 'Filters').map(([, v]) => v);
			if (filters.length)
				hook.filters = filters;
			for (const [k, v] of form) {
				if (k === 'PreWebhookUrl') hook.pre_webhook_url = v;
				else if (k === 'PostWebhookUrl') hook.post_webhook_url = v;
				else if (k === 'Method') hook.method = v.toUpperCase();
			}
			state.hooks.set(m[1], hook);
		}
		return { status: 200, body: hook };
	}
	return notFound(p);
}

// Which Prism judges a path.
function productOf(pathname) {
	return pathname.startsWith('/v1/Services/') || pathname.startsWith('/v1/Configuration/')
		? 'conversations' : 'taskrouter';
}

// A request's whole body as text.
export function readBody(req) {
	return new Promise((resolve, reject) => {
		const chunks = [];
		req.on('data', (c) => chunks.push(c));
		req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
		req.on('error', reject);
	});
}

// The Basic user name sent (an account or API key SID), or null.
function basicUser(h) {
	const m = /^Basic ([A-Za-z0-9+/=]+)$/.exec(h ?? '');
	if (!m)
		return null;
	const dec = Buffer.from(m[1], 'base64').toString('utf8');
	const i = dec.indexOf(':');
	return i > 0 ? dec.slice(0, i) : null;
}

/*
 * Start the fake (and its two Prisms).  opts.accountSid (default tenant1's),
 * opts.pageSize (default 50, Twilio's).  Resolves to
 * { url, env, state, requests(), mark(), since(m), writes(m), failWith(err),
 *   defaultActivities(on), stop() } where each request is {product, method, path, query, form,
 * user, status, ok, errors} and env points the TaskRouter and Conversations
 * base URLs at the fake.
 */
export async function startTwilioState(opts = {}) {
	const prisms = {
		taskrouter: await startPrism('taskrouter'),
		conversations: await startPrism('conversations'),
	};
	const state = new State(opts.accountSid ?? 'AC00000000000000000000000000000001');
	const pageSize = opts.pageSize ?? 50;
	const log = [];
	let failure = null;
	let chain = Promise.resolve();
	let origin = '';

	async function handle(req, res) {
		const body = await readBody(req);
		const url = new URL(req.url, origin);
		const form = req.method === 'POST' ? parseForm(body) : [];
		const product = productOf(url.pathname);
		const v = await forward(prisms[product], req, body);
		const user = basicUser(req.headers.authorization);
		let out;
		if (failure)
			out = twilioError(failure.status, failure.code, failure.message);
		else if (!user)
			out = twilioError(401, 20003, 'Authenticate');
		else
			out = answer(state, req, form, origin, pageSize);
		log.push({ product, method: req.method, path: url.pathname, query: url.search, form,
			user, status: out.status, ok: v.ok, errors: v.errors });
		const text = JSON.stringify(out.body);
		res.writeHead(out.status, { 'Content-Type': 'application/json',
			'Content-Length': Buffer.byteLength(text) });
		res.end(text);
	}

	const server = http.createServer((req, res) => {
		chain = chain.then(() => handle(req, res)).catch((e) => {
			res.writeHead(500, { 'Content-Type': 'text/plain' });
			res.end(`fake error: ${e.message}`);
		});
	});
	await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
	origin = `http://127.0.0.1:${server.address().port}`;
	return {
		url: origin,
		env: { TWILIO_TASKROUTER_BASE_URL: origin, TWILIO_CONVERSATIONS_BASE_URL: origin },
		state,
		prisms,
		requests: () => log.slice(),
		mark: () => log.length,
		since: (m) => log.slice(m),
		// POST requests after marker m (every write provisioning makes).
		writes: (m = 0) => log.slice(m).filter((r) => r.method !== 'GET'),
		// Answer every request with this Twilio error ({status, code,
		// message}) until failWith(null).
		failWith: (f) => { failure = f; },
		// Whether workspaces created from now on get Twilio's default
		// activities.
		defaultActivities: (on) => { state.defaultActivities = on; },
		stop: async () => {
			const closed = new Promise((resolve) => server.close(resolve));
			server.closeAllConnections();       // libcurl keeps connections alive
			await closed;
			await prisms.taskrouter.stop();
			await prisms.conversations.stop();
		},
	};
}
