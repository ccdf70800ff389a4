// Test helpers: a real dev appliance (tests/e2e/harness.js, STRONGROOM_BIN), the fake Kubernetes
// API server (tests/e2e/fake_kube.js) and a counting proxy in front of the appliance that can
// also answer 5xx, drop connections, delay answers or terminate TLS.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);
const e2e = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../tests/e2e');
const { Daemon, api } = require(path.join(e2e, 'harness.js'));
const { makeKeyPair, signServiceAccountJwt, startFakeKube, makeTlsMaterial } = require(path.join(e2e, 'fake_kube.js'));

export { Daemon, api, makeTlsMaterial };

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Polls `predicate` every 20 ms until it holds; false when `ms` pass first.
export async function until(predicate, ms) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

export function tempDir(t, prefix = 'strongroom-ts-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// A dev appliance for the test (stopped after it), ready: secret/ is mounted.
export async function startDev(t, root) {
  const d = new Daemon();
  t.after(() => d.destroy());
  await d.startDev(root);
  const deadline = Date.now() + 20000;
  for (;;) {
    try {
      const r = await api(d, root, 'GET', 'sys/mounts');
      if (r.status === 200 && r.body.data['secret/']) break;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error('dev appliance never mounted secret/');
    await sleep(50);
  }
  return d;
}

// Root calls that must succeed.
export async function must(d, token, method, p, body) {
  const r = await api(d, token, method, p, body);
  if (r.status >= 300) throw new Error(`${method} ${p}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

export const API_POLICY = `path "secret/data/lobstack/api-keys" { capabilities = ["read"] }
path "secret/data/lobstack/agent/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "transit/encrypt/lobstack" { capabilities = ["update"] }
path "transit/decrypt/lobstack" { capabilities = ["update"] }
`;

// The reference set-up (docs/reference-setup.md) as deploy/kubernetes/init/strongroom-init.sh
// makes it, on appliance `d`: transit key lobstack, policy lobstack-api, Kubernetes auth against
// the fake API server, role lobstack-api. Returns the service-account JWT file of the API pod.
export async function referenceSetup(t, d, root, { ttl = '1h', maxTtl = '4h', dir } = {}) {
  const cluster = makeKeyPair('RS256');
  const kube = await startFakeKube({ publicKey: cluster.publicKey, reviewerToken: 'vault-reviewer' });
  t.after(() => kube.close());
  await must(d, root, 'POST', 'sys/mounts/transit', { type: 'transit' });
  await must(d, root, 'POST', 'transit/keys/lobstack', { type: 'aes256-gcm96' });
  await must(d, root, 'PUT', 'sys/policies/acl/lobstack-api', { policy: API_POLICY });
  await must(d, root, 'POST', 'sys/auth/kubernetes', { type: 'kubernetes' });
  await must(d, root, 'POST', 'auth/kubernetes/config',
    { kubernetes_host: kube.url, kubernetes_ca_cert: kube.caPem, token_reviewer_jwt: 'vault-reviewer' });
  await must(d, root, 'POST', 'auth/kubernetes/role/lobstack-api', {
    bound_service_account_names: 'lobstack-api', bound_service_account_namespaces: 'lobstack-control-plane',
    policies: 'lobstack-api', ttl, max_ttl: maxTtl,
  });
  const jwt = signServiceAccountJwt({
    privateKey: cluster.privateKey, namespace: 'lobstack-control-plane', name: 'lobstack-api', uid: 'uid-api',
  });
  const jwtFile = path.join(dir ?? tempDir(t), 'token');
  fs.writeFileSync(jwtFile, `${jwt}\n`, { mode: 0o600 });
  return { jwtFile, kube };
}

// An HTTP(S) proxy to `target` that records every request (method, path, query, headers).
// failNext(n, status) answers the next n requests itself with `status`; dropNext(n) closes the
// next n connections without an answer; delayMs holds each answer back.
export async function startProxy(t, target, { tls } = {}) {
  const proxy = {
    requests: [],
    fail: [],
    drop: 0,
    delayMs: 0,
    count(pred = () => true) {
      return this.requests.filter(pred).length;
    },
    paths() {
      return this.requests.map((r) => `${r.method} ${r.path}`);
    },
    // Every request with its time (ms after the first), status and any upstream error: for
    // assertion messages.
    history() {
      const t0 = this.requests[0]?.at ?? 0;
      return this.requests.map((r) => `+${r.at - t0}ms ${r.method} ${r.path} ${r.status ?? '-'}${r.error ? ` (${r.error})` : ''}`).join('; ');
    },
    failNext(n, status) {
      for (let i = 0; i < n; i++) this.fail.push(status);
    },
    dropNext(n) {
      this.drop += n;
    },
    reset() {
      this.requests = [];
    },
  };
  const handler = (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url, 'http://x');
      const rec = { at: Date.now(), method: req.method, path: u.pathname.replace(/^\/v1\//, ''), query: u.search, headers: req.headers };
      proxy.requests.push(rec);
      if (proxy.drop > 0) {
        proxy.drop--;
        req.socket.destroy();
        return;
      }
      if (proxy.fail.length > 0) {
        const status = proxy.fail.shift();
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ errors: [`injected ${status}`] }));
        return;
      }
      const fwd = http.request(new URL(req.url, target), { method: req.method, headers: req.headers }, (up) => {
        const body = [];
        up.on('data', (c) => body.push(c));
        rec.status = up.statusCode;
        up.on('end', () => setTimeout(() => {
          res.writeHead(up.statusCode, up.headers);
          res.end(Buffer.concat(body));
        }, proxy.delayMs));
      });
      fwd.on('error', (err) => {
        rec.status = 502;
        rec.error = err.code ?? err.message;
        res.writeHead(502);
        res.end();
      });
      fwd.end(Buffer.concat(chunks));
    });
  };
  const server = tls ? https.createServer({ key: tls.key, cert: tls.cert }, handler) : http.createServer(handler);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => {
    server.closeAllConnections?.();
    server.close(() => resolve());
  }));
  proxy.url = `${tls ? 'https' : 'http'}://127.0.0.1:${server.address().port}`;
  return proxy;
}

// A scripted stand-in for the server (no appliance): `handler(rec)` returns the answer for each
// request as { status, body (object or string), contentType, headers, delayMs }, or { hang: true }
// (never answers), or { destroy: true } (closes the connection after reading the request).
// Every request is recorded (method, path below /v1/, query, headers, body, at).
export async function startFake(t, handler) {
  const fake = {
    requests: [],
    count(pred = () => true) {
      return this.requests.filter(typeof pred === 'string' ? (r) => r.path === pred : pred).length;
    },
  };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const u = new URL(req.url, 'http://x');
      const rec = {
        at: Date.now(), method: req.method, path: u.pathname.replace(/^\/v1\//, ''), query: u.search,
        headers: req.headers, body: Buffer.concat(chunks).toString('utf8'),
      };
      fake.requests.push(rec);
      const out = (await handler(rec)) ?? { status: 404, body: { errors: [] } };
      if (out.hang) return;
      if (out.destroy) {
        req.socket.destroy();
        return;
      }
      if (out.delayMs) await sleep(out.delayMs);
      const body = typeof out.body === 'string' ? out.body : out.body === undefined ? '' : JSON.stringify(out.body);
      res.writeHead(out.status ?? 200, { 'Content-Type': out.contentType ?? 'application/json', ...(out.headers ?? {}) });
      res.end(body);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => {
    server.closeAllConnections?.();
    server.close(() => resolve());
  }));
  fake.url = `http://127.0.0.1:${server.address().port}`;
  return fake;
}

// A port nothing listens on (it did a moment ago).
export async function closedPort() {
  const server = http.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// An auth block as a login answers it.
export function authBlock(token, ttl, renewable = true) {
  return {
    client_token: token, accessor: `acc-${token}`, policies: ['p'], token_policies: ['p'], metadata: null,
    lease_duration: ttl, renewable, entity_id: '', token_type: 'service', orphan: true,
  };
}
