// End-to-end: the appliance foundation driven by node-vault (npm, pinned in package-lock.json),
// the Vault client library platform teams already use, with no changes to the client.
// Vault API sections: sys/init, sys/seal-status, sys/health, sys/leader, sys/mounts, sys/rotate,
// sys/seal, sys/unseal, KV v2 data read/write.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const nodeVault = require('node-vault');
const { Daemon } = require('./harness');

test('a configured appliance is initialised, used, sealed and unsealed through node-vault', async (t) => {
  const d = new Daemon();
  t.after(() => d.destroy());
  await d.startConfig();
  const vault = nodeVault({ endpoint: d.addr });

  assert.deepEqual(await vault.initialized(), { initialized: false });
  const before = await vault.status();
  assert.equal(before.sealed, true);
  assert.equal(before.type, 'pkcs11');
  const health0 = await vault.health();
  assert.equal(health0.initialized, false);

  // node-vault's init() insists on secret_shares, which an HSM-sealed Vault refuses (400) —
  // exactly what strongroom does too. Recovery shares go through the generic request.
  await assert.rejects(vault.init({ secret_shares: 1, secret_threshold: 1 }), /not applicable to seal type pkcs11/);
  const init = await vault.request({
    path: '/sys/init', method: 'PUT', json: { recovery_shares: 3, recovery_threshold: 2 },
  });
  assert.deepEqual(init.keys, []);
  assert.equal(init.recovery_keys.length, 3);
  assert.match(init.root_token, /^hvs\./);
  vault.token = init.root_token;

  const status = await vault.status();
  assert.equal(status.sealed, false);
  assert.equal(status.t, 2);
  assert.equal(status.n, 3);
  const health = await vault.health();
  assert.equal(health.sealed, false);
  assert.equal(typeof health.cluster_id, 'string');
  assert.equal((await vault.leader()).ha_enabled, false);

  await vault.mount({ mount_point: 'secret', type: 'kv', options: { version: '2' } });
  const mounts = await vault.mounts();
  assert.equal(mounts.data['secret/'].options.version, '2');
  assert.equal(mounts['secret/'].type, 'kv');

  const written = await vault.write('secret/data/lobstack/api-keys', { data: { openai: 'sk-test-1' } });
  assert.equal(written.data.version, 1);
  const read = await vault.read('secret/data/lobstack/api-keys');
  assert.equal(read.data.data.openai, 'sk-test-1');
  assert.equal(read.data.metadata.version, 1);
  assert.equal(read.mount_type, 'kv');

  await vault.rotate();
  assert.equal((await vault.read('sys/key-status')).data.term, 2);
  assert.equal((await vault.read('secret/data/lobstack/api-keys')).data.data.openai, 'sk-test-1');

  await vault.seal();
  await assert.rejects(vault.read('secret/data/lobstack/api-keys'), /Vault is sealed/);
  const p1 = await vault.unseal({ key: init.recovery_keys[0] });
  assert.equal(p1.sealed, true);
  assert.equal(p1.progress, 1);
  const p2 = await vault.unseal({ key: init.recovery_keys[1] });
  assert.equal(p2.sealed, false);
  assert.equal((await vault.read('secret/data/lobstack/api-keys')).data.data.openai, 'sk-test-1');

  // Restart: the token unseals the node by itself and the data is intact.
  assert.equal(await d.stop(), 0);
  await d.startConfig();
  const again = nodeVault({ endpoint: d.addr, token: init.root_token });
  assert.equal((await again.status()).sealed, false);
  assert.equal((await again.read('secret/data/lobstack/api-keys')).data.data.openai, 'sk-test-1');
});

test('errors reach node-vault as Vault sends them', async (t) => {
  const d = new Daemon();
  t.after(() => d.destroy());
  await d.startDev('e2e-root');
  const vault = nodeVault({ endpoint: d.addr, token: 'e2e-root' });
  await assert.rejects(vault.read('nowhere/x'), (err) => err.response.statusCode === 404 && /no handler for route/.test(err.message));
  await assert.rejects(vault.read('secret/data/missing'), (err) => err.response.statusCode === 404);
  const forged = nodeVault({ endpoint: d.addr, token: 'hvs.forged' });
  await assert.rejects(forged.read('secret/data/x'), (err) => err.response.statusCode === 403 && /invalid token/.test(err.message));
  const anonymous = nodeVault({ endpoint: d.addr });
  await assert.rejects(anonymous.mounts(), (err) => err.response.statusCode === 403 && err.message === 'permission denied');
  await assert.rejects(vault.mount({ mount_point: 'x', type: 'no-such-engine' }), /plugin not found in the catalog/);
  // Dev mode mounts secret/ as KV v2, like vault server -dev.
  await vault.write('secret/data/hello', { data: { foo: 'bar' } });
  assert.equal((await vault.read('secret/data/hello')).data.data.foo, 'bar');
});
