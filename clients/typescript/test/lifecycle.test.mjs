// The token's life with Kubernetes auth on a real dev appliance (the fake API server answers the
// TokenReview): renewal at 2/3 of the TTL, login again when the grants shrink at max_ttl, when
// renewal fails, and when a token that worked is refused; one login in flight at a time. Every
// request goes through a counting proxy.
import test from 'node:test';
import assert from 'node:assert/strict';

import { StrongroomClient, VaultError } from '../dist/src/index.js';
import { startDev, must, referenceSetup, startProxy, until } from './helpers.mjs';

const ROOT = 'ts-lifecycle-root';
const LOGIN = 'auth/kubernetes/login';
const RENEW = 'auth/token/renew-self';
const LOOKUP = 'auth/token/lookup-self';

async function setup(t, roleTtl) {
  const d = await startDev(t, ROOT);
  const { jwtFile } = await referenceSetup(t, d, ROOT, roleTtl);
  await must(d, ROOT, 'POST', 'secret/data/lobstack/api-keys', { data: { openai_api_key: 'sk-1' } });
  const proxy = await startProxy(t, d.addr);
  const log = [];
  const client = new StrongroomClient({
    address: proxy.url, env: {}, auth: { type: 'kubernetes', role: 'lobstack-api', tokenPath: jwtFile },
    logger: (level, msg) => log.push(`${level}: ${msg}`),
  });
  t.after(() => client.close());
  const count = (p, status) => proxy.count((r) => r.path === p && (status === undefined || r.status === status));
  // What happened, for a failing assertion's message.
  const story = () => `requests: ${proxy.history()}\nclient log: ${log.join('; ')}`;
  return { d, proxy, client, count, story };
}

test('renews at 2/3 of the TTL, then logs in again when max_ttl caps the grant', async (t) => {
  // ttl 6 s, max_ttl 11 s: login at 0; renewal at ~4 s (grant 6 s); renewal at ~8 s grants only
  // the 3 s left, so the next step, at ~10 s, is a login. (Seconds long enough that a stalled
  // disk or a busy machine does not change the story; each step has a second or more to spare.)
  const { proxy, client, count, story } = await setup(t, { ttl: '6s', maxTtl: '11s' });
  const first = await client.kv().get('lobstack/api-keys');
  assert.equal(first.data.openai_api_key, 'sk-1');
  const t1 = client.token;
  assert.equal(count(LOGIN), 1);
  assert.equal(count(RENEW), 0);
  const at = (p, n) => proxy.requests.filter((r) => r.path === p)[n].at;
  const loggedIn = at(LOGIN, 0);
  assert.ok(await until(() => count(RENEW, 200) >= 1, 8000), `renewed\n${story()}`);
  const renewedAfter = at(RENEW, 0) - loggedIn;
  assert.ok(renewedAfter >= 3600 && renewedAfter < 5500, `renewed ${renewedAfter} ms after the login (2/3 of 6 s)\n${story()}`);
  assert.equal(count(LOGIN), 1, story());
  assert.equal(client.token, t1, 'a renewal keeps the token');
  const ttl = (await client.lookupSelf()).ttl;
  assert.ok(ttl >= 4, `the renewal gave the token ${ttl} s more`);
  assert.ok(await until(() => client.token !== t1, 10000), `logged in again\n${story()}`);
  const reloginAfter = at(LOGIN, 1) - loggedIn;
  assert.ok(reloginAfter < 11000, `logged in again ${reloginAfter} ms after the first login, before max_ttl (11 s)\n${story()}`);
  assert.equal(count(RENEW, 200), 2, `two renewals, the second capped at max_ttl\n${story()}`);
  assert.notEqual(client.token, t1);
  assert.equal((await client.kv().get('lobstack/api-keys')).data.openai_api_key, 'sk-1');
  assert.equal(count(LOGIN), 2);
});

test('a failed renewal (revoked token) leads to a login, with no request failing', async (t) => {
  const { d, client, count } = await setup(t, { ttl: '3s', maxTtl: '1h' });
  await client.login();
  const t1 = client.token;
  await must(d, ROOT, 'POST', 'auth/token/revoke', { token: t1 });
  assert.ok(await until(() => client.token !== t1, 5000), 'a login followed');
  assert.equal(count(LOGIN, 200), 2);
  assert.equal(count(RENEW, 403), 1, 'the renewal was refused');
  assert.notEqual(client.token, t1);
  assert.equal((await client.kv().get('lobstack/api-keys')).data.openai_api_key, 'sk-1');
});

test('a revoked token is replaced by one login, however many requests it failed', async (t) => {
  const { d, proxy, client, count } = await setup(t, { ttl: '1h', maxTtl: '4h' });
  // Ten requests before any token: one login between them.
  const first = await Promise.all(Array.from({ length: 10 }, () => client.kv().get('lobstack/api-keys')));
  assert.equal(first.length, 10);
  assert.equal(count(LOGIN), 1);
  const t1 = client.token;
  await must(d, ROOT, 'POST', 'auth/token/revoke', { token: t1 });
  proxy.reset();
  const again = await Promise.all(Array.from({ length: 8 }, () => client.kv().get('lobstack/api-keys')));
  assert.ok(again.every((s) => s.data.openai_api_key === 'sk-1'));
  assert.equal(count(LOGIN), 1, `one login: ${proxy.paths().join(', ')}`);
  assert.equal(count(LOOKUP, 403), 1, 'one check of the old token');
  assert.notEqual(client.token, t1);
  // A write refused with a dead token is sent again after the login too (a 403 did nothing).
  await must(d, ROOT, 'POST', 'auth/token/revoke', { token: client.token });
  await client.kv().put('lobstack/agent/a1', { k: 'v' });
  assert.equal(count(LOGIN), 2);
  assert.equal((await must(d, ROOT, 'GET', 'secret/data/lobstack/agent/a1')).data.data.k, 'v');

  // A refusal by policy with a live token: the token is checked once, no login, the 403 stands.
  proxy.reset();
  const denied = await client.read('secret/data/lobstack/other').catch((e) => e);
  assert.ok(denied instanceof VaultError && denied.status === 403);
  assert.equal(count(LOOKUP, 200), 1);
  assert.equal(count(LOGIN), 0);
});

test('a token that never worked is not "recovered": a bad login is an error, not a loop', async (t) => {
  const { d, proxy, count } = await setup(t, { ttl: '1h', maxTtl: '4h' });
  const wrongRole = new StrongroomClient({
    address: proxy.url, env: {}, auth: { type: 'kubernetes', role: 'no-such-role', jwt: 'x.y.z' },
  });
  await assert.rejects(wrongRole.kv().get('lobstack/api-keys'), (err) => err instanceof VaultError && err.status >= 400);
  assert.equal(count(LOGIN), 1, 'logins are not retried (they are writes)');
  const missingFile = new StrongroomClient({
    address: d.addr, env: {}, auth: { type: 'kubernetes', role: 'lobstack-api', tokenPath: '/nonexistent/token' },
  });
  await assert.rejects(missingFile.login(), /ENOENT/);
});

test('a token that may not call lookup-self: refusals by policy do not cause a login storm', async (t) => {
  const d = await startDev(t, ROOT);
  await must(d, ROOT, 'PUT', 'sys/policies/acl/narrow', { policy: 'path "secret/data/ok" { capabilities = ["read"] }' });
  await must(d, ROOT, 'POST', 'secret/data/ok', { data: { v: '1' } });
  await must(d, ROOT, 'POST', 'sys/auth/approle', { type: 'approle' });
  // No `default` policy: the token may not look itself up.
  await must(d, ROOT, 'POST', 'auth/approle/role/narrow', { token_policies: 'narrow', token_no_default_policy: true, token_ttl: '1h' });
  const roleId = (await must(d, ROOT, 'GET', 'auth/approle/role/narrow/role-id')).data.role_id;
  const secretId = (await must(d, ROOT, 'POST', 'auth/approle/role/narrow/secret-id', {})).data.secret_id;
  const proxy = await startProxy(t, d.addr);
  const client = new StrongroomClient({ address: proxy.url, env: {}, auth: { type: 'approle', roleId, secretId } });
  t.after(() => client.close());
  const logins = () => proxy.count((r) => r.path === 'auth/approle/login');
  assert.equal((await client.kv().get('ok')).data.v, '1');
  assert.equal(logins(), 1);
  for (let i = 0; i < 10; i++) {
    await assert.rejects(client.kv().get(`denied-${i}`), (err) => err instanceof VaultError && err.status === 403);
  }
  const parallel = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => client.kv().get(`denied-p${i}`)));
  assert.ok(parallel.every((r) => r.status === 'rejected' && r.reason.status === 403));
  assert.ok(logins() <= 2, `at most one extra login for 20 refusals: ${logins()} logins`);
  assert.equal((await client.kv().get('ok')).data.v, '1');
  // A revoked token is still told apart ("invalid token") and replaced, however new it is.
  const before = logins();
  await must(d, ROOT, 'POST', 'auth/token/revoke', { token: client.token });
  assert.equal((await client.kv().get('ok')).data.v, '1');
  assert.equal(logins(), before + 1);
});
