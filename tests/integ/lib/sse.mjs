// sse.mjs - integration harness: a minimal EventSource client for the
// stack's /api/events/<topic> (nchan) subscriber endpoint.
//
// DESIGN: parses the text/event-stream format (WHATWG HTML, "event stream
// interpretation": field lines, blank line dispatches, ':' comments ignored,
// several data lines joined by '\n') from a raw node:http response, and
// queues events so a test can await the next one with a deadline.
//
// SPDX-License-Identifier: MIT

import http from 'node:http';

/*
 * subscribe(stack, topic, {headers, path}) -> Promise<sub>.  Resolves once
 * the response headers arrive.  sub.status / sub.headers; for a non-200
 * answer sub.text() resolves the body.  sub.next(ms) resolves the next
 * event {event, id, data, json} or rejects after ms; sub.nextOrNull(ms)
 * resolves null instead when no event arrives within ms; sub.close() ends the connection.
 */
export function subscribe(stack, topic, opts = {}) {
	const path = opts.path ?? `/api/events/${topic}`;
	return new Promise((resolve, reject) => {
		const req = http.request({
			host: '127.0.0.1', port: stack.httpPort, method: 'GET', path, agent: false,
			headers: { Accept: 'text/event-stream', ...(opts.headers ?? {}) },
		}, (res) => {
			clearTimeout(timer);
			resolve(makeSub(req, res));
		});
		const timer = setTimeout(() => req.destroy(new Error('subscribe: no answer in 10 s')), 10000);
		req.on('error', (e) => {
			clearTimeout(timer);
			reject(e);
		});
		req.end();
	});
}

function makeSub(req, res) {
	const queue = [];
	const waiters = [];
	let buf = '';
	let cur = { data: [], event: 'message', id: undefined };
	let ended = false;
	const raw = [];

	function dispatch() {
		if (cur.data.length > 0) {
			const data = cur.data.join('\n');
			let json;
			try {
				json = JSON.parse(data);
			} catch {
				json = undefined;
			}
			const ev = { event: cur.event, id: cur.id, data, json };
			const w = waiters.shift();
			if (w)
				w.resolve(ev);
			else
				queue.push(ev);
		}
		cur = { data: [], event: 'message', id: cur.id };
	}

	function line(l) {
		if (l === '')
			return dispatch();
		if (l.startsWith(':'))
			return undefined;
		const i = l.indexOf(':');
		const field = i < 0 ? l : l.slice(0, i);
		let value = i < 0 ? '' : l.slice(i + 1);
		if (value.startsWith(' '))
			value = value.slice(1);
		if (field === 'data')
			cur.data.push(value);
		else if (field === 'event')
			cur.event = value;
		else if (field === 'id')
			cur.id = value;
		return undefined;
	}

	res.setEncoding('utf8');
	res.on('data', (chunk) => {
		raw.push(chunk);
		buf += chunk;
		for (let m; (m = /\r\n|\r|\n/.exec(buf));) {
			line(buf.slice(0, m.index));
			buf = buf.slice(m.index + m[0].length);
		}
	});
	const finish = () => {
		ended = true;
		for (const w of waiters.splice(0))
			w.reject(new Error('event stream ended'));
	};
	res.on('end', finish);
	res.on('error', finish);
	req.on('error', finish);

	return {
		status: res.statusCode,
		headers: res.headers,
		text() {
			return new Promise((resolve) => {
				if (ended)
					resolve(raw.join(''));
				else
					res.on('end', () => resolve(raw.join('')));
			});
		},
		next(ms = 5000) {
			if (queue.length > 0)
				return Promise.resolve(queue.shift());
			if (ended)
				return Promise.reject(new Error('event stream ended'));
			return new Promise((resolve, reject) => {
				const w = {};
				const timer = setTimeout(() => {
					waiters.splice(waiters.indexOf(w), 1);
					reject(new Error(`no event within ${ms} ms (received so far: ` +
						`${JSON.stringify(raw.join('').slice(-300))})`));
				}, ms);
				w.resolve = (ev) => {
					clearTimeout(timer);
					resolve(ev);
				};
				w.reject = (e) => {
					clearTimeout(timer);
					reject(e);
				};
				waiters.push(w);
			});
		},
		async nextOrNull(ms) {
			try {
				return await this.next(ms);
			} catch (e) {
				if (/no event within/.test(e.message))
					return null;
				throw e;
			}
		},
		close() {
			req.destroy();
			res.destroy();
		},
	};
}
