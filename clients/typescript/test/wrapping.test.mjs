// Response wrapping through StrongroomClient against a real dev appliance (Vault API:
// X-Vault-Wrap-TTL, sys/wrapping/wrap|lookup|unwrap|rewrap): a per-call wrapTtl, unwrap with the
// token in the body or as the client's own token, single use, lookups that open nothing.
import test from 'node:test';
import assert from 'node:assert/strict';

import { StrongroomClient, VaultError } from '../dist/src/index.js';
import { startDev, must } from './helpers.mjs';

const ROOT = 'ts-wrap-root';

const notValid = (err) => err instanceof VaultError && err.status === 400 &&
  err.errors.some((e) => /wrapping token is not valid or does not exist/.test(e));

test('read with wrapTtl: wrap_info instead of data; unwrap opens it once', async (t) => {
  const d = await startDev(t, ROOT);
  const c = new StrongroomClient({ address: d.addr, token: ROOT, env: {} });
  await c.kv().put('app', { password: 's3cret' });
  const wrapped = await c.read('secret/data/app', undefined, { wrapTtl: '5m' });
  assert.equal(wrapped.data, null);
  assert.equal(wrapped.auth, null);
  const info = wrapped.wrap_info;
  assert.ok(info);
  assert.match(info.token, /^hvs\./);
  assert.equal(info.ttl, 300);
  assert.equal(info.creation_path, 'secret/data/app');
  assert.equal(info.wrapped_accessor, undefined); // omitted when nothing wrapped is a token
  assert.match(info.creation_time, /^\d{4}-\d\d-\d\dT/);
  // A plain read is not wrapped.
  assert.equal((await c.read('secret/data/app')).wrap_info, null);
  // Lookup opens nothing and needs no token.
  const anonymous = new StrongroomClient({ address: d.addr, env: {} });
  const look = await anonymous.wrapLookup(info.token);
  assert.equal(look.creation_path, 'secret/data/app');
  assert.equal(look.creation_ttl, 300);
  // The token in the body, with the client's own token.
  const opened = await c.unwrap(info.token);
  assert.equal(opened.data.data.password, 's3cret');
  await assert.rejects(c.unwrap(info.token), notValid);
  await assert.rejects(anonymous.wrapLookup(info.token), notValid);
  // Seconds as a number; a client with no token sends the wrapping token as its own.
  const second = await c.read('secret/data/app', undefined, { wrapTtl: 90 });
  assert.equal(second.wrap_info.ttl, 90);
  assert.equal((await anonymous.unwrap(second.wrap_info.token)).data.data.password, 's3cret');
  assert.equal(anonymous.token, undefined, 'the wrapping token was not kept');
});

test('unwrap with no argument unwraps the client token; a wrapped token creation gives a working token', async (t) => {
  const d = await startDev(t, ROOT);
  const c = new StrongroomClient({ address: d.addr, token: ROOT, env: {} });
  await must(d, ROOT, 'PUT', 'sys/policies/acl/reader', { policy: 'path "secret/data/*" { capabilities = ["read"] }' });
  await c.kv().put('app', { k: 'v' });
  const created = await c.write('auth/token/create', { policies: ['reader'], ttl: '1h' }, { wrapTtl: '2m' });
  const info = created.wrap_info;
  assert.equal(info.creation_path, 'auth/token/create');
  assert.notEqual(info.wrapped_accessor, '');
  // The recipient holds the wrapping token as its token and unwraps it.
  const recipient = new StrongroomClient({ address: d.addr, token: info.token, env: {} });
  const opened = await recipient.unwrap();
  assert.equal(opened.auth.accessor, info.wrapped_accessor);
  const app = new StrongroomClient({ address: d.addr, token: opened.auth.client_token, env: {} });
  assert.equal((await app.kv().get('app')).data.k, 'v');
  await assert.rejects(recipient.unwrap(), (err) => err instanceof VaultError && (err.status === 400 || err.status === 403));
  await assert.rejects(new StrongroomClient({ address: d.addr, env: {} }).unwrap(), /no wrapping token/);
});

test('wrap, rewrap, and what a wrapTtl may be', async (t) => {
  const d = await startDev(t, ROOT);
  const c = new StrongroomClient({ address: d.addr, token: ROOT, env: {} });
  const info = await c.wrap({ foo: 'bar', n: 1 }, '1m');
  assert.equal(info.creation_path, 'sys/wrapping/wrap');
  assert.equal(info.ttl, 60);
  const again = await c.rewrap(info.token);
  assert.notEqual(again.token, info.token);
  assert.equal(again.creation_path, 'sys/wrapping/wrap');
  await assert.rejects(c.unwrap(info.token), notValid);
  assert.deepEqual((await c.unwrap(again.token)).data, { foo: 'bar', n: 1 });
  // Only a duration reaches the header; the server refuses a TTL it cannot parse before acting.
  for (const bad of ['5m\r\nX-Injected: 1', '', 'a b', 0, -5, 1.5]) {
    await assert.rejects(c.read('secret/data/x', undefined, { wrapTtl: bad }), TypeError, String(bad));
  }
  await assert.rejects(c.write('secret/data/never', { data: { v: '1' } }, { wrapTtl: 'soon' }),
    (err) => err instanceof VaultError && err.status === 400);
  await assert.rejects(c.read('secret/data/never'), (err) => err.status === 404);
  // A 204 has nothing to wrap.
  assert.equal(await c.write('sys/policies/acl/p', { policy: 'path "x" { capabilities = ["read"] }' }, { wrapTtl: '1m' }), null);
});
