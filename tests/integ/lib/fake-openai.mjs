// fake-openai.mjs - integration harness: a small OpenAI on 127.0.0.1 that
// answers POST /v1/chat/completions like the real API and can fail, stall
// and lie on demand (ai.test.mjs and the conversation tests).
//
// DESIGN: one node:http server.  Each accepted Bearer key maps to a name
// (tenant1, ...); any other key gets 401, so a test proves which key was
// sent without the fake ever recording a key.  Every request is recorded
// as {name, body} (requests).  setMode() switches every answer (or the next
// n) to:
//   ok        the scripted assistant: a tool call get_order_by_id when the
//             last user text names an order (ORD-1234), create_ticket when
//             it says "ticket", handoff_to_human when it says "HANDOFF-TOOL",
//             a call to an unknown tool forever when it says "LOOP-TOOL",
//             then a final answer built from the tool's result ("Order
//             ORD-1000 is delivered." / "Tool error: ..."); otherwise
//             "Echo: <text>"
//   stall     never answers (the socket is held until stop)
//   500 | 503 | 429  an OpenAI-shaped error with that status (429 and 503
//             carry Retry-After: <retryAfter> when setMode's option
//             retryAfter, in seconds, is given)
//   reset     the connection is dropped once the request has arrived
//   garbage   status 200, truncated JSON
//   empty     status 200, no choices
// Every 200 reports usage.total_tokens = tokens (setTokens, default 2), so
// a test can spend a tenant's daily token budget in a known number of
// answers; requests[i].at is the arrival time (ms) to measure backoff.
//
// SPDX-License-Identifier: MIT

import http from 'node:http';

const ORDER = /\bORD-\d+\b/;

function lastOf(messages, role) {
	for (let i = messages.length - 1; i >= 0; i--)
		if (messages[i]?.role === role)
			return messages[i];
	return undefined;
}

let usageTokens = 2;      // set from the answering fake before each answer

function completion(message) {
	return {
		id: `chatcmpl-fake${Date.now()}`,
		object: 'chat.completion',
		created: Math.floor(Date.now() / 1000),
		model: 'fake',
		choices: [{ index: 0, message: { role: 'assistant', ...message },
			finish_reason: message.tool_calls ? 'tool_calls' : 'stop' }],
		usage: { prompt_tokens: usageTokens - 1, completion_tokens: 1, total_tokens: usageTokens },
	};
}

function toolCall(name, args) {
	return completion({
		content: null,
		tool_calls: [{ id: `call_${Math.random().toString(16).slice(2, 10)}`, type: 'function',
			function: { name, arguments: JSON.stringify(args) } }],
	});
}

// The scripted assistant of mode ok.
function scripted(body) {
	const msgs = Array.isArray(body.messages) ? body.messages : [];
	const last = msgs[msgs.length - 1];
	const user = String(lastOf(msgs, 'user')?.content ?? '');
	if (last?.role === 'tool') {
		if (user.includes('LOOP-TOOL'))
			return toolCall('no_such_tool', {});
		let r = {};
		try {
			r = JSON.parse(last.content);
		} catch {
			r = { error: 'unreadable tool result' };
		}
		if (r.error)
			return completion({ content: `Tool error: ${r.error}` });
		if (r.orderId)
			return completion({ content: `Order ${r.orderId} is ${r.status}.` });
		if (r.ticketId)
			return completion({ content: `Ticket ${r.ticketId} is ${r.status}.` });
		return completion({ content: `Found ${r.externalId ?? 'nothing'}.` });
	}
	if (user.includes('HANDOFF-TOOL'))
		return toolCall('handoff_to_human', { reason: 'customer is upset' });
	if (user.includes('LOOP-TOOL'))
		return toolCall('no_such_tool', {});
	const order = ORDER.exec(user);
	if (order)
		return toolCall('get_order_by_id', { orderId: order[0] });
	if (/\bticket\b/i.test(user))
		return toolCall('create_ticket', { subject: 'From chat', description: user });
	return completion({ content: `Echo: ${user}` });
}

/*
 * startFakeOpenAI({keys}) -> Promise<fake>.  keys maps a Bearer key to a
 * name.  fake: {url (ends in /v1), port, requests, setMode(mode, {times,
 * retryAfter}), setTokens(n), reset(), stop()}.
 */
export async function startFakeOpenAI(opts = {}) {
	const keys = { ...(opts.keys ?? {}) };
	const requests = [];
	const sockets = new Set();
	let mode = 'ok';
	let times = Infinity;
	let retryAfter;
	let tokens = 2;

	function send(res, status, body, extra = {}) {
		res.writeHead(status, { 'Content-Type': 'application/json', ...extra });
		res.end(typeof body === 'string' ? body : JSON.stringify(body));
	}

	function currentMode() {
		if (mode === 'ok' || times <= 0)
			return 'ok';
		times -= 1;
		return mode;
	}

	const server = http.createServer((req, res) => {
		const chunks = [];
		req.on('data', (c) => chunks.push(c));
		req.on('end', () => {
			const path = new URL(req.url, 'http://x').pathname;
			if (req.method !== 'POST' || path !== '/v1/chat/completions')
				return send(res, 404, { error: { message: 'no route', type: 'invalid_request_error' } });
			const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
			const name = m ? keys[m[1]] : undefined;
			let body;
			try {
				body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
			} catch {
				body = null;
			}
			requests.push({ name: name ?? null, body, at: Date.now() });
			if (!name)
				return send(res, 401, { error: { message: 'Incorrect API key provided',
					type: 'invalid_request_error', code: 'invalid_api_key' } });
			if (!body || typeof body.model !== 'string' || !Array.isArray(body.messages))
				return send(res, 400, { error: { message: 'bad request', type: 'invalid_request_error' } });
			switch (currentMode()) {
			case 'stall':
				return undefined;
			case '500':
				return send(res, 500, { error: { message: 'The server had an error', type: 'server_error' } });
			case '503':
				return send(res, 503, { error: { message: 'The engine is overloaded', type: 'server_error' } },
					retryAfter !== undefined ? { 'Retry-After': String(retryAfter) } : {});
			case '429':
				return send(res, 429, { error: { message: 'Rate limit reached', type: 'requests' } },
					retryAfter !== undefined ? { 'Retry-After': String(retryAfter) } : {});
			case 'reset':
				return req.socket.destroy();
			case 'garbage':
				return send(res, 200, '{"id":"chatcmpl-x","choices":[{"message":{"content":"Hel');
			case 'empty':
				return send(res, 200, { id: 'chatcmpl-x', choices: [] });
			default:
				usageTokens = tokens;
				return send(res, 200, scripted(body));
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
		url: `http://127.0.0.1:${port}/v1`,
		requests,
		setMode(md, o = {}) {
			mode = md;
			times = o.times ?? Infinity;
			retryAfter = o.retryAfter;
		},
		setTokens(n) {
			tokens = n;
		},
		reset() {
			requests.length = 0;
			mode = 'ok';
			times = Infinity;
			retryAfter = undefined;
			tokens = 2;
		},
		stop() {
			for (const s of sockets)
				s.destroy();
			return new Promise((resolve) => server.close(() => resolve()));
		},
	};
}
