// twilio-sign.mjs - webhooks as Twilio sends them: a form body and an
// X-Twilio-Signature made by the official `twilio` package over the
// stack's PUBLIC_URL (conf/stack: https://localhost:<https port>).
//
// SPDX-License-Identifier: MIT

import twilio from 'twilio';

import { request } from './http.mjs';
import { SECRET_ENV } from './stack.mjs';

// x-www-form-urlencoded text of params; an array value repeats the name.
export function formBody(params) {
	const b = new URLSearchParams();
	for (const [k, v] of Object.entries(params))
		for (const one of Array.isArray(v) ? v : [v])
			b.append(k, one);
	return b.toString();
}

// The URL Twilio signs for path p of stack.
export function publicUrl(stack, p) {
	return `https://localhost:${stack.httpsPort}${p}`;
}

// POST params to p, signed with token (tenant1's auth token by default);
// headers are added to the request.
export function signedPost(stack, p, params, { token = SECRET_ENV.TENANT1_TWILIO_AUTH_TOKEN,
	headers = {} } = {}) {
	return request(stack, { method: 'POST', path: p, body: formBody(params), headers: {
		'Content-Type': 'application/x-www-form-urlencoded',
		'X-Twilio-Signature': twilio.getExpectedTwilioSignature(token, publicUrl(stack, p), params),
		...headers } });
}
