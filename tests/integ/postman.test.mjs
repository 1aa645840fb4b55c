// postman.test.mjs - runs the Postman collection (postman/) with newman
// against a real stack, as an API consumer would, so the collection we
// ship stays true.  newman comes from tests/package.json (scripts/deps).
//
// SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { seedStack } from './lib/session.mjs';
import { SRCDIR, startStack } from './lib/stack.mjs';

const newman = path.join(SRCDIR, 'tests', 'node_modules', '.bin', 'newman');
let stack;

before(async () => {
	stack = await startStack();
	// The collection signs in as the demo agents (admin, sarah).
	seedStack(stack);
});

after(() => {
	if (stack)
		stack.stop();
});

test('the Postman collection passes against the stack', { skip: !fs.existsSync(newman) && 'newman not installed (scripts/deps)' }, () => {
	const report = path.join(stack.stateDir, 'newman.json');
	const r = spawnSync(newman, ['run',
		path.join(SRCDIR, 'postman', 'nonflex.postman_collection.json'),
		'-e', path.join(SRCDIR, 'postman', 'nonflex.postman_environment.json'),
		'--env-var', `baseUrl=http://127.0.0.1:${stack.httpPort}`,
		'--reporters', 'cli,json', '--reporter-json-export', report,
		'--timeout-request', '5000', '--disable-unicode', '--color', 'off'],
	{ encoding: 'utf8', timeout: 60000 });
	assert.equal(r.status, 0, `newman failed:\n${r.stdout}\n${r.stderr}`);
	const run = JSON.parse(fs.readFileSync(report, 'utf8')).run;
	assert.ok(run.stats.assertions.total >= 20, `only ${run.stats.assertions.total} assertions ran`);
	assert.equal(run.stats.assertions.failed, 0);
	assert.equal(run.stats.requests.failed, 0);
});
