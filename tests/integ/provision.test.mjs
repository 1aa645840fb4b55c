// provision.test.mjs - `nonflexctl provision` (issue 4 item 6) against
// Twilio's contract: every request it makes is judged by Prism serving
// Twilio's own OpenAPI definitions, and idempotence is shown on a stateful
// fake (lib/twilio-state.mjs) that forwards each request to Prism first.
//
// DESIGN: provisioning is a CLI that talks to Twilio only, so no Nonflex
// stack is started: nonflexctl runs with the same fake secrets a test stack
// gets (SECRET_ENV), every Twilio base URL on a closed loopback port except
// the two the fake (or Prism) serves, and PUBLIC_URL an https URL that is
// only ever sent to Twilio as data.  The one Prism violation tolerated is
// the documented repeated-Filters quirk (twilio-state.mjs FILTERS_QUIRK):
// Twilio's own libraries send arrays as repeated fields and Twilio reads
// them so; Prism 5.16 refuses them.  Prism does not flag parameters a
// definition does not declare, so undeclaredParams() checks those.
//
// SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { secretsOf } from './lib/check.mjs';
import { prismAvailable, startPrism, verdict } from './lib/prism.mjs';
import { BUILDDIR, OFFLINE_URL, SECRET_ENV, SRCDIR } from './lib/stack.mjs';
import { isFiltersQuirk, startTwilioState, undeclaredParams, unexpectedViolations }
	from './lib/twilio-state.mjs';

const PUBLIC_URL = 'https://cc.nonflex.test';
const DEF_FILE = path.join(SRCDIR, 'infra', 'taskrouter.json');
const TENANTS_FILE = path.join(SRCDIR, 'infra', 'tenants.json');
const TENANT1 = JSON.parse(fs.readFileSync(TENANTS_FILE, 'utf8')).tenant1;
const DEF = JSON.parse(fs.readFileSync(DEF_FILE, 'utf8'));
const SID = (prefix) => new RegExp(`^${prefix}[0-9a-fA-F]{32}$`);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nf-provision-'));

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function ctlEnv(twilio, extra = {}) {
	return {
		PATH: process.env.PATH,
		...SECRET_ENV,
		TENANTS_FILE,
		PUBLIC_URL,
		TWILIO_API_BASE_URL: OFFLINE_URL,
		TWILIO_CONVERSATIONS_BASE_URL: OFFLINE_URL,
		TWILIO_TASKROUTER_BASE_URL: OFFLINE_URL,
		TWILIO_VIDEO_BASE_URL: OFFLINE_URL,
		TWILIO_STUDIO_BASE_URL: OFFLINE_URL,
		...twilio,
		...extra,
	};
}

// Run `nonflexctl provision --tenant tenant1 ARGS`: {status, out, err, lines}
// where lines are the progress lines {kind, name, sid, action}.  Async: the
// fake answers from this process's event loop.
async function provision(env, args = []) {
	const child = spawn(path.join(BUILDDIR, 'nonflexctl'),
		['provision', '--tenant', 'tenant1', ...args],
		{ env, cwd: SRCDIR, stdio: ['ignore', 'pipe', 'pipe'] });
	let out = '';
	let err = '';
	child.stdout.on('data', (c) => { out += c; });
	child.stderr.on('data', (c) => { err += c; });
	const timer = setTimeout(() => child.kill('SIGKILL'), 120000);
	const status = await new Promise((resolve) => child.on('close', (code) => resolve(code)));
	clearTimeout(timer);
	const lines = [];
	for (const l of out.split('\n')) {
		const m = /^(workspace|activity|taskqueue|workflow|webhook)\s{2,}(.+?)\s{2,}(\S+)\s{2,}(.+)$/
			.exec(l);
		if (m)
			lines.push({ kind: m[1], name: m[2], sid: m[3], action: m[4] });
	}
	return { status, out, err, lines, text: `exit ${status}\nstdout:\n${out}\nstderr:\n${err}` };
}

// The resources of infra/taskrouter.json as progress lines would name them.
function expectedNames() {
	return [
		['workspace', 'Nonflex tenant1'],
		...DEF.activities.map((a) => ['activity', a.friendlyName]),
		...DEF.taskQueues.map((q) => ['taskqueue', q.friendlyName]),
		['workflow', DEF.workflow.friendlyName],
		['webhook', 'conversations'],
	];
}

function assertActions(r, want) {
	assert.deepEqual(r.lines.map((l) => [l.kind, l.name]), expectedNames(), r.text);
	for (const l of r.lines) {
		const a = typeof want === 'function' ? want(l) : want;
		assert.equal(l.action, a, `${l.kind} ${l.name}: ${r.text}`);
	}
}

// The JSON snippet printed for the tenants file.
function snippet(r) {
	const i = r.out.indexOf('{');
	assert.ok(i >= 0, r.text);
	return JSON.parse(r.out.slice(i));
}

function assertContract(reqs, text) {
	assert.ok(reqs.length > 0, text);
	assert.deepEqual(unexpectedViolations(reqs), [], text);
	assert.deepEqual(undeclaredParams(reqs), [], text);
}

function assertNoSecret(r, env) {
	for (const s of secretsOf({ env }))
		assert.ok(!r.out.includes(s) && !r.err.includes(s),
			`secret ${s.slice(0, 6)}... in output: ${r.text}`);
}

describe('nonflexctl provision on a stateful Twilio checked by Prism',
	{ skip: !prismAvailable() && 'Prism or the Twilio definitions are not installed' }, () => {
	let fake;
	let env;

	before(async () => {
		// Two items a page, so every list spans several pages.
		fake = await startTwilioState({ pageSize: 2 });
		env = ctlEnv(fake.env);
	});
	after(() => fake?.stop());

	test('PUBLIC_URL must be https (http only on loopback), checked before any request',
		async () => {
		const m = fake.mark();
		for (const [url, why] of [['', /not set/], ['http://cc.nonflex.test', /https/],
			['https://user:pw@cc.nonflex.test', /user info/], ['cc.nonflex.test', /absolute/]]) {
			const r = await provision({ ...env, PUBLIC_URL: url });
			assert.equal(r.status, 1, r.text);
			assert.match(r.err, /PUBLIC_URL/, r.text);
			assert.match(r.err, why, r.text);
		}
		assert.equal(fake.since(m).length, 0);
		const r = await provision({ ...env, PUBLIC_URL: 'http://127.0.0.1:8080' }, ['--dry-run']);
		assert.equal(r.status, 0, r.text);
	});

	test('a dry run on an empty account plans every create and writes nothing', async () => {
		const m = fake.mark();
		const r = await provision(env, ['--dry-run']);
		assert.equal(r.status, 0, r.text);
		assertActions(r, (l) => (l.kind === 'webhook' ? 'would update' : 'would create'));
		assert.match(r.out, /dry run: 11 resource\(s\) would change; nothing was written/);
		assert.deepEqual(fake.writes(m), [], r.text);
		assert.equal(fake.state.workspaces.size, 0);
		assertContract(fake.since(m), r.text);
	});

	test('the first run creates everything, wired to PUBLIC_URL, and prints the SIDs',
		async () => {
		const m = fake.mark();
		const r = await provision(env);
		assert.equal(r.status, 0, r.text);
		assertActions(r, (l) => (l.kind === 'webhook' ? 'updated' : 'created'));
		const prefix = { workspace: 'WS', activity: 'WA', taskqueue: 'WQ', workflow: 'WW',
			webhook: 'IS' };
		for (const l of r.lines)
			assert.match(l.sid, SID(prefix[l.kind]), r.text);

		// What Twilio now holds.
		assert.equal(fake.state.workspaces.size, 1);
		const w = [...fake.state.workspaces.values()][0];
		assert.equal(w.ws.friendly_name, 'Nonflex tenant1');
		assert.equal(w.ws.event_callback_url, `${PUBLIC_URL}/webhooks/twilio/taskrouter/events`);
		assert.equal(w.ws.multi_task_enabled, true);
		assert.deepEqual(w.Activities.map((a) => [a.friendly_name, a.available]),
			DEF.activities.map((a) => [a.friendlyName, a.available]));
		assert.deepEqual(w.TaskQueues.map((q) => [q.friendly_name, q.target_workers,
			q.max_reserved_workers, q.task_order]),
			DEF.taskQueues.map((q) => [q.friendlyName, q.targetWorkers, q.maxReservedWorkers,
				q.taskOrder]));
		assert.equal(w.Workflows.length, 1);
		const wf = w.Workflows[0];
		assert.equal(wf.assignment_callback_url,
			`${PUBLIC_URL}/webhooks/twilio/taskrouter/assignment`);
		assert.equal(wf.task_reservation_timeout, DEF.workflow.taskReservationTimeout);
		// The configuration routes to the queues' SIDs, not their names.
		const sidOf = Object.fromEntries(w.TaskQueues.map((q) => [q.friendly_name, q.sid]));
		const conf = JSON.parse(wf.configuration);
		assert.equal(conf.task_routing.default_filter.queue, sidOf['Support English']);
		assert.deepEqual(conf.task_routing.filters.map((f) => f.targets.map((t) => t.queue)),
			DEF.workflow.configuration.task_routing.filters.map((f) =>
				f.targets.map((t) => sidOf[t.queue])));
		assert.deepEqual(conf.task_routing.filters.map((f) => f.expression),
			DEF.workflow.configuration.task_routing.filters.map((f) => f.expression));
		const hook = fake.state.hooks.get(TENANT1.twilio.conversationsServiceSid);
		assert.equal(hook.post_webhook_url, `${PUBLIC_URL}/webhooks/twilio/conversations`);
		assert.equal(hook.method, 'POST');
		assert.deepEqual(hook.filters, DEF.conversations.filters);

		// The snippet names exactly these SIDs.
		assert.deepEqual(snippet(r), { workspaceSid: w.ws.sid, workflowSid: wf.sid });

		// Creates went once each, with the tenant's API key; every request
		// kept Twilio's contract but for the one Filters quirk, which the
		// Conversations update hits exactly once.
		const reqs = fake.since(m);
		assert.equal(fake.writes(m).length, 11);
		assert.ok(reqs.every((q) => q.user === TENANT1.twilio.apiKey), r.text);
		assertContract(reqs, r.text);
		assert.equal(reqs.filter(isFiltersQuirk).length, 1);
		assertNoSecret(r, env);
	});

	test('a second run changes nothing and makes no POST', async () => {
		const m = fake.mark();
		const r = await provision(env);
		assert.equal(r.status, 0, r.text);
		assertActions(r, 'unchanged');
		assert.match(r.out, /\n0 resource\(s\) created or updated/);
		assert.deepEqual(fake.writes(m), [], r.text);
		assertContract(fake.since(m), r.text);
		assert.equal(fake.state.workspaces.size, 1);
		// Lists were read to their last page (2 items a page).
		assert.ok(fake.since(m).some((q) => q.method === 'GET' &&
			/\/Activities$/.test(q.path) && /Page=2/.test(q.query)), r.text);
	});

	test('a changed queue expression updates exactly that queue', async () => {
		const def = structuredClone(DEF);
		const sales = def.taskQueues.find((q) => q.friendlyName === 'Sales');
		sales.targetWorkers = 'skills HAS "sales" AND level >= 2';
		const file = path.join(tmp, 'changed-queue.json');
		fs.writeFileSync(file, JSON.stringify(def, null, 2));
		const w = [...fake.state.workspaces.values()][0];
		const q = w.TaskQueues.find((x) => x.friendly_name === 'Sales');

		let m = fake.mark();
		let r = await provision(env, ['--file', file, '--dry-run']);
		assert.equal(r.status, 0, r.text);
		assertActions(r, (l) => (l.name === 'Sales' ? 'would update' : 'unchanged'));
		assert.deepEqual(fake.writes(m), [], r.text);

		m = fake.mark();
		r = await provision(env, ['--file', file]);
		assert.equal(r.status, 0, r.text);
		assertActions(r, (l) => (l.name === 'Sales' ? 'updated' : 'unchanged'));
		assert.equal(r.lines.find((l) => l.name === 'Sales').sid, q.sid);
		const writes = fake.writes(m);
		assert.equal(writes.length, 1, r.text);
		assert.equal(writes[0].path, `/v1/Workspaces/${w.ws.sid}/TaskQueues/${q.sid}`);
		assert.equal(new Map(writes[0].form).get('TargetWorkers'), sales.targetWorkers);
		assert.equal(q.target_workers, sales.targetWorkers);
		assertContract(fake.since(m), r.text);

		m = fake.mark();
		r = await provision(env, ['--file', file]);
		assertActions(r, 'unchanged');
		assert.deepEqual(fake.writes(m), []);

		// The original definition puts the old expression back.
		m = fake.mark();
		r = await provision(env);
		assertActions(r, (l) => (l.name === 'Sales' ? 'updated' : 'unchanged'));
		assert.equal(fake.writes(m).length, 1, r.text);
		assert.equal(q.target_workers, DEF.taskQueues.find((x) => x.friendlyName === 'Sales')
			.targetWorkers);
	});

	test('an activity whose availability differs is refused before any write', async () => {
		const w = [...fake.state.workspaces.values()][0];
		const busy = w.Activities.find((a) => a.friendly_name === 'Busy');
		busy.available = true;
		try {
			const m = fake.mark();
			const r = await provision(env);
			assert.equal(r.status, 1, r.text);
			assert.match(r.err, /activity "Busy".*available.*Twilio cannot change/, r.text);
			assert.deepEqual(fake.writes(m), [], r.text);
		} finally {
			busy.available = false;
		}
	});

	test('Twilio refusing the credentials: non-zero exit, Twilio\'s message, no secret', async () => {
		fake.failWith({ status: 401, code: 20003, message: 'Authenticate' });
		try {
			const m = fake.mark();
			const r = await provision(env);
			assert.equal(r.status, 1, r.text);
			assert.match(r.err, /workspace "Nonflex tenant1"/, r.text);
			assert.match(r.err, /20003/, r.text);
			assert.match(r.err, /Authenticate/, r.text);
			assert.deepEqual(fake.writes(m), [], r.text);
			assertNoSecret(r, env);
		} finally {
			fake.failWith(null);
		}
	});

	test('the tenant\'s workspaceSid is used when Twilio knows it', async () => {
		const w = [...fake.state.workspaces.values()][0];
		const tenants = JSON.parse(fs.readFileSync(TENANTS_FILE, 'utf8'));
		tenants.tenant1.twilio.workspaceSid = w.ws.sid;
		const tfile = path.join(tmp, 'tenants.json');
		fs.writeFileSync(tfile, JSON.stringify(tenants));
		const def = structuredClone(DEF);
		def.workspace.friendlyName = 'Nonflex {tenant} (renamed)';
		const file = path.join(tmp, 'renamed.json');
		fs.writeFileSync(file, JSON.stringify(def));

		const m = fake.mark();
		const r = await provision({ ...env, TENANTS_FILE: tfile }, ['--file', file]);
		assert.equal(r.status, 0, r.text);
		assert.deepEqual(r.lines[0], { kind: 'workspace', name: 'Nonflex tenant1 (renamed)',
			sid: w.ws.sid, action: 'updated' });
		assert.ok(r.lines.slice(1).every((l) => l.action === 'unchanged'), r.text);
		assert.equal(fake.state.workspaces.size, 1);
		assert.equal(w.ws.friendly_name, 'Nonflex tenant1 (renamed)');
		assert.deepEqual(fake.writes(m).map((q) => q.path), [`/v1/Workspaces/${w.ws.sid}`]);
		assertContract(fake.since(m), r.text);
	});

	// A real workspace is born with activities of its own: those with our
	// names must be matched, not created a second time.
	test('Twilio\'s default activities of a new workspace are matched, not duplicated',
		async () => {
		const def = structuredClone(DEF);
		def.workspace.friendlyName = 'Nonflex {tenant} with defaults';
		const file = path.join(tmp, 'defaults.json');
		fs.writeFileSync(file, JSON.stringify(def));
		fake.defaultActivities(true);
		try {
			const m = fake.mark();
			const r = await provision(env, ['--file', file]);
			assert.equal(r.status, 0, r.text);
			const acts = r.lines.filter((l) => l.kind === 'activity');
			assert.deepEqual(acts.map((l) => [l.name, l.action]), [['Available', 'unchanged'],
				['Busy', 'created'], ['Break', 'created'], ['Wrap-up', 'created'],
				['Offline', 'unchanged']], r.text);
			const w = [...fake.state.workspaces.values()]
				.find((x) => x.ws.friendly_name === 'Nonflex tenant1 with defaults');
			assert.deepEqual(w.Activities.map((a) => a.friendly_name).sort(),
				['Available', 'Break', 'Busy', 'Offline', 'Unavailable', 'Wrap-up']);
			assertContract(fake.since(m), r.text);
		} finally {
			fake.defaultActivities(false);
		}
	});
});

// Without --errors Prism also reports where Twilio's own example answers
// fail Twilio's schema ("Violation: response..."): that is about Prism's
// answer, not our request, so only the request's own errors count.
function requestVerdict(q) {
	const errors = q.errors.filter((e) => !/^Violation: response\./.test(e));
	return { ...q, errors, ok: q.ok === true || (q.ok === false && errors.length === 0) };
}

describe('nonflexctl provision against plain Prism',
	{ skip: !prismAvailable() && 'Prism or the Twilio definitions are not installed' }, () => {
	let tr;
	let conv;

	before(async () => {
		tr = await startPrism('taskrouter', { errors: false });
		conv = await startPrism('conversations', { errors: false });
	});
	after(async () => {
		await tr?.stop();
		await conv?.stop();
	});

	// Prism answers Twilio's examples, whose names never match ours, so
	// every resource is created; its answers are not checked against the
	// schema here (Twilio's own workspace example fails it: DESIGN.md).  A
	// run ends at the Conversations update, which Prism refuses for the
	// repeated Filters alone.  Two runs: with the tenant's workspaceSid
	// (fetched and updated) and without one (listed and created).
	test('every request provisioning makes validates against Twilio\'s definitions', async () => {
		const tenants = JSON.parse(fs.readFileSync(TENANTS_FILE, 'utf8'));
		delete tenants.tenant1.twilio.workspaceSid;
		const tfile = path.join(tmp, 'no-workspace.json');
		fs.writeFileSync(tfile, JSON.stringify(tenants));
		const runs = [];
		for (const extra of [{}, { TENANTS_FILE: tfile }]) {
			const mt = tr.mark();
			const mc = conv.mark();
			const r = await provision(ctlEnv({ ...tr.env, ...conv.env }, extra));
			await verdict(tr, mt);
			await verdict(conv, mc);
			assert.equal(r.status, 1, r.text);
			assert.match(r.err, /updating webhook "conversations"/, r.text);
			assert.equal(r.lines.filter((l) => l.kind !== 'webhook').length, 10, r.text);
			runs.push(r.text);
		}
		const text = runs.join('\n');
		const reqs = [...tr.requests().map((q) => ({ ...q, product: 'taskrouter' })),
			...conv.requests().map((q) => ({ ...q, product: 'conversations' }))];
		const asRecorded = reqs.map((q) => requestVerdict({ ...q, path: q.path.split('?')[0],
			query: q.path.includes('?') ? q.path.slice(q.path.indexOf('?')) : '', form: [] }));
		assert.deepEqual(unexpectedViolations(asRecorded), [], text);
		const kinds = new Set(asRecorded.map((q) => `${q.method} ${q.path
			.replace(/[A-Z]{2}[0-9a-fA-F]{32}/g, '{sid}')}`));
		for (const k of ['GET /v1/Workspaces', 'POST /v1/Workspaces',
			'GET /v1/Workspaces/{sid}', 'POST /v1/Workspaces/{sid}',
			'GET /v1/Workspaces/{sid}/Activities', 'POST /v1/Workspaces/{sid}/Activities',
			'GET /v1/Workspaces/{sid}/TaskQueues', 'POST /v1/Workspaces/{sid}/TaskQueues',
			'GET /v1/Workspaces/{sid}/Workflows', 'POST /v1/Workspaces/{sid}/Workflows',
			'GET /v1/Services/{sid}/Configuration/Webhooks',
			'POST /v1/Services/{sid}/Configuration/Webhooks'])
			assert.ok(kinds.has(k), `${k} not exercised: ${[...kinds].join(', ')}\n${text}`);
		const refused = asRecorded.filter((q) => q.ok !== true);
		assert.equal(refused.length, 2, text);
		assert.ok(refused.every(isFiltersQuirk), JSON.stringify(refused));
	});
});
