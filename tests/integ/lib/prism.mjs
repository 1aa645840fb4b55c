// prism.mjs - Twilio's REST API as a contract mock: Prism serving Twilio's
// own OpenAPI definitions with request validation on (--errors).
//
// DESIGN: scripts/deps unpacks the definitions from the npm package
// @twilio-alpha/mcp into tests/.cache/twilio-oai.  startPrism() runs one
// Prism per definition on a free loopback port and reads its log: every
// request it received is recorded with the validator's verdict, so a test
// can assert that each call our C client made passed Twilio's contract
// (path, SID patterns, parameters, content type, Basic auth).  Prism logs a
// request's lines in order, so tests make contract calls one at a time.
//
// Known Prism quirks (see DESIGN.md): a few of Twilio's own example
// responses fail Twilio's schema, so Prism may answer 500 to a valid
// request; judge the request by the validator's verdict, or send
// `Prefer: dynamic=true`.  Prism does not flag unknown parameters: check
// those in our own tests.
//
// SPDX-License-Identifier: MIT

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { SRCDIR, freePort, sleep } from './stack.mjs';

export const OAI_DIR = path.join(SRCDIR, 'tests', '.cache', 'twilio-oai');
const PRISM = path.join(SRCDIR, 'tests', 'node_modules', '@stoplight', 'prism-cli', 'dist',
	'index.js');

// Which definition serves which product, and the environment variable that
// points our client at it.
export const PRODUCTS = {
	api: { spec: 'twilio_api_v2010.json', env: 'TWILIO_API_BASE_URL' },
	conversations: { spec: 'twilio_conversations_v1.json', env: 'TWILIO_CONVERSATIONS_BASE_URL' },
	taskrouter: { spec: 'twilio_taskrouter_v1.json', env: 'TWILIO_TASKROUTER_BASE_URL' },
	video: { spec: 'twilio_video_v1.json', env: 'TWILIO_VIDEO_BASE_URL' },
	studio: { spec: 'twilio_studio_v2.json', env: 'TWILIO_STUDIO_BASE_URL' },
};

const live = new Set();
process.on('exit', () => { for (const p of live) try { p.kill('SIGKILL'); } catch {} });

// 1 when the definitions and Prism are installed (scripts/deps).
export function prismAvailable() {
	return fs.existsSync(PRISM) && fs.existsSync(path.join(OAI_DIR, PRODUCTS.api.spec));
}

// Start Prism for one product ("conversations", ...); opts.dynamic,
// opts.errors (default true: --errors).  Resolves to
// { product, url, env: {VAR: url}, requests(), violations(), mark(), since(m),
//   logText(), stop() }.
export async function startPrism(product, opts = {}) {
	const def = PRODUCTS[product];
	if (!def) throw new Error(`unknown Twilio product ${product}`);
	const port = await freePort();
	const args = [PRISM, 'mock', '-h', '127.0.0.1', '-p', String(port)];
	// errors: false keeps request validation (a bad request still gets 422
	// and a failing verdict) but answers Twilio's examples even where they
	// fail Twilio's schema, so a multi-step client gets past them.
	if (opts.errors !== false) args.push('--errors');
	if (opts.dynamic) args.push('--dynamic');
	args.push(path.join(OAI_DIR, def.spec));
	const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'],
		env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } });
	live.add(child);
	let text = '';
	const reqs = [];
	let cur = null;
	const onLine = (line) => {
		text += line + '\n';
		const m = /\[HTTP SERVER\] (\w+) (\S+) .*Request received/.exec(line);
		if (m) {
			cur = { method: m[1].toUpperCase(), path: m[2], ok: null, errors: [] };
			reqs.push(cur);
			return;
		}
		if (!cur) return;
		if (/\[VALIDATOR\].*success/.test(line)) cur.ok = true;
		else if (/\[VALIDATOR\].*(error|warning)/.test(line)) {
			const msg = line.replace(/^.*\[VALIDATOR\]\s*\S*\s*(error|warning)\s*/, '').trim();
			if (/error/.test(line.replace(/^.*\[VALIDATOR\]/, '').slice(0, 20))) cur.ok = false;
			if (msg && !/did not pass the validation rules/.test(msg)) cur.errors.push(msg);
		}
	};
	let buf = '';
	const feed = (chunk) => {
		buf += chunk.toString('utf8');
		let i;
		while ((i = buf.indexOf('\n')) >= 0) { onLine(buf.slice(0, i)); buf = buf.slice(i + 1); }
	};
	child.stdout.on('data', feed);
	child.stderr.on('data', feed);
	const exited = new Promise((resolve) => child.on('exit', resolve));
	const deadline = Date.now() + 60000;
	while (!/Prism is listening/.test(text)) {
		if (child.exitCode !== null) throw new Error(`prism ${product} exited:\n${text.slice(-2000)}`);
		if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`prism ${product} did not start`); }
		await sleep(100);
	}
	const url = `http://127.0.0.1:${port}`;
	return {
		product, url, port, env: { [def.env]: url },
		// Every request received so far: {method, path, ok, errors[]}.
		requests: () => reqs.slice(),
		// Requests the validator refused (ok === false).
		violations: () => reqs.filter((r) => r.ok === false),
		// A marker to look only at what comes after it.
		mark: () => reqs.length,
		since: (m) => reqs.slice(m),
		logText: () => text,
		stop: async () => {
			if (child.exitCode === null) child.kill('SIGTERM');
			await Promise.race([exited, sleep(5000)]);
			if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
			live.delete(child);
		},
	};
}

// Wait until Prism has logged the validator's verdict for the request
// after marker m (our client may return before Prism flushes its log).
export async function verdict(prism, m, ms = 5000) {
	const deadline = Date.now() + ms;
	for (;;) {
		const r = prism.since(m);
		if (r.length && r.every((x) => x.ok !== null)) return r;
		if (Date.now() > deadline) return r;
		await sleep(25);
	}
}

// Send a request a stateful fake received to Prism as it came and wait for
// the validator's verdict: {ok, errors[]}.  The fakes answer from their own
// state; Prism only judges the contract.
export async function forward(prism, req, body) {
	const m = prism.mark();
	const headers = {};
	for (const h of ['authorization', 'content-type', 'accept'])
		if (req.headers[h])
			headers[h] = req.headers[h];
	try {
		const r = await fetch(prism.url + req.url, { method: req.method, headers,
			body: req.method === 'GET' ? undefined : body });
		await r.arrayBuffer();
	} catch (e) {
		return { ok: false, errors: [`not forwarded to Prism: ${e.message}`] };
	}
	const v = await verdict(prism, m);
	if (v.length !== 1)
		return { ok: false, errors: [`Prism logged ${v.length} requests for one`] };
	return { ok: v[0].ok === true, errors: v[0].errors };
}
