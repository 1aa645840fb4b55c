// redis.mjs - integration harness: kill the stack's private redis-server and
// start it again with the same program, arguments and directory, for the
// tests of a Redis outage (resilience.test.mjs, outbox.test.mjs).
//
// DESIGN: the stack's Redis listens on <state>/run/redis.sock and its pid
// is in <state>/run/redis.pid (conf/stack).  redis-server rewrites its
// /proc/<pid>/cmdline into a process title, so when the original arguments
// are gone they are rebuilt from the server's own configuration.
//
// SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { waitFor } from './check.mjs';
import { allProcesses } from './stack.mjs';

// Settings redis-server is restarted with (its own CONFIG GET values).
const REDIS_PARAMS = ['port', 'unixsocket', 'unixsocketperm', 'save', 'appendonly', 'dir',
	'dbfilename', 'pidfile', 'logfile', 'daemonize'];

function redisCli(sock, ...args) {
	const r = spawnSync('redis-cli', ['-s', sock, ...args], { encoding: 'utf8', timeout: 5000 });
	assert.equal(r.status, 0, `redis-cli ${args.join(' ')}: ${r.stderr}`);
	return r.stdout;
}

/*
 * {pid, argv, cwd, pidFile, sock} of the stack's redis-server: pid,
 * program and arguments, working directory.
 */
export function redisProcess(stack) {
	const pidFile = path.join(stack.runDir, 'redis.pid');
	const sock = path.join(stack.runDir, 'redis.sock');
	const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
	assert.ok(pid > 0, `no pid in ${pidFile}`);
	const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
	const cwd = fs.readlinkSync(`/proc/${pid}/cwd`);
	let argv = cmdline;
	if (!cmdline.slice(1).some((a) => a.startsWith('--') || a.endsWith('.conf'))) {
		const exe = /^executable:(.*)$/m.exec(redisCli(sock, 'INFO', 'server'));
		// "executable" is argv[0] made absolute against the starting
		// directory, which is wrong for a program found on PATH.
		const prog = exe ? exe[1].trim() : '';
		argv = [fs.existsSync(prog) ? prog : 'redis-server'];
		for (const p of REDIS_PARAMS) {
			const lines = redisCli(sock, 'CONFIG', 'GET', p).split('\n');
			if (lines[0] === p)
				argv.push(`--${p}`, lines[1] ?? '');
		}
	}
	return { pid, argv, cwd, pidFile, sock };
}

/*
 * The launcher stops Redis by its pid file: when the file still names the
 * killed server (it was written by the launcher, not by redis-server),
 * point it at the server just started so `conf/stack stop` ends it.
 */
export function keepPidFile(old) {
	const named = Number(fs.readFileSync(old.pidFile, 'utf8').trim());
	if (named > 0 && fs.existsSync(`/proc/${named}`) && named !== old.pid)
		return;
	for (const p of allProcesses()) {
		if (p.pid !== old.pid && p.comm.startsWith('redis-server') && p.cmd.includes(old.sock)) {
			fs.writeFileSync(old.pidFile, `${p.pid}\n`);
			return;
		}
	}
}

export function waitGone(pid, ms) {
	return waitFor(`pid ${pid} gone`, () => !fs.existsSync(`/proc/${pid}`) ||
		/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')), ms);
}

// SIGKILL the stack's Redis and wait until it is gone; returns what
// restartRedis needs.
export async function killRedis(stack) {
	const redis = redisProcess(stack);
	assert.match(redis.argv[0], /redis-server/);
	assert.ok(fs.existsSync(redis.sock), 'no redis.sock');
	process.kill(redis.pid, 'SIGKILL');
	await waitGone(redis.pid, 5000);
	return redis;
}

/*
 * Start redis (from killRedis) again: same program, same arguments, same
 * directory.  Returns () => the spawn error or null; call keepPidFile
 * once the server answers.
 */
export function restartRedis(stack, redis) {
	const child = spawn(redis.argv[0], redis.argv.slice(1), {
		cwd: redis.cwd, env: stack.env, detached: true, stdio: 'ignore',
	});
	let spawnError = null;
	child.on('error', (e) => {
		spawnError = e;
	});
	child.unref();
	return () => spawnError;
}
