// session.mjs - demo agents and sign-in for integration tests: seed a
// stack's store with `nonflexctl seed` and log in as a demo agent (issue
// 3: event subscriptions and most routes need a session).
//
// SPDX-License-Identifier: MIT

import { execFileSync } from 'node:child_process';
import path from 'node:path';

import { request } from './http.mjs';
import { BUILDDIR, SRCDIR } from './stack.mjs';

// Run `nonflexctl seed` against the stack's SQLite store.
export function seedStack(stack) {
	execFileSync(path.join(BUILDDIR, 'nonflexctl'), ['seed'], {
		env: { ...stack.env, STORE_URI: `sqlite://${stack.stateDir}/nonflex.db`,
			TENANTS_FILE: path.join(SRCDIR, 'infra', 'tenants.json') },
		cwd: SRCDIR, stdio: 'pipe',
	});
}

// Log in as a demo agent; resolves the login body ({token, csrfToken, ...}).
export async function loginDemo(stack, tenant, username = 'sarah') {
	const res = await request(stack, { method: 'POST', path: '/api/agents/login',
		headers: { 'X-Tenant-Id': tenant }, body: { username, password: 'password123' } });
	if (res.status !== 200)
		throw new Error(`login ${username}@${tenant}: ${res.status} ${res.text.slice(0, 200)}`);
	return res.json;
}
