// webhook-requests.mjs - the signed requests of tests/bench/run's
// conversations/webhook row: N distinct onMessageAdded events, one line
// each ("<X-Twilio-Signature>\t<form body>"), which webhook.lua sends in
// turn.  wrk's Lua cannot compute HMAC-SHA1, and every request must be a
// new message (a repeated MessageSid is a cheap duplicate), so they are
// signed here, once: Twilio's scheme (HMAC-SHA1 over the URL and the
// sorted parameters, base64) computed with node:crypto, and every 1000th
// request checked against the official `twilio` package, which the
// integration tests sign with (it is several times slower per request).
//
//   node webhook-requests.mjs OUT N HTTPS_PORT
//   (BENCH_TWILIO_AUTH_TOKEN in the environment: never on a command line)
//
// Ten messages share a conversation (so most requests append to an
// existing one, as a chat does, and a tenth open a new one); the
// MessageSids and ConversationSids carry a per-run prefix so a second run
// against the same store never collides with the first.
//
// SPDX-License-Identifier: MIT

import crypto from 'node:crypto';
import fs from 'node:fs';

import twilio from 'twilio';

const [out, nArg, httpsPort] = process.argv.slice(2);
const token = process.env.BENCH_TWILIO_AUTH_TOKEN;
const n = Number(nArg);
if (!out || !Number.isInteger(n) || n < 1 || !/^\d+$/.test(httpsPort ?? '') || !token) {
	console.error('usage: BENCH_TWILIO_AUTH_TOKEN=... node webhook-requests.mjs OUT N HTTPS_PORT');
	process.exit(2);
}

const HOOK = '/webhooks/twilio/conversations';
const url = `https://localhost:${httpsPort}${HOOK}`;
const run = (Date.now() % 0x10000000).toString(16).padStart(7, '0');
const hex = (i, w) => i.toString(16).padStart(w, '0');

// X-Twilio-Signature of a form POST to url.
function sign(params) {
	const data = Object.keys(params).sort().reduce((acc, k) => acc + k + params[k], url);
	return crypto.createHmac('sha1', token).update(data).digest('base64');
}

const fd = fs.openSync(out, 'w', 0o600);
let buf = [];
for (let i = 0; i < n; i++) {
	const conv = Math.floor(i / 10);
	const params = {
		AccountSid: 'AC00000000000000000000000000000001',
		ChatServiceSid: 'IS00000000000000000000000000000001',
		EventType: 'onMessageAdded',
		ConversationSid: `CHb${run}${hex(conv, 24)}`,
		MessageSid: `IMb${run}${hex(i, 24)}`,
		Author: `whatsapp:+1666${String(conv % 10000000).padStart(7, '0')}`,
		Body: `bench message ${i}: hello, where is my order?`,
		Source: 'WHATSAPP',
		Index: String(i % 10),
	};
	const sig = sign(params);
	if (i % 1000 === 0 && sig !== twilio.getExpectedTwilioSignature(token, url, params)) {
		console.error('webhook-requests.mjs: signature differs from the twilio package\'s');
		process.exit(1);
	}
	buf.push(`${sig}\t${new URLSearchParams(params).toString()}\n`);
	if (buf.length === 10000) {
		fs.writeSync(fd, buf.join(''));
		buf = [];
	}
}
fs.writeSync(fd, buf.join(''));
fs.closeSync(fd);
