// StrongroomClient against a real dev appliance: the logical API, KV v2, Transit, the token
// endpoints, logins, error objects, retries, VAULT_ADDR / VAULT_CACERT / VAULT_NAMESPACE.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { StrongroomClient, VaultError, ConnectionError } from '../dist/src/index.js';
import { startDev, must, startProxy, tempDir, makeTlsMaterial, api } from './helpers.mjs';

const ROOT = 'ts-client-root';

test('read, write, list, delete, patch on the logical API', async (t) => {
  const d = await startDev(t, ROOT);
  const c = new StrongroomClient({ address: d.addr, token: ROOT, env: {} });
  assert.equal(await c.write('secret/data/app/one', { data: { a: '1', b: '2' } }) !== null, true);
  await c.write('secret/data/app/two', { data: { x: 'y' } });
  await c.write('secret/data/app/dir/three', { data: { z: 'w' } });
  const one = await c.read('secret/data/app/one');
  assert.deepEqual(one.data.data, { a: '1', b: '2' });
  assert.equal(one.data.metadata.version, 1);
  assert.deepEqual(await c.list('secret/metadata/app'), ['dir/', 'one', 'two']);
  assert.deepEqual(await c.list('secret/metadata/nothing-here'), []);
  // PATCH as a JSON merge patch: b changed, c added, a removed with null.
  await c.patch('secret/data/app/one', { data: { a: null, b: '3', c: '4' } });
  assert.deepEqual((await c.read('secret/data/app/one')).data.data, { b: '3', c: '4' });
  // A path with characters that need escaping is one path segment on the server.
  await c.write('secret/data/app/we ird?#%', { data: { ok: 'yes' } });
  assert.equal((await c.read('secret/data/app/we ird?#%')).data.data.ok, 'yes');
  assert.ok((await c.list('secret/metadata/app')).includes('we ird?#%'));
  await c.delete('secret/data/app/two');
  await assert.rejects(c.read('secret/data/app/two'), (err) => err instanceof VaultError && err.status === 404);
  // Reads with a query (KV version).
  assert.deepEqual((await c.read('secret/data/app/one', { version: 1 })).data.data, { a: '1', b: '2' });
  // Dot segments would let the URL resolve to another path: refused before sending.
  await assert.rejects(c.read('secret/data/../../sys/mounts'), /has a "\.\." segment/);
});

test('KV v2 helpers: versions, check-and-set, patch, delete/undelete/destroy, metadata, list', async (t) => {
  const d = await startDev(t, ROOT);
  const kv = new StrongroomClient({ address: d.addr, token: ROOT, env: {} }).kv();
  const v1 = await kv.put('cfg/db', { user: 'u1', pass: 'p1' });
  assert.equal(v1.version, 1);
  // CAS: 0 means "only if absent"; a stale version is refused with 400.
  await assert.rejects(kv.put('cfg/db', { user: 'x' }, { cas: 0 }),
    (err) => err instanceof VaultError && err.status === 400 && /check-and-set/.test(err.errors.join(' ')));
  const v2 = await kv.put('cfg/db', { user: 'u2', pass: 'p2' }, { cas: 1 });
  assert.equal(v2.version, 2);
  const v3 = await kv.patch('cfg/db', { pass: 'p3' }, { cas: 2 });
  assert.equal(v3.version, 3);
  assert.deepEqual((await kv.get('cfg/db')).data, { user: 'u2', pass: 'p3' });
  assert.deepEqual((await kv.get('cfg/db', { version: 1 })).data, { user: 'u1', pass: 'p1' });
  assert.equal((await kv.get('cfg/db', { version: 2 })).metadata.version, 2);

  await kv.delete('cfg/db'); // latest (3) only
  await assert.rejects(kv.get('cfg/db'), (err) => err.status === 404);
  assert.deepEqual((await kv.get('cfg/db', { version: 2 })).data, { user: 'u2', pass: 'p2' });
  await kv.undelete('cfg/db', [3]);
  assert.equal((await kv.get('cfg/db')).data.pass, 'p3');
  await kv.deleteVersions('cfg/db', [1, 2]);
  await assert.rejects(kv.get('cfg/db', { version: 1 }), (err) => err.status === 404);
  await kv.destroy('cfg/db', [2]);
  let meta = await kv.readMetadata('cfg/db');
  assert.equal(meta.current_version, 3);
  assert.equal(meta.versions['2'].destroyed, true);
  assert.notEqual(meta.versions['1'].deletion_time, '');
  assert.equal(meta.versions['3'].destroyed, false);

  await kv.writeMetadata('cfg/db', { maxVersions: 5, casRequired: true, customMetadata: { owner: 'ops' } });
  meta = await kv.readMetadata('cfg/db');
  assert.equal(meta.max_versions, 5);
  assert.equal(meta.cas_required, true);
  assert.deepEqual(meta.custom_metadata, { owner: 'ops' });
  // cas_required: a write without cas is refused.
  await assert.rejects(kv.put('cfg/db', { a: 'b' }), (err) => err.status === 400);
  assert.equal((await kv.put('cfg/db', { a: 'b' }, { cas: 3 })).version, 4);

  await kv.put('cfg/other', { k: 'v' });
  assert.deepEqual(await kv.list('cfg'), ['db', 'other']);
  assert.deepEqual(await kv.list(), ['cfg/']);
  await kv.deleteMetadata('cfg/db');
  await assert.rejects(kv.readMetadata('cfg/db'), (err) => err.status === 404);
  assert.deepEqual(await kv.list('cfg/'), ['other']);
  await assert.rejects(kv.deleteVersions('cfg/other', [0]), /positive integer/);
});

test('Transit: encrypt, decrypt, rewrap, and batches with per-item errors', async (t) => {
  const d = await startDev(t, ROOT);
  await must(d, ROOT, 'POST', 'sys/mounts/transit', { type: 'transit' });
  await must(d, ROOT, 'POST', 'transit/keys/k1', {});
  const tr = new StrongroomClient({ address: d.addr, token: ROOT, env: {} }).transit();
  const text = 'héllo wörld ✓';
  const ct = await tr.encrypt('k1', text);
  assert.match(ct, /^vault:v1:/);
  assert.equal(await tr.decryptText('k1', ct), text);
  const bytes = new Uint8Array([0, 255, 1, 254]);
  assert.deepEqual(await tr.decrypt('k1', await tr.encrypt('k1', bytes)), bytes);
  // A plaintext that is not UTF-8 is refused by decryptText.
  await assert.rejects(tr.decryptText('k1', await tr.encrypt('k1', new Uint8Array([0xff, 0xfe]))), TypeError);

  await must(d, ROOT, 'POST', 'transit/keys/k1/rotate', {});
  const rewrapped = await tr.rewrap('k1', ct);
  assert.match(rewrapped, /^vault:v2:/);
  assert.equal(await tr.decryptText('k1', rewrapped), text);

  const enc = await tr.encryptBatch('k1', [{ plaintext: 'a', reference: 'r1' }, { plaintext: new Uint8Array([98]) }]);
  assert.equal(enc.length, 2);
  assert.match(enc[0].ciphertext, /^vault:v2:/);
  assert.equal(enc[0].reference, 'r1');
  const dec = await tr.decryptBatch('k1', [
    { ciphertext: enc[0].ciphertext, reference: 'r1' }, { ciphertext: 'vault:v1:bm90IGEgY2lwaGVydGV4dA==' },
    { ciphertext: enc[1].ciphertext },
  ]);
  assert.equal(Buffer.from(dec[0].plaintext).toString(), 'a');
  assert.equal(dec[0].reference, 'r1');
  assert.ok(dec[1].error, 'the bad item has an error');
  assert.equal(dec[1].plaintext, undefined);
  assert.equal(Buffer.from(dec[2].plaintext).toString(), 'b');
  const rw = await tr.rewrapBatch('k1', [{ ciphertext: ct }]);
  assert.match(rw[0].ciphertext, /^vault:v2:/);
  assert.deepEqual(await tr.encryptBatch('k1', []), []);
  await assert.rejects(tr.encrypt('a/b', 'x'), /key name/);
});

test('token lookupSelf, renewSelf, revokeSelf; AppRole login; token file login', async (t) => {
  const d = await startDev(t, ROOT);
  const dir = tempDir(t);
  const child = await must(d, ROOT, 'POST', 'auth/token/create', { ttl: '1h', policies: ['default'] });
  const c = new StrongroomClient({ address: d.addr, token: child.auth.client_token, env: {} });
  const self = await c.lookupSelf();
  assert.ok(self.ttl > 3500 && self.ttl <= 3600);
  assert.deepEqual(self.policies, ['default']);
  const renewed = await c.renewSelf('2h');
  assert.equal(renewed.client_token, child.auth.client_token);
  assert.ok(renewed.lease_duration > 3600, `renewed to ${renewed.lease_duration}`);
  await c.revokeSelf();
  assert.equal(c.token, undefined);
  assert.equal((await api(d, child.auth.client_token, 'GET', 'auth/token/lookup-self')).status, 403);

  // AppRole.
  await must(d, ROOT, 'POST', 'sys/auth/approle', { type: 'approle' });
  await must(d, ROOT, 'POST', 'auth/approle/role/svc', { token_policies: 'default', token_ttl: '10m' });
  const roleId = (await must(d, ROOT, 'GET', 'auth/approle/role/svc/role-id')).data.role_id;
  const secretId = (await must(d, ROOT, 'POST', 'auth/approle/role/svc/secret-id', {})).data.secret_id;
  fs.writeFileSync(path.join(dir, 'secret-id'), `${secretId}\n`);
  const ar = new StrongroomClient({ address: d.addr, env: {} });
  const info = await ar.login({ type: 'approle', roleId, secretIdPath: path.join(dir, 'secret-id') });
  assert.equal(info.lease_duration, 600);
  assert.deepEqual(info.token_policies, ['default']);
  assert.equal((await ar.lookupSelf()).ttl <= 600, true);
  ar.close();

  // A token file as an agent's sink writes it; re-read when the token in it dies.
  const t1 = (await must(d, ROOT, 'POST', 'auth/token/create', { ttl: '1h', policies: ['default'] })).auth.client_token;
  const sink = path.join(dir, 'sink');
  fs.writeFileSync(sink, `${t1}\n`);
  const fromEnv = StrongroomClient.fromEnv({ address: d.addr, env: { VAULT_TOKEN_FILE: sink } });
  assert.equal(fromEnv.token, undefined);
  await fromEnv.lookupSelf(); // logs in first: the token file is read and the token looked up
  assert.equal(fromEnv.token, t1);
  const t2 = (await must(d, ROOT, 'POST', 'auth/token/create', { ttl: '1h', policies: ['default'] })).auth.client_token;
  fs.writeFileSync(sink, `${t2}\n`);
  await must(d, ROOT, 'POST', 'auth/token/revoke', { token: t1 });
  await fromEnv.lookupSelf(); // 403 with t1, then the file is read again
  assert.equal(fromEnv.token, t2);
  fromEnv.close();
});

test('error objects: 403, 404, 400 with status, errors[] and a message laid out like Vault\'s', async (t) => {
  const d = await startDev(t, ROOT);
  const c = new StrongroomClient({ address: d.addr, token: ROOT, env: {} });
  // A valid token whose policy does not allow the path.
  const limited = (await must(d, ROOT, 'POST', 'auth/token/create', { policies: ['default'] })).auth.client_token;
  const e403 = await new StrongroomClient({ address: d.addr, token: limited, env: {} }).read('secret/data/x').catch((e) => e);
  assert.ok(e403 instanceof VaultError && e403 instanceof Error);
  assert.equal(e403.name, 'VaultError');
  assert.equal(e403.status, 403);
  // The server's strings as sent (strongroom, like Vault, wraps them in a multierror text).
  assert.deepEqual(e403.errors, ['1 error occurred:\n\t* permission denied\n\n']);
  assert.equal(e403.isPermissionDenied, true);
  assert.equal(e403.message, `Error making API request.\n\nURL: GET ${d.addr}/v1/secret/data/x\nCode: 403. Errors:\n\n`
    + '* 1 error occurred:\n\t* permission denied\n\n');
  assert.doesNotMatch(e403.message, new RegExp(limited));
  // An unknown token: the server's errors kept as sent.
  const nobody = new StrongroomClient({ address: d.addr, token: 'no-such-token', env: {} });
  const eBad = await nobody.read('secret/data/x').catch((e) => e);
  assert.equal(eBad.status, 403);
  assert.equal(eBad.isPermissionDenied, true);
  assert.match(eBad.errors.join(''), /permission denied/);
  assert.doesNotMatch(eBad.message, /no-such-token/);

  const e404 = await c.read('secret/data/missing').catch((e) => e);
  assert.equal(e404.status, 404);
  assert.deepEqual(e404.errors, []);
  assert.match(e404.message, /^Error making API request\.\n\nURL: GET .*\/v1\/secret\/data\/missing\nCode: 404\./);
  assert.equal(e404.isPermissionDenied, false);

  const e400 = await c.write('transit/keys/x', { type: 'no-such-type' }).catch((e) => e);
  assert.ok(e400 instanceof VaultError, String(e400));
  assert.ok(e400.status === 400 || e400.status === 404, `status ${e400.status}`);
  const bad = await c.kv().put('k', { a: 1 }, { cas: 7 }).catch((e) => e);
  assert.equal(bad.status, 400);
  assert.ok(bad.errors.length >= 1);
  assert.match(bad.message, /Code: 400\. Errors:\n\n\* /);
  assert.equal(bad.method, 'PUT');

  // Nothing listening: a ConnectionError (after the GET's retries).
  await d.stop();
  const gone = new StrongroomClient({ address: d.addr, token: ROOT, env: {}, retryBaseMs: 5 });
  const ce = await gone.read('secret/data/x').catch((e) => e);
  assert.ok(ce instanceof ConnectionError, String(ce));
  assert.equal(ce.code, 'ECONNREFUSED');
});

test('retries: GET and LIST after 502/503/504, not after a dropped connection or 500, never writes', async (t) => {
  const d = await startDev(t, ROOT);
  const proxy = await startProxy(t, d.addr);
  const c = new StrongroomClient({ address: proxy.url, token: ROOT, env: {}, retryBaseMs: 10 });
  await c.kv().put('r', { v: '1' });
  proxy.reset();
  proxy.failNext(2, 503);
  assert.equal((await c.kv().get('r')).data.v, '1');
  assert.equal(proxy.count(), 3, proxy.paths().join(', '));
  proxy.reset();
  proxy.failNext(1, 504);
  assert.deepEqual(await c.kv().list(''), ['r']);
  assert.equal(proxy.count(), 2);
  // A connection dropped after the request went out: the server may have acted, no retry.
  proxy.reset();
  proxy.dropNext(1);
  await assert.rejects(c.kv().list(''), (err) => err instanceof ConnectionError && err.requestSent === true);
  assert.equal(proxy.count(), 1);
  // Retries run out: the last answer is the error.
  proxy.reset();
  proxy.failNext(4, 502);
  const e = await c.read('secret/data/r').catch((err) => err);
  assert.equal(e.status, 502);
  assert.equal(proxy.count(), 4); // 1 + maxRetries (3)
  // 500, 501 and 4xx are answers, not failures: no retry.
  for (const status of [500, 501]) {
    proxy.reset();
    proxy.failNext(1, status);
    await assert.rejects(c.read('secret/data/r'), (err) => err.status === status);
    assert.equal(proxy.count(), 1);
  }
  // Writes: never retried, on a 5xx or a dropped connection.
  proxy.reset();
  proxy.failNext(1, 503);
  await assert.rejects(c.kv().put('r', { v: '2' }), (err) => err.status === 503);
  proxy.dropNext(1);
  await assert.rejects(c.kv().put('r', { v: '2' }), (err) => err instanceof ConnectionError);
  proxy.failNext(1, 500);
  await assert.rejects(c.transit().encrypt('k', 'x'), (err) => err.status === 500);
  proxy.failNext(1, 500);
  await assert.rejects(c.delete('secret/data/r'), (err) => err.status === 500);
  assert.equal(proxy.count(), 4);
  assert.equal((await c.kv().get('r')).data.v, '1', 'no write went through');
});

test('VAULT_ADDR, VAULT_CACERT (https) and VAULT_NAMESPACE from the environment', async (t) => {
  const d = await startDev(t, ROOT);
  const dir = tempDir(t);
  const tls = makeTlsMaterial(dir, ['IP:127.0.0.1'], 'strongroom');
  const proxy = await startProxy(t, d.addr, { tls: { key: tls.keyPem, cert: tls.certPem } });
  const env = { VAULT_ADDR: proxy.url, VAULT_CACERT: tls.caPath, VAULT_TOKEN: ROOT };
  const c = new StrongroomClient({ env });
  assert.equal(c.address, proxy.url);
  await c.kv().put('tls', { ok: 'yes' });
  assert.equal((await c.kv().get('tls')).data.ok, 'yes');
  assert.equal(proxy.requests[0].headers['x-vault-token'], ROOT);
  assert.equal(proxy.requests[0].headers['x-vault-namespace'], undefined);
  // Without the CA the certificate is not trusted (and a GET's retries do not change that).
  const untrusted = new StrongroomClient({ env: { VAULT_ADDR: proxy.url, VAULT_TOKEN: ROOT }, maxRetries: 0 });
  await assert.rejects(untrusted.kv().get('tls'), (err) => err instanceof ConnectionError && /certificate/i.test(err.message));
  // A missing CA file is an error at construction.
  assert.throws(() => new StrongroomClient({ env: { ...env, VAULT_CACERT: path.join(dir, 'nope.pem') } }), /CA bundle/);
  // The namespace goes in X-Vault-Namespace on every request.
  proxy.reset();
  const ns = new StrongroomClient({ env: { ...env, VAULT_NAMESPACE: 'team-a/' }, maxRetries: 0 });
  await ns.read('sys/health').catch(() => {});
  await ns.write('secret/data/x', { data: {} }).catch(() => {});
  assert.deepEqual(proxy.requests.map((r) => r.headers['x-vault-namespace']), ['team-a/', 'team-a/']);
  // An address that is not http(s) is refused.
  assert.throws(() => new StrongroomClient({ env: { VAULT_ADDR: 'ftp://x' } }), /neither http/);
});
