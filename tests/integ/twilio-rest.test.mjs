// twilio-rest.test.mjs - contract tests of the Twilio REST client (issue 4
// item 2; RELIABILITY battery 26-29): every operation in fcgi/twilio_api.h,
// run by the tests/integ/twilio_ops driver with tenant1's SIDs from
// infra/tenants.json, against Prism serving Twilio's own OpenAPI definitions
// with request validation on.  Each test asserts that Prism's validator
// accepted the request (path, SID patterns, parameters, content type, Basic
// auth) and that our program read the answer.  Also: malformed SIDs and
// missing credentials are refused before any HTTP (Prism sees nothing),
// lists stop at Prism's last page, tenant2 authenticates with the
// process-wide fallback secret, and no secret reaches the program's output
// or its log lines.  Prism does not flag unknown parameters: the exact
// parameter sets are checked by tests/unit/t_twrest.c.
//
// SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { prismAvailable, startPrism, verdict } from './lib/prism.mjs';
import { BUILDDIR, OFFLINE_URL, SECRET_ENV, SRCDIR, sleep } from './lib/stack.mjs';

const OPS = path.join(BUILDDIR, 'tests', 'integ', 'twilio_ops');
const TENANTS_FILE = path.join(SRCDIR, 'infra', 'tenants.json');
const TENANTS = JSON.parse(fs.readFileSync(TENANTS_FILE, 'utf8'));
const T1 = TENANTS.tenant1.twilio;
const T2 = TENANTS.tenant2.twilio;

// SIDs of resources that live at Twilio (not in the tenants file).
const CH = 'CH00000000000000000000000000000001';
const WT = 'WT00000000000000000000000000000001';
const WR = 'WR00000000000000000000000000000001';
const WK = 'WK00000000000000000000000000000001';
const WA = 'WA00000000000000000000000000000001';
const CA = 'CA00000000000000000000000000000001';

const skip = !prismAvailable() || !fs.existsSync(OPS)
	? 'Prism or the Twilio definitions are missing (scripts/deps) or twilio_ops is not built'
	: false;

const prisms = {};
const outputs = [];     // every stdout/stderr of twilio_ops, for the secrets check

// Variables of the caller's shell that would change what twilio_ops sees.
const SCRUBBED = ['TENANT2_TWILIO_AUTH_TOKEN', 'TENANT2_TWILIO_API_SECRET', 'TWILIO_ACCOUNT_SID',
	'TWILIO_API_KEY', 'TENANTS_FILE', 'NONFLEX_TWILIO_MAX_ATTEMPTS', 'NONFLEX_LOG_LEVEL'];

function opsEnv(extra = {}) {
	const env = { ...process.env };
	for (const k of SCRUBBED)
		delete env[k];
	Object.assign(env, SECRET_ENV, {
		TENANTS_FILE,
		TWILIO_API_BASE_URL: prisms.api.url,
		TWILIO_CONVERSATIONS_BASE_URL: prisms.conversations.url,
		TWILIO_TASKROUTER_BASE_URL: prisms.taskrouter.url,
		TWILIO_VIDEO_BASE_URL: OFFLINE_URL,
		TWILIO_STUDIO_BASE_URL: OFFLINE_URL,
		// One request per operation, so each Prism verdict is one call's.
		NONFLEX_TWILIO_MAX_ATTEMPTS: '1',
		NONFLEX_LOG_LEVEL: 'debug',
	}, extra);
	for (const [k, v] of Object.entries(env))
		if (v === undefined)
			delete env[k];
	return env;
}

// Run twilio_ops (asynchronously: Prism's log pipes must keep draining).
function ops(args, { tenant = 'tenant1', env = {} } = {}) {
	return new Promise((resolve, reject) => {
		const child = spawn(OPS, ['--tenant', tenant, ...args], { env: opsEnv(env),
			stdio: ['ignore', 'pipe', 'pipe'] });
		let stdout = '';
		let stderr = '';
		child.stdout.on('data', (d) => { stdout += d; });
		child.stderr.on('data', (d) => { stderr += d; });
		const timer = setTimeout(() => child.kill('SIGKILL'), 30000);
		child.on('error', reject);
		child.on('close', (code) => {
			clearTimeout(timer);
			outputs.push(stdout, stderr);
			let json;
			try {
				json = JSON.parse(stdout);
			} catch {
				json = undefined;
			}
			resolve({ code, stdout, stderr, json });
		});
	});
}

function describeRun(r) {
	return `exit ${r.code}\nstdout: ${r.stdout.slice(0, 1500)}\nstderr: ${r.stderr.slice(-1500)}`;
}

/*
 * Run one operation against the product's Prism and check the contract:
 * exactly the expected requests reached Prism, each accepted by its
 * validator, and the program reported success.  Returns the program's JSON.
 */
async function contract(product, args, expect, opts = {}) {
	const prism = prisms[product];
	const m = prism.mark();
	const r = await ops(args, opts);
	const seen = await verdict(prism, m);
	assert.equal(seen.length, expect.length, `requests Prism saw: ${JSON.stringify(seen)}\n${describeRun(r)}`);
	seen.forEach((q, i) => {
		assert.equal(q.ok, true, `Prism refused ${q.method} ${q.path}: ${q.errors.join('; ')}`);
		assert.equal(`${q.method} ${q.path}`, expect[i]);
	});
	assert.equal(r.code, 0, describeRun(r));
	assert.equal(r.json?.ok, true, describeRun(r));
	return r.json;
}

// Nothing reaches Prism while (and shortly after) fn runs.
async function untouched(fn) {
	const marks = Object.fromEntries(Object.entries(prisms).map(([k, p]) => [k, p.mark()]));
	const out = await fn();
	await sleep(300);
	for (const [k, p] of Object.entries(prisms))
		assert.deepEqual(p.since(marks[k]), [], `${k} mock received a request`);
	return out;
}

const MSG = `/v1/Services/${T1.conversationsServiceSid}/Conversations/${CH}`;
const WS = `/v1/Workspaces/${T1.workspaceSid}`;

describe('Twilio REST operations against Twilio\'s OpenAPI (Prism)', { skip }, () => {
	before(async () => {
		const [api, conversations, taskrouter] = await Promise.all(
			['api', 'conversations', 'taskrouter'].map((p) => startPrism(p)));
		Object.assign(prisms, { api, conversations, taskrouter });
	});

	after(async () => {
		await Promise.all(Object.values(prisms).map((p) => p.stop()));
	});

	describe('Conversations', () => {
		test('create a message: Author, Body, Attributes carrying our id', async () => {
			const out = await contract('conversations',
				['message-create', CH, 'agent:sarah', 'Grüße & <hello> "quoted"', '507f1f77bcf86cd799439011'],
				[`POST ${MSG}/Messages`]);
			assert.equal(out.status, 201);
			assert.match(out.body.sid, /^IM[0-9a-fA-F]{32}$/);
		});

		test('list a conversation\'s messages, newest first, to the last page', async () => {
			const out = await contract('conversations', ['messages-list', CH, '50', '5'],
				[`GET ${MSG}/Messages`]);
			// Prism's answer is one page (next_page_url null): the client stopped there.
			assert.ok(out.count >= 1, JSON.stringify(out).slice(0, 300));
			assert.equal(out.count, out.items.length);
			for (const m of out.items)
				assert.match(m.sid, /^IM/);
		});

		test('find a message by our id (reconciliation) reads the list', async () => {
			const out = await contract('conversations', ['message-find', CH, 'nf-not-there', '2'],
				[`GET ${MSG}/Messages`]);
			assert.equal(out.found, null);
		});

		test('fetch a conversation', async () => {
			const out = await contract('conversations', ['conversation-fetch', CH], [`GET ${MSG}`]);
			assert.equal(out.status, 200);
			assert.match(out.body.sid, /^CH/);
		});

		test('update a conversation\'s attributes', async () => {
			const out = await contract('conversations',
				['conversation-attributes', CH, '{"queue":"vip","nonflex":{"state":"queued"}}'],
				[`POST ${MSG}`]);
			assert.equal(out.status, 200);
		});
	});

	describe('TaskRouter', () => {
		test('create a task with every optional parameter', async () => {
			const out = await contract('taskrouter',
				['task-create', '{"type":"chat","conversationSid":"' + CH + '"}', '-', '10', 'chat', '3600'],
				[`POST ${WS}/Tasks`]);
			assert.equal(out.status, 201);
			assert.match(out.body.sid, /^WT/);
		});

		test('create a task with an explicit workflow and defaults', async () => {
			await contract('taskrouter', ['task-create', '{}', T1.workflowSid, '-', '-', '-'],
				[`POST ${WS}/Tasks`]);
		});

		test('complete and cancel a task; wrap it up', async () => {
			await contract('taskrouter', ['task-update', WT, 'completed', 'resolved by agent'],
				[`POST ${WS}/Tasks/${WT}`]);
			await contract('taskrouter', ['task-update', WT, 'canceled', 'customer left'],
				[`POST ${WS}/Tasks/${WT}`]);
			await contract('taskrouter', ['task-update', WT, 'wrapping', '-'],
				[`POST ${WS}/Tasks/${WT}`]);
		});

		test('accept and reject a reservation', async () => {
			for (const status of ['accepted', 'rejected'])
				await contract('taskrouter', ['reservation-update', WT, WR, status],
					[`POST ${WS}/Tasks/${WT}/Reservations/${WR}`]);
		});

		test('set a worker\'s activity', async () => {
			const out = await contract('taskrouter', ['worker-activity', WK, WA],
				[`POST ${WS}/Workers/${WK}`]);
			assert.match(out.body.sid, /^WK/);
		});

		test('list workers through nf_tw_list', async () => {
			const out = await contract('taskrouter', ['workers-list', '3'], [`GET ${WS}/Workers`]);
			assert.ok(out.count >= 1);
			assert.match(out.items[0].sid, /^WK/);
		});
	});

	describe('Api 2010', () => {
		test('fetch the account (credential check) without passing its auth token on', async () => {
			const out = await contract('api', ['account-fetch'],
				[`GET /2010-04-01/Accounts/${T1.accountSid}.json`]);
			assert.match(out.body.sid, /^AC/);
			// Prism's example carries an auth_token like the real answer does.
			assert.ok(prisms.api.logText().length > 0);
			assert.equal('auth_token' in out.body, false);
		});

		test('redirect a live call to new TwiML', async () => {
			const out = await contract('api',
				['call-redirect', CA, 'https://tenant1.nonflex.example/webhooks/twilio/voice/menu?step=2', 'POST'],
				[`POST /2010-04-01/Accounts/${T1.accountSid}/Calls/${CA}.json`]);
			assert.match(out.body.sid, /^CA/);
		});

		test('a 2010 list request is valid; Prism\'s own broken example is reported as a clear error', async () => {
			// Twilio's example list answers carry relative *_page_uri values that
			// fail Twilio's "format: uri" schema, so Prism answers 500 to a valid
			// request; multi-page 2010 paging is covered by t_twrest.c.
			const prism = prisms.api;
			const m = prism.mark();
			const r = await ops(['list', 'api', `/2010-04-01/Accounts/${T1.accountSid}/Calls.json?PageSize=20`,
				'calls', '5']);
			const seen = await verdict(prism, m);
			assert.equal(seen.length, 1);
			assert.equal(seen[0].ok, true, seen[0].errors.join('; '));
			assert.equal(r.code, 1, describeRun(r));
			assert.equal(r.json.ok, false);
			assert.equal(r.json.error.code, 'twilio_unavailable');
			assert.match(r.json.error.message, /HTTP 500/);
		});

		test('tenant2 authenticates with the process-wide API secret', async () => {
			const out = await contract('api', ['account-fetch'],
				[`GET /2010-04-01/Accounts/${T2.accountSid}.json`], { tenant: 'tenant2' });
			assert.equal(out.status, 200);
		});
	});

	describe('refused before any HTTP', () => {
		const bad = ['CH123', 'CH0000000000000000000000000000000g', `${CH}/../../x`, 'ch00000000000000000000000000000001',
			'IS00000000000000000000000000000001'];

		test('malformed SIDs never reach Twilio', async () => {
			await untouched(async () => {
				for (const sid of bad) {
					const cases = [
						[['message-create', sid, 'a', 'b', 'm1'], 'conversation_sid'],
						[['conversation-fetch', sid], 'conversation_sid'],
						[['messages-list', sid, '50', '1'], 'conversation_sid'],
						[['task-update', sid, 'completed', 'x'], 'task_sid'],
						[['reservation-update', WT, sid, 'accepted'], 'reservation_sid'],
						[['worker-activity', sid, WA], 'worker_sid'],
						[['call-redirect', sid, 'https://x.example/', '-'], 'call_sid'],
					];
					for (const [args, field] of cases) {
						const r = await ops(args);
						assert.equal(r.code, 1, describeRun(r));
						assert.equal(r.json.error.code, 'invalid_sid', describeRun(r));
						assert.equal(r.json.error.field, field);
						assert.equal(r.json.attempts ?? 0, 0);
					}
				}
			});
		});

		test('bad arguments never reach Twilio', async () => {
			await untouched(async () => {
				const cases = [
					[['message-create', CH, 'a', '', 'm1'], 'body'],
					[['messages-list', CH, '500', '1'], 'page_size'],
					[['task-create', '[1]', '-', '-', '-', '-'], 'attributes'],
					[['task-update', WT, 'assigned', 'x'], 'status'],
					[['call-redirect', CA, 'javascript:alert(1)', '-'], 'url'],
				];
				for (const [args, field] of cases) {
					const r = await ops(args);
					assert.equal(r.json.error.code, 'invalid_field', describeRun(r));
					assert.equal(r.json.error.field, field);
				}
			});
		});

		test('a tenant without credentials is refused, naming what is missing', async () => {
			const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nf-twrest-'));
			try {
				const t = structuredClone(TENANTS);
				delete t.tenant1.twilio.apiSecret;
				delete t.tenant1.twilio.authToken;
				const file = path.join(dir, 'tenants.json');
				fs.writeFileSync(file, JSON.stringify(t));
				const env = { TENANTS_FILE: file, TWILIO_AUTH_TOKEN: undefined, TWILIO_API_SECRET: undefined };
				await untouched(async () => {
					const r = await ops(['account-fetch'], { env });
					assert.equal(r.code, 1, describeRun(r));
					assert.equal(r.json.error.code, 'twilio_missing_credentials');
					assert.match(r.json.error.message, /apiKey \+ apiSecret|accountSid \+ authToken/);
				});
			} finally {
				fs.rmSync(dir, { recursive: true, force: true });
			}
		});
	});

	test('a Twilio error answer becomes a clear error without any secret', async () => {
		// No such path in Twilio's definition: Prism answers 404 (not a validator verdict).
		const r = await ops(['list', 'conversations', '/v1/NoSuchResource', 'things', '1']);
		assert.equal(r.code, 1, describeRun(r));
		assert.equal(r.json.ok, false);
		assert.equal(r.json.error.code, 'twilio_not_found');
		for (const s of Object.values(SECRET_ENV))
			assert.ok(!r.stdout.includes(s) && !r.stderr.includes(s), `secret ${s} leaked`);
	});

	test('no Prism violation in the whole run, no secret in any output or log line', () => {
		for (const [k, p] of Object.entries(prisms))
			assert.deepEqual(p.violations(), [], `${k}: ${JSON.stringify(p.violations())}`);
		const secrets = [...Object.values(SECRET_ENV),
			...[SECRET_ENV.TENANT1_TWILIO_API_SECRET, SECRET_ENV.TWILIO_API_SECRET].map((s) =>
				Buffer.from(`${T1.apiKey}:${s}`).toString('base64'))];
		assert.ok(outputs.length > 20);
		for (const text of outputs)
			for (const s of secrets)
				assert.ok(!text.includes(s), `secret leaked in: ${text.slice(0, 300)}`);
		// The debug log did record the calls (so the check above looked at real lines).
		assert.ok(outputs.some((t) => t.includes('"msg":"twilio call"')));
	});
});
