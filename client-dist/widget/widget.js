// widget.js - the Nonflex web-chat widget: a floating chat button and
// panel that any page embeds with one script tag:
//   <script src="https://<tenant host>/widget.js" defer></script>
// It opens a web-chat session (POST /api/webchat/sessions), keeps its id
// and token in sessionStorage (the chat survives reloads within the tab,
// ends with it), posts the visitor's messages (POST /api/webchat/messages)
// and listens to its own stream (/api/events/webchat-<sessionId>?token=,
// an EventSource: it cannot send headers) for bot and agent replies.
//
// It talks to the origin the script was loaded from, so the tenant is the
// one that host resolves to.  The embedding page is another origin: the
// browser lets it through only when the tenant lists that origin in
// webchat.allowedOrigins (fcgi/cors.h); the token travels as a bearer
// header (or ?token= for the stream), never as a cookie.  Plain DOM, no dependencies; styles are set
// through the CSSOM (element.style), which a strict CSP ("style-src
// 'self'") allows, and text is only ever inserted as text, never HTML.
//
// SPDX-License-Identifier: MIT

const KEY = 'nonflex-webchat';
const script = document.currentScript;
const base = script?.src ? new URL(script.src).origin : window.location.origin;

function css(el, styles) {
  Object.assign(el.style, styles);
  return el;
}

function el(tag, styles, text) {
  const e = css(document.createElement(tag), styles ?? {});
  if (text !== undefined)
    e.textContent = text;
  return e;
}

function loadSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) ?? 'null');
    if (s && typeof s.sessionId === 'string' && typeof s.token === 'string' &&
        Date.parse(s.expiresAt) > Date.now())
      return s;
  } catch {
    // A corrupt entry is replaced by a new session.
  }
  return null;
}

async function api(path, opts = {}) {
  const res = await fetch(`${base}${path}`, {
    ...opts,
    headers: { 'Content-Type': 'application/json', ...(opts.headers ?? {}) },
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok)
    throw Object.assign(new Error(body?.error?.message ?? `HTTP ${res.status}`),
      { status: res.status });
  return body;
}

function createChat() {
  let session = loadSession();
  let events = null;
  const seen = new Set();

  const button = el('button', {
    position: 'fixed', right: '20px', bottom: '20px', zIndex: '2147483000',
    width: '56px', height: '56px', borderRadius: '28px', border: 'none',
    background: '#2563eb', color: '#fff', fontSize: '24px', cursor: 'pointer',
    boxShadow: '0 4px 12px rgba(0,0,0,.25)',
  }, '\u{1F4AC}');
  button.setAttribute('aria-label', 'Chat with us');

  const panel = el('div', {
    position: 'fixed', right: '20px', bottom: '88px', zIndex: '2147483000',
    width: '320px', maxWidth: 'calc(100vw - 40px)', height: '420px',
    display: 'none', flexDirection: 'column', background: '#fff',
    borderRadius: '12px', boxShadow: '0 8px 24px rgba(0,0,0,.25)',
    font: '14px/1.4 system-ui, sans-serif', color: '#111', overflow: 'hidden',
  });
  panel.setAttribute('role', 'dialog');
  panel.setAttribute('aria-label', 'Chat');
  const header = el('div', { padding: '12px', background: '#2563eb', color: '#fff',
    fontWeight: '600' }, 'Chat with us');
  const list = el('div', { flex: '1', overflowY: 'auto', padding: '12px' });
  list.setAttribute('aria-live', 'polite');
  const form = el('form', { display: 'flex', borderTop: '1px solid #e5e7eb' });
  const input = el('input', { flex: '1', border: 'none', padding: '12px', font: 'inherit',
    outline: 'none' });
  input.placeholder = 'Type a message';
  input.maxLength = 2000;
  input.setAttribute('aria-label', 'Message');
  const send = el('button', { border: 'none', background: 'none', color: '#2563eb',
    padding: '0 12px', fontWeight: '600', cursor: 'pointer' }, 'Send');
  send.type = 'submit';
  const status = el('div', { padding: '4px 12px', fontSize: '12px', color: '#b91c1c' });
  form.append(input, send);
  panel.append(header, list, status, form);

  function show(msg) {
    if (!msg || typeof msg.body !== 'string' || seen.has(msg.id))
      return;
    seen.add(msg.id);
    const mine = msg.authorKind === 'customer';
    const row = el('div', { display: 'flex', justifyContent: mine ? 'flex-end' : 'flex-start',
      margin: '4px 0' });
    const bubble = el('div', { maxWidth: '80%', padding: '8px 10px', borderRadius: '10px',
      whiteSpace: 'pre-wrap', wordBreak: 'break-word',
      background: mine ? '#2563eb' : '#f3f4f6', color: mine ? '#fff' : '#111' }, msg.body);
    bubble.title = mine ? 'You' : msg.authorKind === 'agent' ? 'Agent' : 'Assistant';
    row.append(bubble);
    list.append(row);
    list.scrollTop = list.scrollHeight;
  }

  // Events carry a message in data.message (or data itself).
  function onEvent(ev) {
    try {
      const e = JSON.parse(ev.data);
      show(e?.data?.message ?? e?.data);
    } catch {
      // Not an event of ours.
    }
  }

  function listen() {
    if (events || !session)
      return;
    const q = new URLSearchParams({ token: session.token });
    events = new EventSource(`${base}/api/events/webchat-${session.sessionId}?${q}`);
    events.onmessage = onEvent;
  }

  async function ensureSession() {
    if (session)
      return session;
    const s = await api('/api/webchat/sessions', { method: 'POST', body: '{}' });
    session = { sessionId: s.sessionId, token: s.token, expiresAt: s.expiresAt };
    sessionStorage.setItem(KEY, JSON.stringify(session));
    return session;
  }

  async function loadHistory() {
    const h = await api('/api/webchat/messages?limit=200',
      { headers: { Authorization: `Bearer ${session.token}` } });
    for (const m of h.messages ?? [])
      show(m);
  }

  async function open() {
    panel.style.display = panel.style.display === 'none' ? 'flex' : 'none';
    if (panel.style.display === 'none' || !session)
      return;
    listen();
    await loadHistory().catch(() => {});
    input.focus();
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = input.value.trim();
    if (!body)
      return;
    status.textContent = '';
    send.disabled = true;
    try {
      const s = await ensureSession();
      listen();
      const clientMessageId = `m${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
      const r = await api('/api/webchat/messages', { method: 'POST',
        headers: { Authorization: `Bearer ${s.token}` },
        body: JSON.stringify({ body, clientMessageId }) });
      input.value = '';
      show(r.message);
    } catch (e) {
      if (e.status === 401) {
        // Expired or unknown session: start over on the next message.
        sessionStorage.removeItem(KEY);
        session = null;
        events?.close();
        events = null;
      }
      status.textContent = e.status === 429 ? 'Slow down a little, please.'
        : 'Message not sent. Please try again.';
    } finally {
      send.disabled = false;
    }
  });
  button.addEventListener('click', () => { open(); });

  document.body.append(panel, button);
  return { open };
}

function start() {
  if (window.NonflexChat?.started)
    return;
  window.NonflexChat = { started: true, ...createChat() };
}

if (document.readyState === 'loading')
  document.addEventListener('DOMContentLoaded', start);
else
  start();
