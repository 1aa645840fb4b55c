// http.mjs - integration harness: HTTP/HTTPS requests to a running stack.
//
// DESIGN: one fresh connection per request (agent: false), so a request
// never rides on a connection a killed worker or nginx left half-closed, and
// every request has a hard timeout so a hang fails the test instead of
// stalling the suite.  Every answer's headers and body are remembered on the
// stack (stack.bodies) so a test can finally check that no secret was ever
// sent.  The HTTPS side uses the stack's self-signed certificate, so peer
// verification is off for it (the certificate is made fresh per stack).
//
// SPDX-License-Identifier: MIT

import http from 'node:http';
import https from 'node:https';
import net from 'node:net';

/*
 * request(stack, opts) -> Promise<{status, headers, text, json, ms}>
 * opts: method (GET), path (/), headers {}, body (string | Buffer | object:
 * sent as JSON), tls (false), timeout ms (10000), record (true).
 * json is the parsed body or undefined when it is not JSON.
 * Rejects on connection errors and timeouts.
 */
export function request(stack, opts = {}) {
	const tls = !!opts.tls;
	const mod = tls ? https : http;
	const headers = { ...(opts.headers ?? {}) };
	let body = opts.body;
	if (body !== undefined && !Buffer.isBuffer(body) && typeof body !== 'string') {
		body = JSON.stringify(body);
		if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type'))
			headers['Content-Type'] = 'application/json';
	}
	if (body !== undefined)
		headers['Content-Length'] = Buffer.byteLength(body);
	const timeout = opts.timeout ?? 10000;
	const started = performance.now();
	return new Promise((resolve, reject) => {
		let settled = false;
		const fail = (e) => {
			if (!settled) {
				settled = true;
				reject(e);
			}
		};
		const req = mod.request({
			host: '127.0.0.1',
			port: tls ? stack.httpsPort : stack.httpPort,
			method: opts.method ?? 'GET',
			path: opts.path ?? '/',
			headers,
			agent: false,
			rejectUnauthorized: false,
			servername: tls ? 'localhost' : undefined,
		}, (res) => {
			const chunks = [];
			res.on('data', (c) => chunks.push(c));
			res.on('error', fail);
			res.on('end', () => {
				if (settled)
					return;
				settled = true;
				clearTimeout(timer);
				const text = Buffer.concat(chunks).toString('utf8');
				let json;
				try {
					json = JSON.parse(text);
				} catch {
					json = undefined;
				}
				if (opts.record !== false && stack.bodies)
					stack.bodies.push(JSON.stringify(res.headers) + '\n' + text);
				resolve({
					status: res.statusCode, headers: res.headers, text, json,
					ms: performance.now() - started,
				});
			});
		});
		const timer = setTimeout(() => {
			req.destroy(new Error(`timeout after ${timeout} ms: ` +
				`${opts.method ?? 'GET'} ${opts.path ?? '/'}`));
		}, timeout);
		// nginx may answer (413) and stop reading before the whole body is
		// written: a write error after the response is not a failure.
		req.on('error', (e) => {
			clearTimeout(timer);
			fail(e);
		});
		if (body !== undefined)
			req.end(body);
		else
			req.end();
	});
}

/*
 * Send raw bytes on a fresh TCP connection to the HTTP port and collect
 * everything the server answers until it closes (or timeout ms pass).
 * For requests Node's client refuses to build.  Resolves the raw reply.
 */
export function rawRequest(stack, bytes, timeout = 10000) {
	return new Promise((resolve, reject) => {
		const chunks = [];
		const sock = net.connect(stack.httpPort, '127.0.0.1');
		const timer = setTimeout(() => {
			sock.destroy();
			reject(new Error(`raw request timed out after ${timeout} ms`));
		}, timeout);
		sock.on('data', (c) => chunks.push(c));
		sock.on('error', () => {});
		sock.on('close', () => {
			clearTimeout(timer);
			const text = Buffer.concat(chunks).toString('latin1');
			if (stack.bodies)
				stack.bodies.push(text);
			resolve(text);
		});
		sock.end(bytes);
	});
}

// The error envelope's fields, after checking its shape and headers.
export function errorOf(res) {
	return res.json && res.json.error ? res.json.error : undefined;
}

/*
 * Run n requests with at most `concurrency` in flight; mk(i) returns the
 * request options.  Resolves the array of results ({status} or {error}).
 */
export async function hammer(stack, n, concurrency, mk) {
	const results = new Array(n);
	let next = 0;
	async function lane() {
		while (next < n) {
			const i = next++;
			try {
				results[i] = await request(stack, mk(i));
			} catch (e) {
				results[i] = { error: e.message };
			}
		}
	}
	await Promise.all(Array.from({ length: concurrency }, lane));
	return results;
}

/*
 * Background traffic until stop() is called: loops one request at a time
 * per lane; stop() resolves the list of results.
 */
export function traffic(stack, concurrency, mk) {
	const results = [];
	let running = true;
	async function lane() {
		while (running) {
			const t0 = performance.now();
			try {
				const r = await request(stack, mk());
				results.push({ status: r.status, code: r.json?.error?.code, ms: r.ms, at: t0 });
			} catch (e) {
				results.push({ error: e.message, ms: performance.now() - t0, at: t0 });
			}
		}
	}
	const lanes = Array.from({ length: concurrency }, lane);
	return {
		results,
		async stop() {
			running = false;
			await Promise.all(lanes);
			return results;
		},
	};
}
