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
