// The lobstack module (@strongroom/client/lobstack) on the reference set-up: Kubernetes login with
// role lobstack-api and the lobstack-api policy, on a real dev appliance behind a counting proxy.
// Each test imports a fresh instance of the module (its cache and client are module state).
import test from 'node:test';
import assert from 'node:assert/strict';

import net from 'node:net';

import { startDev, must, referenceSetup, startProxy, startFake, sleep, until, api } from './helpers.mjs';

const ROOT = 'ts-lobstack-root';
const KEYS = { anthropic_api_key: 'sk-ant-srv-0001', openai_api_key: 'sk-oai-srv-0002', stripe_secret_key: 'sk_live_srv_0003' };
const ENV_NAMES = ['VAULT_ADDR', 'VAULT_TOKEN', 'VAULT_TOKEN_FILE', 'VAULT_CACERT', 'VAULT_NAMESPACE',
  'STRONGROOM_KUBERNETES_ROLE', 'STRONGROOM_KUBERNETES_TOKEN_PATH', 'STRONGROOM_API_KEYS_CACHE_SECONDS',
  'STRONGROOM_API_KEYS_TIMEOUT_SECONDS',
  'ANTHROPIC_API_KEY', 'OPENAI_API_KEY', 'STRIPE_SECRET_KEY'];

let instance = 0;
// A fresh module instance with `env` as its environment; its console.info and console.warn lines
// go to `logs` (warnings prefixed "WARN ").
async function freshModule(t, env) {
  const saved = Object.fromEntries(ENV_NAMES.map((k) => [k, process.env[k]]));
  for (const k of ENV_NAMES) delete process.env[k];
  Object.assign(process.env, env);
  const logs = [];
  const { info, warn } = console;
  console.info = (...args) => logs.push(args.join(' '));
  console.warn = (...args) => logs.push(`WARN ${args.join(' ')}`);
  t.after(() => {
    console.info = info;
    console.warn = warn;
    for (const k of ENV_NAMES) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });
  const mod = await import(`../dist/examples/lobstack-vault.js?instance=${++instance}`);
  assert.deepEqual(Object.keys(mod).sort(), ['decrypt', 'deleteAgentSecret', 'encrypt', 'getApiKeys', 'setAgentSecret']);
  return { mod, logs };
}

async function setup(t) {
  const d = await startDev(t, ROOT);
  const { jwtFile } = await referenceSetup(t, d, ROOT);
  const proxy = await startProxy(t, d.addr);
  const env = { VAULT_ADDR: proxy.url, STRONGROOM_KUBERNETES_TOKEN_PATH: jwtFile };
  return { d, proxy, env, jwtFile };
}

function assertNoValues(logs, values) {
  const text = logs.join('\n');
  for (const v of values) assert.ok(!text.includes(v), `a log line holds a secret value: ${text}`);
}

test('the five functions with the lobstack-api policy through Kubernetes auth', async (t) => {
  const { d, proxy, env, jwtFile } = await setup(t);
  await must(d, ROOT, 'POST', 'secret/data/lobstack/api-keys', { data: KEYS });
  const { mod, logs } = await freshModule(t, { ...env, ANTHROPIC_API_KEY: 'sk-ant-env-should-not-win' });

  const keys = await mod.getApiKeys();
  assert.deepEqual(keys, { anthropicApiKey: KEYS.anthropic_api_key, openaiApiKey: KEYS.openai_api_key, stripeSecretKey: KEYS.stripe_secret_key });
  assert.deepEqual(proxy.paths(), ['POST auth/kubernetes/login', 'GET secret/data/lobstack/api-keys']);
  assert.ok(logs.some((l) => /anthropicApiKey from strongroom, openaiApiKey from strongroom, stripeSecretKey from strongroom/.test(l)), logs.join('\n'));

  await mod.setAgentSecret('agent-abc123', { ai_api_key: 'sk-ant-agent-1', telegram_token: '123456:ABC-1' });
  await mod.setAgentSecret('agent-abc123', { ai_api_key: 'sk-ant-agent-2', telegram_token: '123456:ABC-2' });
  const stored = await must(d, ROOT, 'GET', 'secret/data/lobstack/agent/agent-abc123');
  assert.deepEqual(stored.data.data, { ai_api_key: 'sk-ant-agent-2', telegram_token: '123456:ABC-2' });
  assert.equal(stored.data.metadata.version, 2);

  const cipher = await mod.encrypt('sensitive-data');
  assert.match(cipher, /^vault:v1:/);
  assert.equal(await mod.decrypt(cipher), 'sensitive-data');
  const unicode = 'ünïcødé ✓ 漢字 🔐';
  assert.equal(await mod.decrypt(await mod.encrypt(unicode)), unicode);
  assert.equal(await mod.decrypt(await mod.encrypt('')), '');

  // deleteAgentSecret: the latest version is soft-deleted; reads of the secret answer 404 ...
  await mod.deleteAgentSecret('agent-abc123');
  assert.equal((await api(d, ROOT, 'GET', 'secret/data/lobstack/agent/agent-abc123')).status, 404);
  // ... but, as the README says, older versions, the metadata and the listing remain, and the
  // deleted version can be undeleted: lobstack-api may not delete metadata.
  const v1 = await must(d, ROOT, 'GET', 'secret/data/lobstack/agent/agent-abc123?version=1');
  assert.equal(v1.data.data.ai_api_key, 'sk-ant-agent-1');
  const meta = await must(d, ROOT, 'GET', 'secret/metadata/lobstack/agent/agent-abc123');
  assert.notEqual(meta.data.versions['2'].deletion_time, '');
  assert.equal(meta.data.versions['2'].destroyed, false);
  const fs = await import('node:fs');
  const apiLogin = await api(d, null, 'POST', 'auth/kubernetes/login',
    { role: 'lobstack-api', jwt: fs.readFileSync(jwtFile, 'utf8').trim() });
  const apiToken = apiLogin.body.auth.client_token;
  assert.deepEqual(apiLogin.body.auth.token_policies, ['default', 'lobstack-api']);
  assert.equal((await api(d, apiToken, 'DELETE', 'secret/metadata/lobstack/agent/agent-abc123')).status, 403);
  assert.equal((await api(d, apiToken, 'POST', 'secret/destroy/lobstack/agent/agent-abc123', { versions: [1] })).status, 403);
  // Deleting an agent without secrets succeeds (nothing to delete).
  await mod.deleteAgentSecret('agent-never-written');

  // Agent ids that would leave secret/data/lobstack/agent/<id>: refused before any request.
  proxy.reset();
  for (const bad of ['', '../api-keys', 'a/b', '.hidden', 'x'.repeat(129), 'a b']) {
    await assert.rejects(mod.setAgentSecret(bad, { k: 'v' }), TypeError, `id ${JSON.stringify(bad)}`);
    await assert.rejects(mod.deleteAgentSecret(bad), TypeError);
  }
  await assert.rejects(mod.setAgentSecret('ok', { k: 1 }), TypeError);
  assert.equal(proxy.count(), 0);
  assertNoValues(logs, [...Object.values(KEYS), 'sk-ant-env-should-not-win', 'sk-ant-agent', 'sensitive-data']);
  assert.ok(!logs.join('\n').includes(apiToken));
});

test('caching: a second call makes no request; an expired cache is served while one refresh runs', async (t) => {
  const { d, proxy, env } = await setup(t);
  await must(d, ROOT, 'POST', 'secret/data/lobstack/api-keys', { data: KEYS });
  const { mod } = await freshModule(t, { ...env, STRONGROOM_API_KEYS_CACHE_SECONDS: '1' });
  const first = await mod.getApiKeys();
  assert.equal(first.openaiApiKey, KEYS.openai_api_key);
  assert.equal(proxy.count(), 2); // login + read
  proxy.reset();
  const second = await mod.getApiKeys();
  assert.deepEqual(second, first);
  assert.equal(proxy.count(), 0, 'the second call made no request');
  // Callers get copies: changing one does not change the cache.
  second.openaiApiKey = 'changed';
  assert.equal((await mod.getApiKeys()).openaiApiKey, KEYS.openai_api_key);
  assert.equal(proxy.count(), 0);

  await must(d, ROOT, 'POST', 'secret/data/lobstack/api-keys', { data: { ...KEYS, openai_api_key: 'sk-oai-rotated' } });
  await sleep(1100);
  proxy.delayMs = 600;
  const started = Date.now();
  const during = await Promise.all([mod.getApiKeys(), mod.getApiKeys(), mod.getApiKeys()]);
  assert.ok(Date.now() - started < 300, 'the expired value came at once');
  assert.ok(during.every((k) => k.openaiApiKey === KEYS.openai_api_key), 'served the cached value during the refresh');
  await sleep(50);
  assert.equal(proxy.count(), 1, 'one refresh for three calls');
  await sleep(900);
  proxy.delayMs = 0;
  proxy.reset();
  assert.equal((await mod.getApiKeys()).openaiApiKey, 'sk-oai-rotated');
  assert.equal(proxy.count(), 0, 'the refreshed value is cached');
});

test('fallback per key to the environment: key absent, server stopped, last known values', async (t) => {
  const { d, env } = await setup(t);
  await must(d, ROOT, 'POST', 'secret/data/lobstack/api-keys', { data: { anthropic_api_key: KEYS.anthropic_api_key } });
  const fallbacks = { OPENAI_API_KEY: 'sk-oai-env-9', STRIPE_SECRET_KEY: 'sk_env_9', ANTHROPIC_API_KEY: 'sk-ant-env-9' };

  // Absent keys come from their variables; a key in neither place is undefined.
  const a = await freshModule(t, { ...env, OPENAI_API_KEY: fallbacks.OPENAI_API_KEY });
  assert.deepEqual(await a.mod.getApiKeys(),
    { anthropicApiKey: KEYS.anthropic_api_key, openaiApiKey: fallbacks.OPENAI_API_KEY, stripeSecretKey: undefined });
  assert.ok(a.logs.some((l) => l.includes('anthropicApiKey from strongroom, openaiApiKey from environment OPENAI_API_KEY, '
    + 'stripeSecretKey not set (neither strongroom nor STRIPE_SECRET_KEY)')), a.logs.join('\n'));
  assertNoValues(a.logs, [KEYS.anthropic_api_key, fallbacks.OPENAI_API_KEY]);

  // A module that had strongroom's values keeps them when strongroom goes away; others from env.
  const b = await freshModule(t, { ...env, ...fallbacks, STRONGROOM_API_KEYS_CACHE_SECONDS: '0' });
  assert.equal((await b.mod.getApiKeys()).anthropicApiKey, KEYS.anthropic_api_key);

  await d.stop();
  // The module that had the values (through the proxy, which now answers 502): cache expired
  // (0 s), the refresh fails, the last values stand.
  await b.mod.getApiKeys(); // starts the refresh, returns the cached value
  await sleep(1500); // the refresh's GET retries end
  const later = await b.mod.getApiKeys();
  assert.equal(later.anthropicApiKey, KEYS.anthropic_api_key);
  assert.equal(later.openaiApiKey, fallbacks.OPENAI_API_KEY);
  assert.ok(b.logs.some((l) => l.includes('anthropicApiKey from strongroom (last known value)')), b.logs.join('\n'));
  assertNoValues(b.logs, [KEYS.anthropic_api_key, ...Object.values(fallbacks)]);

  // The server is stopped: a fresh module (talking to the server's own address: connection
  // refused) gets every key from the environment.
  const c = await freshModule(t, { ...env, ...fallbacks, VAULT_ADDR: d.addr });
  const started = Date.now();
  assert.deepEqual(await c.mod.getApiKeys(),
    { anthropicApiKey: fallbacks.ANTHROPIC_API_KEY, openaiApiKey: fallbacks.OPENAI_API_KEY, stripeSecretKey: fallbacks.STRIPE_SECRET_KEY });
  assert.ok(Date.now() - started < 5000);
  assert.ok(c.logs.some((l) => /strongroom unreachable or refused/.test(l)), c.logs.join('\n'));
  assert.ok(c.logs.some((l) => l.includes('anthropicApiKey from environment ANTHROPIC_API_KEY, openaiApiKey from environment '
    + 'OPENAI_API_KEY, stripeSecretKey from environment STRIPE_SECRET_KEY')), c.logs.join('\n'));
  assertNoValues(c.logs, Object.values(fallbacks));
  // Encryption has no fallback: it fails.
  await assert.rejects(c.mod.encrypt('x'), /ECONNREFUSED|connect/);
});

const FALLBACKS = { ANTHROPIC_API_KEY: 'sk-ant-env-7', OPENAI_API_KEY: 'sk-oai-env-7', STRIPE_SECRET_KEY: 'sk_env_7' };
const FROM_ENV = { anthropicApiKey: FALLBACKS.ANTHROPIC_API_KEY, openaiApiKey: FALLBACKS.OPENAI_API_KEY, stripeSecretKey: FALLBACKS.STRIPE_SECRET_KEY };
const FROM_SERVER = { anthropicApiKey: KEYS.anthropic_api_key, openaiApiKey: KEYS.openai_api_key, stripeSecretKey: KEYS.stripe_secret_key };
const KEYS_PATH = 'secret/data/lobstack/api-keys';

// A stand-in server for the module with VAULT_TOKEN: lookup-self answers (a token without
// expiry), the api-keys read answers `answer()`.
async function keyServer(t) {
  const s = { answer: () => ({ status: 200, body: { data: { data: KEYS, metadata: { version: 1, deletion_time: '', destroyed: false } } } }) };
  s.fake = await startFake(t, (r) => {
    if (r.path === 'auth/token/lookup-self') return { status: 200, body: { data: { ttl: 0, renewable: false, policies: ['root'] } } };
    if (r.path === KEYS_PATH) return s.answer();
    return undefined;
  });
  s.reads = () => s.fake.count(KEYS_PATH);
  return s;
}

// Date.now() moved forward by hand, so the cache's windows pass without waiting.
function clock(t) {
  const realNow = Date.now;
  let skew = 0;
  Date.now = () => realNow() + skew;
  t.after(() => {
    Date.now = realNow;
  });
  return { advance: (ms) => { skew += ms; } };
}

test('only a Vault-shaped 404 means absent; other answers keep the last values for 30 s, at warn', async (t) => {
  const s = await keyServer(t);
  const { mod, logs } = await freshModule(t, { VAULT_ADDR: s.fake.url, VAULT_TOKEN: 'tok', ...FALLBACKS, STRONGROOM_API_KEYS_CACHE_SECONDS: '300' });
  const c = clock(t);
  assert.deepEqual(await mod.getApiKeys(), FROM_SERVER);
  // Refreshes once the cache has expired; returns what getApiKeys gives after that refresh.
  const refreshAfter = async (ms) => {
    const reads = s.reads();
    c.advance(ms);
    await mod.getApiKeys();
    assert.ok(await until(() => s.reads() > reads, 3000), 'a refresh ran');
    await sleep(50);
    return mod.getApiKeys();
  };

  // A proxy's HTML 404: not an answer about the secret.
  s.answer = () => ({ status: 404, contentType: 'text/html', body: '<html><body>404 Not Found</body></html>' });
  assert.deepEqual(await refreshAfter(301_000), FROM_SERVER, 'an HTML 404 keeps the last values');
  assert.ok(logs.some((l) => l.startsWith('WARN ') && /using fallbacks/.test(l)), logs.join('\n'));
  // ... and is kept for the short window only: asked again after 30 s, not after 300 s.
  let reads = s.reads();
  c.advance(31_000);
  await mod.getApiKeys();
  assert.ok(await until(() => s.reads() > reads, 3000), 'asked again 31 s after a failure');
  await sleep(50);

  // A JSON 404 without an errors array is not Vault's either.
  s.answer = () => ({ status: 404, body: { message: 'no route' } });
  assert.deepEqual(await refreshAfter(31_000), FROM_SERVER);

  // A 2xx whose fields are missing or not strings: those keys keep their last values.
  s.answer = () => ({ status: 200, body: { data: { data: { anthropic_api_key: 12345, openai_api_key: 'sk-oai-new' }, metadata: {} } } });
  assert.deepEqual(await refreshAfter(31_000), { ...FROM_SERVER, openaiApiKey: 'sk-oai-new' });
  assert.ok(logs.some((l) => l.startsWith('WARN ') && /anthropic_api_key/.test(l)), logs.join('\n'));
  reads = s.reads();
  c.advance(31_000);
  await mod.getApiKeys();
  assert.ok(await until(() => s.reads() > reads, 3000), 'a malformed answer is kept 30 s only');
  await sleep(50);
  s.answer = () => ({ status: 200, body: { data: 'not an object' } });
  assert.deepEqual(await refreshAfter(31_000), { ...FROM_SERVER, openaiApiKey: 'sk-oai-new' });

  // Vault's own 404 (errors array): the secret is absent, every key from the environment.
  s.answer = () => ({ status: 404, body: { errors: [] } });
  assert.deepEqual(await refreshAfter(31_000), FROM_ENV);
  // The latest version deleted (KV v2's 404 with metadata.deletion_time): absent too.
  s.answer = () => ({ status: 200, body: { data: { data: KEYS, metadata: { version: 2, deletion_time: '', destroyed: false } } } });
  assert.deepEqual(await refreshAfter(301_000), FROM_SERVER);
  s.answer = () => ({ status: 404, body: { data: { data: null, metadata: { version: 2, deletion_time: '2025-01-01T00:00:00Z', destroyed: false } } } });
  assert.deepEqual(await refreshAfter(301_000), FROM_ENV);
  assertNoValues(logs, [...Object.values(KEYS), ...Object.values(FALLBACKS), 'sk-oai-new']);
});

test('getApiKeys has its own deadline: a server that accepts and never answers does not stall it', async (t) => {
  const sockets = new Set();
  const hole = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => {});
  });
  await new Promise((resolve) => hole.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => {
    for (const sock of sockets) sock.destroy();
    hole.close(() => resolve());
  }));
  const addr = `http://127.0.0.1:${hole.address().port}`;
  const { mod, logs } = await freshModule(t, { VAULT_ADDR: addr, VAULT_TOKEN: 'tok', ...FALLBACKS, STRONGROOM_API_KEYS_TIMEOUT_SECONDS: '1' });
  const started = Date.now();
  const keys = await Promise.race([mod.getApiKeys(), sleep(8000).then(() => 'stalled')]);
  const took = Date.now() - started;
  assert.deepEqual(keys, FROM_ENV);
  assert.ok(took >= 900 && took < 2500, `answered after ${took} ms`);
  assert.ok(logs.some((l) => l.startsWith('WARN ') && /no answer within 1000 ms/.test(l)), logs.join('\n'));

  // With values from the server first, a stalled refresh serves them (not the environment).
  const s = await keyServer(t);
  const second = await freshModule(t, { VAULT_ADDR: s.fake.url, VAULT_TOKEN: 'tok', ...FALLBACKS, STRONGROOM_API_KEYS_TIMEOUT_SECONDS: '1' });
  const c = clock(t);
  assert.deepEqual(await second.mod.getApiKeys(), FROM_SERVER);
  s.answer = () => ({ hang: true });
  c.advance(301_000);
  await second.mod.getApiKeys();
  await sleep(1300);
  assert.deepEqual(await second.mod.getApiKeys(), FROM_SERVER);
  assert.ok(second.logs.some((l) => /last known value/.test(l)), second.logs.join('\n'));
});
