// check.mjs - integration harness: assertions shared by the test files
// (error envelope, common headers, secrets never leaked, a condition
// reached in time) and the after() hook that checks and stops stacks.
//
// DESIGN: the contract every response must meet (issue 2 item 6,
// RELIABILITY battery 47-50) is written once here, so each test states only
// what is particular to it.  Secrets are collected from the stack's
// environment and from the tenants file it serves (with ${ENV} references
// resolved), then looked for in every recorded answer and every log file.
//
// SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { SECRET_ENV, SRCDIR, sleep, workerPids } from './stack.mjs';

export const GENERATED_ID = /^[0-9a-f]{32}$/;
export const JSON_TYPE = /^application\/json; ?charset=utf-8$/i;

function describe(res) {
	return `status ${res.status}, headers ${JSON.stringify(res.headers)}, body ${res.text.slice(0, 500)}`;
}

// Headers every answer from the application carries.
export function assertCommonHeaders(res) {
	const rid = res.headers['x-request-id'];
	assert.ok(typeof rid === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(rid),
		`X-Request-Id missing or malformed: ${describe(res)}`);
	assert.equal(res.headers['x-content-type-options'], 'nosniff',
		`X-Content-Type-Options: nosniff missing: ${describe(res)}`);
}

// A JSON answer: status, Content-Type with charset, common headers.
export function assertJson(res, status) {
	assert.equal(res.status, status, describe(res));
	assert.match(res.headers['content-type'] ?? '', JSON_TYPE, describe(res));
	assertCommonHeaders(res);
	assert.notEqual(res.json, undefined, `body is not JSON: ${describe(res)}`);
	return res.json;
}

/*
 * The error envelope {"error":{"code","message","request_id",("field")}}
 * with the given status and code; request_id equals the X-Request-Id header.
 * Returns the error object.
 */
export function assertError(res, status, code) {
	const body = assertJson(res, status);
	assert.equal(typeof body.error, 'object', `no error object: ${describe(res)}`);
	const e = body.error;
	assert.equal(e.code, code, describe(res));
	assert.equal(typeof e.message, 'string', describe(res));
	assert.ok(e.message.length > 0, describe(res));
	assert.equal(e.request_id, res.headers['x-request-id'], describe(res));
	for (const k of Object.keys(e))
		assert.ok(['code', 'message', 'request_id', 'field'].includes(k),
			`unexpected key ${k} in error: ${describe(res)}`);
	assertNoInternals(res.text);
	return e;
}

// Text that would give away internals (stack traces, SQL, C sources).
export function assertNoInternals(text) {
	for (const re of [/sqlite/i, /SQLITE_/, /\.c:\d+/, /segmentation/i, /hiredis/i,
		/\bSELECT\b.*\bFROM\b/, /json_tokener/i, /errno/i])
		assert.doesNotMatch(text, re, `internals in body: ${text.slice(0, 300)}`);
}

function resolveEnv(v, env) {
	if (typeof v !== 'string')
		return undefined;
	const m = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(v);
	return m ? env[m[1]] : v;
}

/*
 * Every secret the stack knows: the fake ones from its environment and the
 * secret fields of each tenant in its tenants file.  Values shorter than 8
 * characters are left out (they would match by accident and are not
 * credentials anyone ships).
 */
export function secretsOf(stack) {
	const out = new Set(Object.values(SECRET_ENV));
	const file = stack.env.TENANTS_FILE || path.join(SRCDIR, 'infra', 'tenants.json');
	let tenants = {};
	try {
		tenants = JSON.parse(fs.readFileSync(file, 'utf8'));
	} catch {
		tenants = {};
	}
	for (const t of Object.values(tenants)) {
		if (!t || typeof t !== 'object')
			continue;
		const vals = [t.apiKey, t.twilio?.authToken, t.twilio?.apiSecret,
			t.ai?.openaiApiKey, t.crm?.apiKey];
		for (const v of vals) {
			const r = resolveEnv(v, stack.env);
			if (typeof r === 'string' && r.length >= 8)
				out.add(r);
		}
	}
	return [...out];
}

// Files under dir, recursively.
function filesUnder(dir) {
	let out = [];
	let ents = [];
	try {
		ents = fs.readdirSync(dir, { withFileTypes: true });
	} catch {
		return out;
	}
	for (const e of ents) {
		const p = path.join(dir, e.name);
		if (e.isDirectory())
			out = out.concat(filesUnder(p));
		else if (e.isFile())
			out.push(p);
	}
	return out;
}

/*
 * No secret in any recorded answer (headers and body) or in any file under
 * <state>/log.  Call before stopping the stack.
 */
export function assertNoSecrets(stack) {
	const secrets = secretsOf(stack);
	assert.ok(secrets.length >= Object.keys(SECRET_ENV).length);
	for (const s of secrets) {
		const i = stack.bodies.findIndex((b) => b.includes(s));
		assert.equal(i, -1, `secret ${s.slice(0, 6)}... found in a response: ` +
			`${i >= 0 ? stack.bodies[i].slice(0, 400) : ''}`);
	}
	for (const f of filesUnder(stack.logDir)) {
		const text = fs.readFileSync(f, 'utf8');
		for (const s of secrets)
			assert.ok(!text.includes(s), `secret ${s.slice(0, 6)}... found in log ${f}`);
	}
}

/*
 * The after() hook of a test file: check that no secret leaked from each
 * stack still running, then stop them all, also when a check fails.
 * Stacks that never started (undefined) are passed over.
 */
export function stopChecked(...stacks) {
	try {
		for (const s of stacks)
			if (s && !s.stopped)
				assertNoSecrets(s);
	} finally {
		for (const s of stacks)
			s?.stop();
	}
}

/*
 * Poll fn (every 100 ms, for up to ms) until it returns true; fail naming
 * what was awaited and the last value fn returned.
 */
export async function waitFor(what, fn, ms) {
	const deadline = Date.now() + ms;
	let last;
	while (Date.now() < deadline) {
		last = await fn();
		if (last === true)
			return;
		await sleep(100);
	}
	assert.fail(`${what} not reached within ${ms} ms (last: ${JSON.stringify(last)})`);
}

// Lines of a log file under <state>/log ('' when missing).
/*
 * SIGKILL every nonflex-fcgi worker of stack and wait (up to 10 s) until
 * multiwatch has replaced them all.
 */
export async function killWorkers(stack) {
	const before = workerPids(stack);
	for (const pid of before)
		process.kill(pid, 'SIGKILL');
	await waitFor('workers replaced', () => {
		const now = workerPids(stack);
		return (now.length === before.length && now.every((p) => !before.includes(p))) || now;
	}, 10000);
}

export function logLines(stack, name) {
	try {
		return fs.readFileSync(path.join(stack.logDir, name), 'utf8').split('\n');
	} catch {
		return [];
	}
}
