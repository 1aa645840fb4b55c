// App.jsx - placeholder Nonflex page: shows whether the API answers
// (GET /api/health) and which tenant this host resolves to
// (GET /api/tenants/current).  The agent console replaces it later.
// SPDX-License-Identifier: MIT
import { useEffect, useState } from 'react';

// fetchJson: {status, body} for any HTTP answer, {error} when the request
// itself failed; a non-JSON body is kept as null.
async function fetchJson(url, signal) {
  try {
    const res = await fetch(url, { signal, headers: { Accept: 'application/json' } });
    let body = null;
    try {
      body = await res.json();
    } catch {
      body = null;
    }
    return { status: res.status, ok: res.ok, body };
  } catch (err) {
    if (err.name === 'AbortError') return null;
    return { error: 'network error' };
  }
}

function Check({ title, url, result, render }) {
  let state = 'checking...';
  let cls = 'pending';
  if (result && result.error) {
    state = result.error;
    cls = 'bad';
  } else if (result) {
    state = `HTTP ${result.status}`;
    cls = result.ok ? 'good' : 'bad';
  }
  return (
    <section className="check" data-testid={title}>
      <h2>
        {title} <code>{url}</code>
      </h2>
      <p className={cls} data-status={result ? result.status || 'error' : 'pending'}>
        {state}
      </p>
      {result && result.body ? render(result.body) : null}
    </section>
  );
}

function Health({ body }) {
  const parts = Object.entries(body).filter(([, v]) => typeof v !== 'object' || v === null);
  const nested = Object.entries(body).filter(([, v]) => v && typeof v === 'object');
  return (
    <dl>
      {parts.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{String(v)}</dd>
        </div>
      ))}
      {nested.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{JSON.stringify(v)}</dd>
        </div>
      ))}
    </dl>
  );
}

function Tenant({ body }) {
  if (body.error) return <p>{body.error.message || body.error.code}</p>;
  return (
    <dl>
      <div>
        <dt>id</dt>
        <dd>{String(body.id ?? '')}</dd>
      </div>
      <div>
        <dt>name</dt>
        <dd>{String(body.name ?? '')}</dd>
      </div>
    </dl>
  );
}

export default function App() {
  const [health, setHealth] = useState(null);
  const [tenant, setTenant] = useState(null);

  useEffect(() => {
    const ctl = new AbortController();
    fetchJson('/api/health', ctl.signal).then((r) => r && setHealth(r));
    fetchJson('/api/tenants/current', ctl.signal).then((r) => r && setTenant(r));
    return () => ctl.abort();
  }, []);

  return (
    <main>
      <h1>Nonflex</h1>
      <p>Self-hosted contact center. The agent console is on its way; this page checks the service.</p>
      <Check title="Service health" url="/api/health" result={health} render={(b) => <Health body={b} />} />
      <Check title="Tenant" url="/api/tenants/current" result={tenant} render={(b) => <Tenant body={b} />} />
    </main>
  );
}
