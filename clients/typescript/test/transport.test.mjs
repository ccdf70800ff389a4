// StrongroomClient against scripted stand-in servers (no appliance): redirects, retries, request
// errors, the CA bundle, credential files, error messages, and the races between renewal, logins,
// setToken() and revokeSelf().
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { StrongroomClient, VaultError, ConnectionError } from '../dist/src/index.js';
import { startFake, closedPort, authBlock, tempDir, until, sleep, makeTlsMaterial } from './helpers.mjs';

const ok = (data = { ok: true }) => ({ status: 200, body: { data } });

test('a 307/308 is followed on the same origin only; the token and body never go elsewhere', async (t) => {
  const elsewhere = await startFake(t, () => ok({ stolen: true }));
  const origin = await startFake(t, (r) => {
    if (r.path === 'secret/data/away') return { status: 307, headers: { Location: `${elsewhere.url}/v1/secret/data/away` } };
    if (r.path === 'secret/data/here') return { status: 308, headers: { Location: '/v1/secret/data/there' } };
    if (r.path === 'secret/data/there') return ok({ here: 'yes' });
    return undefined;
  });
  const c = new StrongroomClient({ address: origin.url, token: 'tok-1', env: {}, maxRetries: 0 });
  await assert.rejects(c.write('secret/data/away', { data: { s: 'secret-value' } }),
    (err) => err instanceof ConnectionError && /another origin/.test(err.message) && !err.message.includes('tok-1'));
  await assert.rejects(c.read('secret/data/away'), (err) => err instanceof ConnectionError && /another origin/.test(err.message));
  assert.equal(elsewhere.count(), 0, 'nothing was sent to the other origin');
  // The same host on another port is another origin too (elsewhere is 127.0.0.1 as well).
  assert.equal(new URL(elsewhere.url).hostname, new URL(origin.url).hostname);
  // A redirect on the same origin is followed, with the token.
  assert.deepEqual((await c.read('secret/data/here')).data, { here: 'yes' });
  assert.equal(origin.requests.at(-1).headers['x-vault-token'], 'tok-1');
});

test('retries: GET only after connect-phase errors and 502/503/504; not 500, not after the request went out', async (t) => {
  let script = [];
  const fake = await startFake(t, () => script.shift() ?? ok());
  const lines = [];
  const c = new StrongroomClient({
    address: fake.url, token: 'tok', env: {}, retryBaseMs: 5, timeoutMs: 400,
    logger: (level, m) => lines.push(`${level} ${m}`),
  });
  for (const status of [502, 503, 504]) {
    fake.requests = [];
    script = [{ status, body: { errors: ['busy'] } }];
    assert.deepEqual((await c.read('secret/data/x')).data, { ok: true }, `after ${status}`);
    assert.equal(fake.count(), 2, `${status} retried once`);
  }
  // 500 is an answer (the server failed doing it), not retried.
  fake.requests = [];
  script = [{ status: 500, body: { errors: ['internal error'] } }];
  await assert.rejects(c.read('secret/data/x'), (err) => err instanceof VaultError && err.status === 500);
  assert.equal(fake.count(), 1, '500 not retried');
  // The connection dropped after the request was read: not retried (the server may have acted).
  fake.requests = [];
  script = [{ destroy: true }];
  await assert.rejects(c.read('secret/data/x'), (err) => err instanceof ConnectionError);
  assert.equal(fake.count(), 1, 'a reset after sending is not retried');
  // No answer within timeoutMs after the request was sent: not retried.
  fake.requests = [];
  script = [{ hang: true }];
  const started = Date.now();
  await assert.rejects(c.read('secret/data/x'), (err) => err instanceof ConnectionError && err.code === 'ETIMEDOUT');
  assert.ok(Date.now() - started < 1500, `gave up after ${Date.now() - started} ms`);
  assert.equal(fake.count(), 1, 'a timeout after sending is not retried');
  // Connection refused (nothing was sent): retried maxRetries (3) times.
  lines.length = 0;
  const refused = new StrongroomClient({
    address: `http://127.0.0.1:${await closedPort()}`, token: 'tok', env: {}, retryBaseMs: 5,
    logger: (level, m) => lines.push(`${level} ${m}`),
  });
  await assert.rejects(refused.read('secret/data/x'), (err) => err instanceof ConnectionError && err.code === 'ECONNREFUSED');
  assert.equal(lines.filter((l) => /retrying/.test(l)).length, 3, lines.join('\n'));
});

test('a request node refuses to send (a header with a newline) fails at once: no retry, no timer left', async (t) => {
  const fake = await startFake(t, () => ok());
  const lines = [];
  const c = new StrongroomClient({
    address: fake.url, token: 'tok', namespace: 'team\nX-Injected: 1', env: {}, retryBaseMs: 200, timeoutMs: 60_000,
    logger: (level, m) => lines.push(`${level} ${m}`),
  });
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const before = timers();
  const started = Date.now();
  await assert.rejects(c.read('secret/data/x'), (err) => !(err instanceof VaultError) && /header/i.test(err.message));
  assert.ok(Date.now() - started < 150, 'no back-off');
  assert.equal(lines.filter((l) => /retrying/.test(l)).length, 0, lines.join('\n'));
  assert.equal(timers(), before, 'no timer left behind');
  assert.equal(fake.count(), 0);
});

test('VAULT_CACERT: an empty, unreadable or unparseable bundle is an error, never the system roots', async (t) => {
  const dir = tempDir(t);
  const write = (name, text) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text);
    return p;
  };
  const cases = {
    empty: write('empty.pem', ''),
    blank: write('blank.pem', '\n  \n'),
    garbage: write('garbage.pem', 'not a certificate at all\n'),
    badBase64: write('bad.pem', '-----BEGIN CERTIFICATE-----\nAAAA!!!!not-der\n-----END CERTIFICATE-----\n'),
    directory: dir,
  };
  for (const [what, file] of Object.entries(cases)) {
    assert.throws(() => new StrongroomClient({ env: { VAULT_ADDR: 'https://127.0.0.1:1', VAULT_CACERT: file } }),
      /CA bundle/, what);
  }
  assert.throws(() => new StrongroomClient({ address: 'https://127.0.0.1:1', caCert: '' }), /CA bundle/);
  assert.throws(() => new StrongroomClient({ address: 'https://127.0.0.1:1', caCert: 'junk' }), /CA bundle/);
  // A real bundle is accepted; an unset (or empty) variable means the system roots, as in Vault.
  const tls = makeTlsMaterial(dir, ['IP:127.0.0.1'], 'strongroom');
  new StrongroomClient({ env: { VAULT_ADDR: 'https://127.0.0.1:1', VAULT_CACERT: tls.caPath } });
  new StrongroomClient({ env: { VAULT_ADDR: 'https://127.0.0.1:1', VAULT_CACERT: '' } });
});

test('credential files: regular files of at most 64 KiB only, read through one handle', async (t) => {
  const dir = tempDir(t);
  const fake = await startFake(t, () => ({ status: 200, body: { auth: authBlock('t1', 0, false) } }));
  const login = (tokenPath) => new StrongroomClient({ address: fake.url, env: {} })
    .login({ type: 'kubernetes', role: 'r', tokenPath });
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const started = Date.now();
  await assert.rejects(login(fifo), /not a regular file/);
  assert.ok(Date.now() - started < 1000, 'a FIFO without a writer does not block');
  await assert.rejects(login(dir), /not a regular file/);
  const big = path.join(dir, 'big');
  fs.writeFileSync(big, 'x'.repeat(64 * 1024 + 1));
  await assert.rejects(login(big), /larger than 65536 bytes/);
  const empty = path.join(dir, 'empty');
  fs.writeFileSync(empty, ' \n');
  await assert.rejects(login(empty), /is empty/);
  const good = path.join(dir, 'jwt');
  fs.writeFileSync(good, 'a.b.c\n');
  const link = path.join(dir, 'link');
  fs.symlinkSync(good, link); // the kubelet's projected token is a symlink
  assert.equal((await login(link)).client_token, 't1');
  assert.equal(JSON.parse(fake.requests.at(-1).body).jwt, 'a.b.c');
  assert.equal(fake.count(), 1, 'only the good file led to a request');
});

test('a raw (non-JSON) error body in a message is capped and has no control characters', async (t) => {
  const page = `<html>\x1b[31mred\x07\r\nfake-log-line\u2028${'A'.repeat(10_000)}</html>`;
  const fake = await startFake(t, () => ({ status: 404, contentType: 'text/html', body: page }));
  const c = new StrongroomClient({ address: fake.url, token: 'tok', env: {}, maxRetries: 0 });
  const err = await c.read('secret/data/x').catch((e) => e);
  assert.ok(err instanceof VaultError && err.status === 404);
  const raw = err.message.split('Raw Message:\n\n')[1];
  assert.ok(raw !== undefined, err.message);
  assert.doesNotMatch(raw, /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/);
  assert.match(raw, /^<html>\\x1b\[31mred\\x07\\r\\nfake-log-line\\u2028A+/);
  assert.ok(err.message.length < 1200, `message of ${err.message.length} characters`);
});

// A server with AppRole login, renew-self, revoke-self and one secret, its answers scripted.
async function tokenServer(t, { ttl }) {
  const s = { n: 0, loginDelayMs: 0, loginStatus: 200, renew: () => ({ status: 200 }), times: [] };
  s.fake = await startFake(t, async (r) => {
    if (r.path === 'auth/approle/login') {
      s.times.push(['login', Date.now()]);
      if (s.loginStatus !== 200) return { status: s.loginStatus, body: { errors: ['login failed'] } };
      return { status: 200, delayMs: s.loginDelayMs, body: { auth: authBlock(`t${++s.n}`, ttl) } };
    }
    if (r.path === 'auth/token/renew-self') {
      s.times.push(['renew', Date.now()]);
      const out = await s.renew(r);
      return out.status === 200 ? { status: 200, body: { auth: authBlock(r.headers['x-vault-token'], ttl) } } : out;
    }
    if (r.path === 'auth/token/revoke-self') return { status: 204 };
    if (r.path === 'secret/data/x') return ok();
    return undefined;
  });
  s.client = new StrongroomClient({ address: s.fake.url, env: {}, auth: { type: 'approle', roleId: 'r', secretId: 's' } });
  t.after(() => s.client.close());
  return s;
}

test('a renewal that fails after the token was replaced does not log in again', async (t) => {
  const s = await tokenServer(t, { ttl: 1 });
  s.renew = async () => {
    await sleep(300);
    return { status: 403, body: { errors: ['permission denied'] } };
  };
  await s.client.login();
  assert.ok(await until(() => s.fake.count('auth/token/renew-self') === 1, 2000), 'renewal started');
  s.client.setToken('manual');
  await sleep(600);
  assert.equal(s.fake.count('auth/approle/login'), 1, 'no login after the renewal failed');
  assert.equal(s.client.token, 'manual');
});

test('setToken() and revokeSelf() during a login are not overwritten by its result', async (t) => {
  const s = await tokenServer(t, { ttl: 3600 });
  s.loginDelayMs = 300;
  const first = s.client.login();
  s.client.setToken('manual');
  assert.equal((await first).client_token, 't1');
  assert.equal(s.client.token, 'manual', 'setToken() wins over the login that was in flight');
  await s.client.read('secret/data/x');
  assert.equal(s.fake.requests.at(-1).headers['x-vault-token'], 'manual');

  s.loginDelayMs = 0;
  await s.client.login();
  assert.equal(s.client.token, 't2');
  s.loginDelayMs = 300;
  const second = s.client.login();
  await s.client.revokeSelf();
  await second;
  assert.equal(s.client.token, undefined, 'revokeSelf() wins over the login that was in flight');
});

test('after failures the retries back off, but never past the token\'s planned end', async (t) => {
  // ttl 6 s: renewal due at 4 s; it and the logins fail (500). Back-off alone would try at 4 s,
  // 5 s, then 7 s, after the token's end at 6 s; bounded by the end it tries again before 6 s.
  const s = await tokenServer(t, { ttl: 6 });
  await s.client.login();
  const start = s.times[0][1];
  s.renew = () => ({ status: 500, body: { errors: ['down'] } });
  s.loginStatus = 500;
  await sleep(6300);
  const attempts = s.times.slice(1).map(([kind, at]) => [kind, at - start]);
  const shown = JSON.stringify(attempts);
  assert.equal(attempts[0][0], 'renew', shown);
  assert.ok(attempts[0][1] >= 3800 && attempts[0][1] < 4500, `renewal at 2/3: ${shown}`);
  const logins = attempts.filter(([kind]) => kind === 'login').map(([, at]) => at);
  assert.ok(logins.length >= 3, shown);
  assert.ok(logins.some((at) => at > 5200 && at <= 6100), `a login between 5.2 s and the end: ${shown}`);
  assert.ok(logins.every((at, i) => i === 0 || at - logins[i - 1] >= 400), `at least 0.5 s apart: ${shown}`);
});

test('lookup-self refused with "permission denied" only: at most one login per 30 s, none for a young token', async (t) => {
  let n = 0;
  let lookup = { status: 403, body: { errors: ['permission denied'] } };
  const fake = await startFake(t, (r) => {
    if (r.path === 'auth/approle/login') return { status: 200, body: { auth: authBlock(`t${++n}`, 3600) } };
    if (r.path === 'auth/token/lookup-self') return lookup;
    if (r.path === 'secret/data/ok') return ok();
    if (r.path === 'secret/data/denied') return { status: 403, body: { errors: ['1 error occurred:\n\t* permission denied\n\n'] } };
    return undefined;
  });
  const c = new StrongroomClient({ address: fake.url, env: {}, auth: { type: 'approle', roleId: 'r', secretId: 's' } });
  t.after(() => c.close());
  const realNow = Date.now;
  let skew = 0;
  Date.now = () => realNow() + skew;
  t.after(() => { Date.now = realNow; });
  const logins = () => fake.count('auth/approle/login');
  const denied = async (k) => {
    for (let i = 0; i < k; i++) await assert.rejects(c.read('secret/data/denied'), (err) => err.status === 403);
  };
  await c.read('secret/data/ok');
  await denied(5);
  assert.equal(logins(), 1, 'a token minted less than 30 s ago: no login');
  skew += 31_000;
  await denied(5);
  assert.equal(logins(), 2, 'an older token: one login, then the new token is young');
  skew += 31_000;
  await denied(5);
  assert.equal(logins(), 3, 'one more after 30 s');
  // lookup-self saying more than "permission denied" proves the token dead: a login at once.
  lookup = { status: 403, body: { errors: ['2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n'] } };
  await denied(1);
  assert.equal(logins(), 4);
});
