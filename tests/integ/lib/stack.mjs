// stack.mjs - integration harness: starts and stops a private Nonflex stack
// through the launcher (conf/stack) on free loopback ports, and finds the
// processes that belong to it.
//
// DESIGN: every test file owns one or more stacks, each with a fresh state
// dir under the system temp dir.  stop() runs `conf/stack stop`, then - only
// as a safety net, after the caller has had the chance to check that the
// launcher left nothing behind - kills by pid whatever still refers to that
// state dir, so a failing launcher never leaves servers running.  Stacks
// are also stopped on process exit and on SIGINT/SIGTERM.  The environment
// carries recognisable fake secrets so tests can prove none of them ever
// reaches a response or a log file (see secrets.mjs).
//
// SPDX-License-Identifier: MIT

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { request } from './http.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

export const SRCDIR = process.env.NONFLEX_SRCDIR || path.resolve(here, '../../..');
export const BUILDDIR = process.env.NONFLEX_BUILDDIR || SRCDIR;
export const LAUNCHER = path.join(SRCDIR, 'conf', 'stack');

// Fake secrets put into every stack's environment; none may ever appear in
// a response or a log line.  infra/tenants.json refers to TENANT1_* by
// ${ENV}; tenant2's are left unset so it falls back to the process-wide
// defaults (TWILIO_AUTH_TOKEN, ...): both paths are covered.
export const SECRET_ENV = {
	TENANT1_API_KEY: 'nfsecret-tenant1-api-key-81fa',
	TENANT1_TWILIO_AUTH_TOKEN: 'nfsecret-tenant1-twilio-auth-62cd',
	TENANT1_TWILIO_API_SECRET: 'nfsecret-tenant1-twilio-secret-17be',
	TENANT1_OPENAI_API_KEY: 'sk-nfsecret-tenant1-openai-90ad',
	TENANT1_CRM_API_KEY: 'nfsecret-tenant1-crm-key-33ef',
	TWILIO_AUTH_TOKEN: 'nfsecret-twilio-auth-token-5b1e0c',
	TWILIO_API_SECRET: 'nfsecret-twilio-api-secret-9c2d7a',
	OPENAI_API_KEY: 'sk-nfsecret-openai-key-3e7f41',
	CRM_API_KEY: 'nfsecret-crm-api-key-4a8b22',
	JWT_SECRET: 'nfsecret-jwt-secret-0123456789abcdef0123456789abcdef',
};

// Inherited variables that would make a run depend on the caller's shell.
const SCRUBBED = ['TENANT2_API_KEY', 'TENANT2_TWILIO_AUTH_TOKEN', 'TENANT2_TWILIO_API_SECRET',
	'TENANT2_OPENAI_API_KEY', 'TENANT2_CRM_API_KEY', 'REDIS_URL', 'MONGO_URI', 'MONGO_URL', 'STORE_URI', 'TENANTS_FILE',
	'DEFAULT_TENANT', 'PORT', 'NONFLEX_STATE_DIR', 'NONFLEX_HTTP_PORT',
	'NONFLEX_HTTPS_PORT', 'NONFLEX_WORKERS', 'NONFLEX_DEV_ROUTES', 'NONFLEX_BENCH',
	'PUBLIC_URL', 'CLIENT_URL', 'TWILIO_ACCOUNT_SID', 'TWILIO_API_KEY', 'CRM_BASE_URL',
	'NONFLEX_DEV_SKIP_TWILIO_SIGNATURE'];

// Remote services default to a closed loopback port, so a test stack never
// sends traffic off the machine; a test that needs one points its variable
// at a local mock (Prism, the OpenAI fake) through opts.env.  CRM_BASE_URL
// stays unset (scrubbed): no CRM configured unless a test starts one.
export const OFFLINE_URL = 'http://127.0.0.1:9';
const OFFLINE_ENV = {
	TWILIO_API_BASE_URL: OFFLINE_URL,
	TWILIO_CONVERSATIONS_BASE_URL: OFFLINE_URL,
	TWILIO_TASKROUTER_BASE_URL: OFFLINE_URL,
	TWILIO_VIDEO_BASE_URL: OFFLINE_URL,
	TWILIO_STUDIO_BASE_URL: OFFLINE_URL,
	OPENAI_BASE_URL: OFFLINE_URL,
};

const live = new Set();
const usedPorts = new Set();

// A loopback port nobody listens on right now (and not handed out before in
// this process, so two stacks started back to back never collide).
export async function freePort() {
	for (;;) {
		const port = await new Promise((resolve, reject) => {
			const srv = net.createServer();
			srv.once('error', reject);
			srv.listen(0, '127.0.0.1', () => {
				const p = srv.address().port;
				srv.close(() => resolve(p));
			});
		});
		if (!usedPorts.has(port)) {
			usedPorts.add(port);
			return port;
		}
	}
}

function launcherEnv(stack) {
	const env = { ...process.env };
	for (const k of SCRUBBED)
		delete env[k];
	Object.assign(env, SECRET_ENV, {
		NONFLEX_HTTP_PORT: String(stack.httpPort),
		NONFLEX_HTTPS_PORT: String(stack.httpsPort),
		NONFLEX_STATE_DIR: stack.stateDir,
		NONFLEX_WORKERS: String(stack.workers),
		NONFLEX_BUILDDIR: BUILDDIR,
		NONFLEX_SRCDIR: SRCDIR,
		NONFLEX_DEV_ROUTES: '1',
	}, OFFLINE_ENV, stack.extraEnv);
	for (const [k, v] of Object.entries(env))
		if (v === undefined || v === null)
			delete env[k];
	return env;
}

// Run `conf/stack <cmd>` synchronously (usable from exit handlers).
function runLauncher(stack, cmd, timeoutMs = 90000) {
	const r = spawnSync(LAUNCHER, [cmd], {
		env: stack.env, encoding: 'utf8', timeout: timeoutMs,
		stdio: ['ignore', 'pipe', 'pipe'],
	});
	return {
		status: r.status, signal: r.signal, error: r.error,
		output: `${r.stdout ?? ''}${r.stderr ?? ''}`,
	};
}

// Last lines of every log file, for failure messages.
export function logTail(stack, lines = 15) {
	const dir = path.join(stack.stateDir, 'log');
	let out = '';
	let names = [];
	try {
		names = fs.readdirSync(dir);
	} catch {
		return '(no log dir)';
	}
	for (const n of names) {
		let text = '';
		try {
			text = fs.readFileSync(path.join(dir, n), 'utf8');
		} catch {
			continue;
		}
		out += `--- ${n}\n${text.split('\n').slice(-lines).join('\n')}\n`;
	}
	return out;
}

async function waitReady(stack, timeoutMs) {
	const deadline = Date.now() + timeoutMs;
	let last = 'no answer';
	while (Date.now() < deadline) {
		try {
			const r = await request(stack, { path: '/api/health', timeout: 2000, record: false });
			if (r.status === 200)
				return;
			last = `status ${r.status}: ${r.text.slice(0, 300)}`;
		} catch (e) {
			last = e.message;
		}
		await sleep(200);
	}
	throw new Error(`stack not healthy after ${timeoutMs} ms (${last})\n${logTail(stack)}`);
}

export function sleep(ms) {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

/*
 * Start a stack.  opts.env adds or overrides environment variables (a value
 * of undefined removes one, e.g. NONFLEX_DEV_ROUTES; or a function of the
 * state dir returning them); opts.workers (default
 * 2); opts.setup(stateDir) runs before the launcher (to write files into the
 * state dir).  Resolves when /api/health answers 200, unless
 * opts.waitHealthy === false.
 */
export async function startStack(opts = {}) {
	const stack = {
		stateDir: fs.mkdtempSync(path.join(os.tmpdir(), 'nf-integ-')),
		httpPort: await freePort(),
		httpsPort: await freePort(),
		workers: opts.workers ?? 2,
		extraEnv: opts.env ?? {},
		bodies: [],
		stopped: false,
	};
	if (opts.setup)
		await opts.setup(stack.stateDir);
	if (typeof opts.env === 'function')
		stack.extraEnv = opts.env(stack.stateDir);
	stack.env = launcherEnv(stack);
	stack.stop = () => stopStack(stack);
	stack.status = () => runLauncher(stack, 'status', 30000);
	stack.logDir = path.join(stack.stateDir, 'log');
	stack.runDir = path.join(stack.stateDir, 'run');
	live.add(stack);

	if (!fs.existsSync(LAUNCHER)) {
		stopStack(stack);
		throw new Error(`launcher ${LAUNCHER} does not exist`);
	}
	const r = runLauncher(stack, 'start');
	if (r.status !== 0) {
		const detail = `conf/stack start failed (exit ${r.status}, signal ${r.signal}, ` +
			`${r.error ? r.error.message : 'no spawn error'}):\n${r.output}\n${logTail(stack)}`;
		stopStack(stack);
		throw new Error(detail);
	}
	stack.startOutput = r.output;
	if (opts.waitHealthy !== false) {
		try {
			await waitReady(stack, opts.readyTimeout ?? 20000);
		} catch (e) {
			stopStack(stack);
			throw e;
		}
	}
	return stack;
}

/*
 * Stop a stack: `conf/stack stop`, then kill (SIGKILL, by pid) anything
 * still referring to the state dir.  Returns {launcher, leftovers} where
 * leftovers lists the processes the launcher left behind (each
 * {pid, cmd}).  Safe to call twice.  The state dir is kept when
 * NONFLEX_KEEP_STATE is set (for post-mortems), removed otherwise.
 */
export function stopStack(stack) {
	if (stack.stopped)
		return stack.stopResult;
	stack.stopped = true;
	live.delete(stack);
	let launcher = { status: null, output: 'launcher not run' };
	if (fs.existsSync(LAUNCHER) && stack.env)
		launcher = runLauncher(stack, 'stop', 60000);
	const leftovers = stackProcesses(stack).map((p) => ({ pid: p.pid, cmd: p.cmd }));
	for (const p of leftovers) {
		try {
			process.kill(p.pid, 'SIGKILL');
		} catch {
			// already gone
		}
	}
	stack.stopResult = { launcher, leftovers };
	if (!process.env.NONFLEX_KEEP_STATE && leftovers.length === 0)
		fs.rmSync(stack.stateDir, { recursive: true, force: true });
	return stack.stopResult;
}

function readProc(pid, file) {
	try {
		return fs.readFileSync(`/proc/${pid}/${file}`, 'utf8');
	} catch {
		return '';
	}
}

// Does the process refer to dir in its command line, environment, working
// directory or open files?
function refersTo(pid, dir) {
	if (readProc(pid, 'cmdline').includes(dir) || readProc(pid, 'environ').includes(dir))
		return true;
	try {
		if (fs.readlinkSync(`/proc/${pid}/cwd`).startsWith(dir))
			return true;
		for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
			let target = '';
			try {
				target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
			} catch {
				continue;
			}
			if (target.startsWith(dir))
				return true;
		}
	} catch {
		// process gone or not ours to inspect
	}
	return false;
}

// Every process of this machine: [{pid, ppid, comm, cmd}].
export function allProcesses() {
	const out = [];
	for (const name of fs.readdirSync('/proc')) {
		if (!/^\d+$/.test(name))
			continue;
		const stat = readProc(name, 'stat');
		const m = /^\d+ \((.*)\) \S+ (\d+)/s.exec(stat);
		if (!m)
			continue;
		out.push({
			pid: Number(name), ppid: Number(m[2]), comm: m[1],
			cmd: readProc(name, 'cmdline').split('\0').join(' ').trim(),
		});
	}
	return out;
}

/*
 * Processes belonging to the stack: those referring to its state dir, and
 * their descendants (multiwatch's children may show no path of their own).
 * Never includes this test process or its ancestors.
 */
export function stackProcesses(stack) {
	const procs = allProcesses();
	const mine = new Set();
	for (let p = process.pid; p > 1;) {
		mine.add(p);
		const pp = procs.find((x) => x.pid === p);
		p = pp ? pp.ppid : 0;
	}
	const hit = new Set();
	for (const p of procs)
		if (!mine.has(p.pid) && p.comm !== 'node' && refersTo(p.pid, stack.stateDir))
			hit.add(p.pid);
	for (let grew = true; grew;) {
		grew = false;
		for (const p of procs)
			if (!hit.has(p.pid) && hit.has(p.ppid) && !mine.has(p.pid)) {
				hit.add(p.pid);
				grew = true;
			}
	}
	return procs.filter((p) => hit.has(p.pid));
}

// Bytes the workers spooled (fcgi/spool.h) that the drainer has not
// handled yet: each w-*.log past its saved position (.pos).
export function spoolPending(stack) {
	const dir = path.join(stack.stateDir, 'spool');
	let names;
	try {
		names = fs.readdirSync(dir).filter((f) => /^w-.*\.log$/.test(f));
	} catch {
		return 0;       // no spool: messages are recorded at once
	}
	let n = 0;
	for (const f of names) {
		let size;
		let pos = 0;
		try {
			size = fs.statSync(path.join(dir, f)).size;
		} catch {
			continue;       // drained and removed meanwhile
		}
		try {
			pos = Number(fs.readFileSync(path.join(dir, `${f}.pos`), 'utf8')) || 0;
		} catch {
			// not started on yet
		}
		n += Math.max(0, size - pos);
	}
	return n;
}

// Wait until the drainer has recorded everything spooled so far.
export async function spoolDrained(stack, ms = 10000) {
	const deadline = Date.now() + ms;
	let left;
	while ((left = spoolPending(stack)) > 0) {
		if (Date.now() > deadline)
			throw new Error(`the spool still holds ${left} bytes after ${ms} ms`);
		await sleep(5);
	}
}

// The stack's nonflex-fcgi worker processes (by process name: multiwatch's
// own command line names the worker program too).
export function workerPids(stack) {
	return stackProcesses(stack).filter((p) => p.comm === 'nonflex-fcgi').map((p) => p.pid);
}

function stopAll() {
	for (const s of [...live])
		stopStack(s);
}

process.on('exit', stopAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
	process.on(sig, () => {
		stopAll();
		process.exit(128 + os.constants.signals[sig]);
	});
}
