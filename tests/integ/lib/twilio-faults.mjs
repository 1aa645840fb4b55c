// twilio-faults.mjs - a fake of the Twilio Conversations messages API and
// TaskRouter's task create that keeps what it is sent and fails on demand,
// for the outbound delivery tests (delivery.test.mjs).
//
// DESIGN: like twilio-state.mjs, every request is first FORWARDED unchanged
// to a Prism mock of the product (startPrism) and the validator's verdict
// recorded, so each call our C client makes is judged against Twilio's
// OpenAPI contract; the fake then answers from its own state in Twilio's
// shapes: messages of a conversation (create; list newest first with
// Order=desc and product-API paging), the conversation itself (fetch,
// attributes update) and tasks (create).  Requests are handled one at a
// time so Prism's log lines stay in order.
//
// Faults (fail()) are consumed in order by the requests they match
// ("create": message creates, "task": task creates, "any"): an HTTP
// status with Twilio's error body, optionally after the message was kept
// anyway (keep: a create that took effect although the caller saw a 5xx,
// the ambiguous case), or a stall longer than the client's timeout.
// down() closes the listening socket (connection refused: nothing sent);
// up() listens again on the same port.  A fault may also add messages
// after ours (addAfter: a busy conversation where ours is no longer on
// the first page).
//
// Credentials: rejectAuth({user, unless}) answers 401 / 20003 to every
// request whose Basic user (an AccountSid or API key SID, i.e. one
// tenant) is user, except when its password is unless (the rotated
// secret), the way Twilio answers a revoked key; acceptAuth() ends it.
// seed(is, ch, n, ageMs) gives a conversation n older messages, for the
// long-conversation reconciliation tests.
//
// SPDX-License-Identifier: MIT

import crypto from 'node:crypto';
import http from 'node:http';

import { forward, startPrism } from './prism.mjs';
import { readBody, twilioError } from './twilio-state.mjs';
import { sleep } from './stack.mjs';

const hex32 = () => crypto.randomBytes(16).toString('hex');
const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

// Our message id in a Twilio message's attributes, or null.
export function nonflexId(m) {
	try {
		return JSON.parse(m.attributes ?? '{}').nonflex_message_id ?? null;
	} catch {
		return null;
	}
}

const MSGS = /^\/v1\/Services\/(IS[0-9a-fA-F]{32})\/Conversations\/(CH[0-9a-fA-F]{32})\/Messages$/;
const CONV = /^\/v1\/Services\/(IS[0-9a-fA-F]{32})\/Conversations\/(CH[0-9a-fA-F]{32})$/;
const TASKS = /^\/v1\/Workspaces\/(WS[0-9a-fA-F]{32})\/Tasks$/;

class State {
	constructor(accountSid) {
		this.accountSid = accountSid;
		this.messages = new Map();      // CH -> [message], oldest first
		this.convs = new Map();         // CH -> conversation
		this.tasks = [];
	}

	conv(is, ch) {
		if (!this.convs.has(ch))
			this.convs.set(ch, { sid: ch, account_sid: this.accountSid, chat_service_sid: is,
				messaging_service_sid: null, friendly_name: null, unique_name: null,
				attributes: '{}', state: 'active', date_created: now(), date_updated: now(),
				timers: {}, url: `https://conversations.twilio.com/v1/Services/${is}/Conversations/${ch}`,
				links: {}, bindings: null });
		return this.convs.get(ch);
	}

	addMessage(is, ch, form, at = now()) {
		const list = this.messages.get(ch) ?? [];
		this.messages.set(ch, list);
		const sid = `IM${hex32()}`;
		const m = { sid, account_sid: this.accountSid, conversation_sid: ch, chat_service_sid: is,
			index: list.length, author: form.get('Author') ?? 'system', body: form.get('Body'),
			media: null, attributes: form.get('Attributes') ?? '{}', participant_sid: null,
			date_created: at, date_updated: at, delivery: null, content_sid: null,
			url: `https://conversations.twilio.com/v1/Services/${is}/Conversations/${ch}/Messages/${sid}`,
			links: {} };
		list.push(m);
		return m;
	}
}

function messagesPage(state, ch, url, origin) {
	const all = [...(state.messages.get(ch) ?? [])];
	if (url.searchParams.get('Order') === 'desc')
		all.reverse();
	const size = Math.max(1, Math.min(1000, Number(url.searchParams.get('PageSize')) || 50));
	const n = Math.max(0, Number(url.searchParams.get('Page')) || 0);
	const link = (p) => `${origin}${url.pathname}?Order=${url.searchParams.get('Order') ?? 'asc'}` +
		`&PageSize=${size}&Page=${p}`;
	const more = (n + 1) * size < all.length;
	return { messages: all.slice(n * size, (n + 1) * size), meta: { page: n, page_size: size,
		first_page_url: link(0), previous_page_url: n > 0 ? link(n - 1) : null, url: link(n),
		next_page_url: more ? link(n + 1) : null, key: 'messages' } };
}

function answer(state, req, form, url, origin, fault) {
	const post = req.method === 'POST';
	let m;
	if ((m = MSGS.exec(url.pathname))) {
		if (!post)
			return { status: 200, body: messagesPage(state, m[2], url, origin) };
		if (!form.get('Body'))
			return twilioError(400, 21619, 'A text message body or media urls must be specified');
		const msg = state.addMessage(m[1], m[2], form);
		for (let i = 0; i < (fault?.addAfter ?? 0); i++)
			state.addMessage(m[1], m[2], new URLSearchParams({ Author: 'customer', Body: `later ${i}` }));
		return { status: 201, body: msg };
	}
	if ((m = CONV.exec(url.pathname))) {
		const c = state.conv(m[1], m[2]);
		if (post && form.has('Attributes')) {
			c.attributes = form.get('Attributes');
			c.date_updated = now();
		}
		return { status: 200, body: c };
	}
	if ((m = TASKS.exec(url.pathname)) && post) {
		const sid = `WT${hex32()}`;
		const t = { sid, account_sid: state.accountSid, workspace_sid: m[1],
			workflow_sid: form.get('WorkflowSid') ?? null, attributes: form.get('Attributes'),
			priority: Number(form.get('Priority') ?? 0), timeout: Number(form.get('Timeout') ?? 86400),
			task_channel_unique_name: form.get('TaskChannel') ?? 'default',
			assignment_status: 'pending', age: 0, date_created: now(), date_updated: now(),
			url: `https://taskrouter.twilio.com/v1/Workspaces/${m[1]}/Tasks/${sid}`, links: {} };
		state.tasks.push(t);
		return { status: 201, body: t };
	}
	return twilioError(404, 20404, `The requested resource ${url.pathname} was not found`);
}

// What a fault matches: "create" (message create), "task", "any".
function kindOf(req, url) {
	if (req.method === 'POST' && MSGS.test(url.pathname)) return 'create';
	if (req.method === 'POST' && TASKS.test(url.pathname)) return 'task';
	return 'other';
}

/*
 * Start the fake and its two Prisms (conversations, taskrouter).  Resolves
 * to { url, env, state, requests(), mark(), since(m), fail(f), clearFaults(),
 * messagesWith(id), down(), up(), stop() }.  Each request is recorded as
 * {product, kind, method, path, query, user, form, status, ok, errors}.
 * fail({on: 'create'|'task'|'any', status, code, message, keep, addAfter,
 * stallMs, times}) queues a fault used by the next `times` (default 1;
 * Infinity for always) matching requests.
 */
export async function startTwilioFaults(opts = {}) {
	const prisms = {
		conversations: await startPrism('conversations'),
		taskrouter: await startPrism('taskrouter'),
	};
	const state = new State(opts.accountSid ?? 'AC00000000000000000000000000000001');
	const log = [];
	let faults = [];
	let refused = null;         // {user, unless}: rejectAuth()
	let chain = Promise.resolve();
	let origin = '';
	let port = 0;

	function takeFault(kind) {
		const i = faults.findIndex((f) => f.on === 'any' || f.on === kind);
		if (i < 0)
			return null;
		const f = faults[i];
		f.times -= 1;
		if (f.times <= 0)
			faults.splice(i, 1);
		return f;
	}

	async function handle(req, res) {
		const body = await readBody(req);
		const url = new URL(req.url, origin);
		const form = new URLSearchParams(req.method === 'POST' ? body : '');
		const product = url.pathname.startsWith('/v1/Workspaces') ? 'taskrouter' : 'conversations';
		const kind = kindOf(req, url);
		const v = await forward(prisms[product], req, body);
		const f = takeFault(kind);
		let out;
		const [user, pass] = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''),
			'base64').toString('utf8').split(/:(.*)/s);
		if (!/^Basic /.test(req.headers.authorization ?? '') ||
		    (refused && user === refused.user && pass !== refused.unless))
			out = twilioError(401, 20003, 'Authenticate');
		else if (f && !f.keep && !f.stallMs)
			out = twilioError(f.status, f.code, f.message);
		else {
			out = answer(state, req, form, url, origin, f);
			if (f && f.status)
				out = twilioError(f.status, f.code, f.message);
		}
		log.push({ product, kind, method: req.method, path: url.pathname, query: url.search,
			user, form: [...form], status: f?.stallMs ? 'stalled' : out.status, ok: v.ok,
			errors: v.errors });
		if (f?.stallMs)
			await sleep(f.stallMs);
		const text = JSON.stringify(out.body);
		try {
			res.writeHead(out.status, { 'Content-Type': 'application/json',
				'Content-Length': Buffer.byteLength(text) });
			res.end(text);
		} catch {
			// the client gave up (stall)
		}
	}

	const server = http.createServer((req, res) => {
		chain = chain.then(() => handle(req, res)).catch((e) => {
			res.writeHead(500, { 'Content-Type': 'text/plain' });
			res.end(`fake error: ${e.message}`);
		});
	});
	const listen = () => new Promise((resolve, reject) => {
		server.once('error', reject);
		server.listen(port, '127.0.0.1', () => {
			server.off('error', reject);
			resolve();
		});
	});
	await listen();
	port = server.address().port;
	origin = `http://127.0.0.1:${port}`;
	let listening = true;
	const close = async () => {
		if (!listening)
			return;
		listening = false;
		const closed = new Promise((resolve) => server.close(resolve));
		server.closeAllConnections();       // libcurl keeps connections alive
		await closed;
	};
	return {
		url: origin,
		env: { TWILIO_TASKROUTER_BASE_URL: origin, TWILIO_CONVERSATIONS_BASE_URL: origin },
		state,
		prisms,
		requests: () => log.slice(),
		mark: () => log.length,
		since: (m) => log.slice(m),
		fail: (f) => { faults.push({ on: 'create', times: 1, ...f }); },
		clearFaults: () => { faults = []; },
		rejectAuth: (r) => { refused = { ...r }; },
		acceptAuth: () => { refused = null; },
		// n messages in conversation ch of service is, created ageMs ago.
		seed: (is, ch, n, ageMs) => {
			const at = new Date(Date.now() - ageMs).toISOString().replace(/\.\d+Z$/, 'Z');
			for (let i = 0; i < n; i++)
				state.addMessage(is, ch, new URLSearchParams({ Author: 'customer', Body: `old ${i}` }), at);
		},
		// Messages Twilio holds that carry our message id.
		messagesWith: (id) => [...state.messages.values()].flat().filter((m) => nonflexId(m) === id),
		down: close,
		up: async () => {
			if (listening)
				return;
			await listen();
			listening = true;
		},
		stop: async () => {
			await close();
			await prisms.conversations.stop();
			await prisms.taskrouter.stop();
		},
	};
}
