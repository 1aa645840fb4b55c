// widget-browser.test.mjs - the web-chat widget embedded on a tenant's own
// website, in a real browser (Debian's headless Chromium driven by
// playwright-core): the page, served by this test from its own loopback
// port, embeds the widget with its one script tag; a visitor types, the
// assistant (the offline responder: no OpenAI key) answers, the visitor
// asks for a human, an agent claims and replies through the API and the
// reply appears in the page live.  The same page on an origin the tenant
// did not list (webchat.allowedOrigins, fcgi/cors.h) cannot start a
// session: the browser refuses the preflight and nothing reaches the store.
//
// Skipped, with the reason, only when Chromium is not installed.  Chromium
// runs headless with --no-sandbox (containers run tests as root) and every
// page it loads is on 127.0.0.1.
//
// SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { assertJson, stopChecked } from './lib/check.mjs';
import { request } from './lib/http.mjs';
import { loginDemo, seedStack } from './lib/session.mjs';
import { SRCDIR, freePort, sleep, startStack } from './lib/stack.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const skip = fs.existsSync(CHROMIUM) ? false
	: `${CHROMIUM} is not installed (Debian package "chromium", scripts/deps)`;

const CLIENT = path.join(SRCDIR, 'client-dist');
const WIDGET_SRC = path.join(CLIENT, 'widget', 'widget.js');
const WIDGET_OUT = path.join(CLIENT, 'dist', 'widget.js');
const WAIT = 20000;

let stack;
let browser;
let agent;
const sites = {};      // shop (allowed), other (not): {server, url}

// nginx serves client-dist/dist; build the widget when it is missing or
// older than its source (the app's own build is scripts/build's job).
function ensureWidget() {
	const stale = !fs.existsSync(WIDGET_OUT) ||
		fs.statSync(WIDGET_OUT).mtimeMs < fs.statSync(WIDGET_SRC).mtimeMs;
	if (!stale)
		return;
	const r = spawnSync('npx', ['--no-install', 'vite', 'build', '-c', 'widget/vite.config.js'],
		{ cwd: CLIENT, encoding: 'utf8', timeout: 120000 });
	assert.equal(r.status, 0, `widget build failed (npm ci in client-dist first):\n${r.stdout}${r.stderr}`);
}

// The tenant's website: one page embedding the widget with the script tag
// the README documents.
function page(stackUrl) {
	return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Acme Retail</title></head>
<body>
<h1>Acme Retail</h1>
<p>Welcome to our shop.</p>
<script src="${stackUrl}/widget.js" defer></script>
</body></html>
`;
}

async function startSite(port, html) {
	const server = http.createServer((req, res) => {
		if (req.url !== '/') {
			res.writeHead(404).end();
			return;
		}
		res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(html);
	});
	await new Promise((resolve, reject) => {
		server.once('error', reject);
		server.listen(port, '127.0.0.1', resolve);
	});
	return { server, url: `http://127.0.0.1:${port}` };
}

before(async () => {
	if (skip)
		return;
	ensureWidget();
	const shopPort = await freePort();
	const otherPort = await freePort();
	stack = await startStack({ env: {
		NONFLEX_LOGIN_IP_MAX: '1000',
		// infra/tenants.json lists "${TENANT1_WEBCHAT_ORIGIN}" for tenant1.
		TENANT1_WEBCHAT_ORIGIN: `http://127.0.0.1:${shopPort}`,
		// No OpenAI key: the tenant's offline responder answers.
		OPENAI_API_KEY: undefined,
		TENANT1_OPENAI_API_KEY: undefined,
	} });
	seedStack(stack);
	agent = await loginDemo(stack, 'tenant1', 'sarah');
	const html = page(`http://127.0.0.1:${stack.httpPort}`);
	sites.shop = await startSite(shopPort, html);
	sites.other = await startSite(otherPort, html);
	const { chromium } = await import('playwright-core');
	browser = await chromium.launch({
		executablePath: CHROMIUM,
		headless: true,
		args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
			'--disable-dev-shm-usage', '--no-proxy-server', '--disable-component-update'],
	});
});

after(async () => {
	await browser?.close();
	for (const s of Object.values(sites))
		s.server.close();
	stopChecked(stack);
});

function staff(method, p, body) {
	return request(stack, { method, path: p, body,
		headers: { 'X-Tenant-Id': 'tenant1', Authorization: `Bearer ${agent.token}` } });
}

// A page of a fresh browser context (its own sessionStorage), with the
// browser console collected for failure messages.
async function visit(url) {
	const ctx = await browser.newContext();
	const p = await ctx.newPage();
	p.console = [];
	p.on('console', (m) => p.console.push(`${m.type()}: ${m.text()}`));
	p.on('pageerror', (e) => p.console.push(`pageerror: ${e.message}`));
	await p.goto(url);
	await p.getByRole('button', { name: 'Chat with us' }).click();
	return p;
}

async function say(p, text) {
	await p.getByLabel('Message').fill(text);
	await p.getByLabel('Message').press('Enter');
}

// Wait for a chat bubble with this text; its title says who wrote it.
async function bubble(p, text) {
	const b = p.getByText(text, { exact: false }).first();
	try {
		await b.waitFor({ timeout: WAIT });
	} catch (e) {
		throw new Error(`"${text}" never appeared in the page.\nconsole:\n${p.console.join('\n')}\n` +
			`page text:\n${await p.locator('body').innerText()}`, { cause: e });
	}
	return b.getAttribute('title');
}

// Lines of nginx's access log (JSON) for one method and path.
async function accessCount(method, uri) {
	await sleep(1500);      // access_log flush=1s
	const log = fs.readFileSync(path.join(stack.stateDir, 'log', 'access.log'), 'utf8');
	return log.split('\n').filter(Boolean).map((l) => JSON.parse(l))
		.filter((e) => e.method === method && e.uri === uri).length;
}

describe('the widget on a tenant\'s website', { skip }, () => {
	test('a visitor chats with the assistant, asks for a human and sees the agent\'s reply live',
		async () => {
			const p = await visit(sites.shop.url);
			await say(p, 'What are your opening hours?');
			assert.equal(await bubble(p, 'What are your opening hours?'), 'You');
			assert.equal(await bubble(p, 'We are open Monday to Friday'), 'Assistant');

			await say(p, 'I want to talk to a human');
			assert.equal(await bubble(p, 'connect you with an agent'), 'Assistant');

			// The agent finds the conversation queued, claims and answers.
			const session = await p.evaluate(() =>
				JSON.parse(sessionStorage.getItem('nonflex-webchat')));
			assert.match(session?.sessionId ?? '', /^[0-9a-f]{32}$/);
			const hist = assertJson(await request(stack, { path: '/api/webchat/messages',
				headers: { 'X-Tenant-Id': 'tenant1', Authorization: `Bearer ${session.token}` } }), 200);
			const convId = hist.messages[0].conversationId;
			const conv = assertJson(await staff('GET', `/api/conversations/${convId}`), 200);
			assert.equal((conv.conversation ?? conv).status, 'queued', JSON.stringify(conv));
			assertJson(await staff('POST', '/api/tasks/claim', { conversationId: convId }), 200);

			// Live: the page is not reloaded; the reply arrives on its stream.
			await p.evaluate(() => { window.notReloaded = true; });
			const text = 'Hi, this is Acme support. How can I help?';
			assertJson(await staff('POST', `/api/conversations/${convId}/messages`, { body: text }), 201);
			assert.equal(await bubble(p, text), 'Agent');
			assert.equal(await p.evaluate(() => window.notReloaded), true);
			assert.equal(await p.getByText('Message not sent').count(), 0);
			await p.context().close();
		});

	test('the same page on an origin the tenant did not list cannot start a session',
		async () => {
			const before = await accessCount('POST', '/api/webchat/sessions');
			const p = await visit(sites.other.url);
			await say(p, 'Hello from somewhere else');
			// The widget's fetch fails (the browser refused the preflight):
			// the visitor is told, and no session was kept.
			await bubble(p, 'Message not sent. Please try again.');
			assert.equal(await p.evaluate(() => sessionStorage.getItem('nonflex-webchat')), null);
			const direct = await p.evaluate(async (u) => {
				try {
					await fetch(u, { method: 'POST', headers: { 'Content-Type': 'application/json' },
						body: '{}' });
					return 'read the answer';
				} catch (e) {
					return e.name;
				}
			}, `http://127.0.0.1:${stack.httpPort}/api/webchat/sessions`);
			assert.equal(direct, 'TypeError');
			assert.ok(p.console.some((l) => /CORS|Access-Control-Allow-Origin/.test(l)),
				`no CORS refusal in the console:\n${p.console.join('\n')}`);
			// Only preflights reached the server: no session was created.
			assert.equal(await accessCount('POST', '/api/webchat/sessions'), before);
			await p.context().close();
		});
});
