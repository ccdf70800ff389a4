// End-to-end: the KV version 2 engine driven by node-vault against a dev-mode appliance
// (secret/ is a kv-v2 mount there, as in Vault's dev server).
// Vault API sections: §3.1–§3.4 (data, delete/undelete/destroy, metadata, config, subkeys).
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const nodeVault = require('node-vault');
const { Daemon, waitDevReady } = require('./harness');

const ROOT = 'kv-e2e-root';
let d;
let vault;

before(async () => {
  d = new Daemon();
  await d.startDev(ROOT);
  vault = nodeVault({ endpoint: d.addr, token: ROOT });
  await waitDevReady(vault);
});
after(() => d.destroy());

const status = (code) => (err) => err.response && err.response.statusCode === code;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test('write, then read the latest and an older version', async () => {
  assert.equal((await vault.write('secret/data/app', { data: { k: 'v1' } })).data.version, 1);
  const w2 = await vault.write('secret/data/app', { data: { k: 'v2' } });
  assert.equal(w2.data.version, 2);
  assert.equal(w2.data.destroyed, false);
  assert.equal(w2.data.deletion_time, '');
  const latest = await vault.read('secret/data/app');
  assert.deepEqual(latest.data.data, { k: 'v2' });
  assert.equal(latest.data.metadata.version, 2);
  const v1 = await vault.read('secret/data/app?version=1');
  assert.deepEqual(v1.data.data, { k: 'v1' });
  const generic = await vault.request({ path: '/secret/data/app?version=1', method: 'GET' });
  assert.equal(generic.data.metadata.version, 1);
  await assert.rejects(vault.read('secret/data/app?version=7'), status(404));
  await assert.rejects(vault.read('secret/data/app?version=abc'), status(400));
});

test('check-and-set conflicts are rejected with Vault text', async () => {
  await vault.write('secret/data/cas', { data: { a: 1 }, options: { cas: 0 } });
  await assert.rejects(vault.write('secret/data/cas', { data: { a: 2 }, options: { cas: 0 } }),
                       /check-and-set parameter did not match the current version/);
  const ok = await vault.write('secret/data/cas', { data: { a: 2 }, options: { cas: 1 } });
  assert.equal(ok.data.version, 2);
});

test('patch merges into the latest version (vault.update)', async () => {
  await vault.write('secret/data/patch', { data: { keep: 'x', drop: 'y', obj: { a: 1 } } });
  const p = await vault.update('secret/data/patch', { data: { drop: null, obj: { b: 2 } } });
  assert.equal(p.data.version, 2);
  assert.deepEqual((await vault.read('secret/data/patch')).data.data, { keep: 'x', obj: { a: 1, b: 2 } });
  await assert.rejects(vault.update('secret/data/missing', { data: { a: 1 } }), status(404));
});

test('soft delete, undelete and destroy', async () => {
  await vault.write('secret/data/del', { data: { n: 1 } });
  await vault.write('secret/data/del', { data: { n: 2 } });
  await vault.write('secret/delete/del', { versions: [1] });
  await assert.rejects(vault.read('secret/data/del?version=1'), (err) => {
    assert.equal(err.response.statusCode, 404);
    assert.equal(err.response.body.data.data, null);
    assert.notEqual(err.response.body.data.metadata.deletion_time, '');
    return true;
  });
  await vault.write('secret/undelete/del', { versions: [1] });
  assert.deepEqual((await vault.read('secret/data/del?version=1')).data.data, { n: 1 });

  await vault.destroySecretVersions({ mount_point: 'secret', path: 'del', versions: [2] });
  await assert.rejects(vault.read('secret/data/del'), (err) => {
    assert.equal(err.response.statusCode, 404);
    assert.equal(err.response.body.data.metadata.destroyed, true);
    return true;
  });
  const meta = await vault.read('secret/metadata/del');
  assert.equal(meta.data.versions['2'].destroyed, true);
  assert.equal(meta.data.versions['1'].deletion_time, '');

  await vault.delete('secret/data/cas');
  await assert.rejects(vault.read('secret/data/cas'), status(404));
});

test('metadata write, read, patch and list', async () => {
  await vault.write('secret/metadata/team/svc', {
    max_versions: 4, cas_required: false, custom_metadata: { owner: 'jdoe' },
  });
  let meta = await vault.read('secret/metadata/team/svc');
  assert.equal(meta.data.max_versions, 4);
  assert.equal(meta.data.current_version, 0);
  assert.deepEqual(meta.data.custom_metadata, { owner: 'jdoe' });
  assert.equal(meta.data.delete_version_after, '0s');
  await vault.update('secret/metadata/team/svc', { custom_metadata: { owner: null, env: 'prod' } });
  meta = await vault.read('secret/metadata/team/svc');
  assert.deepEqual(meta.data.custom_metadata, { env: 'prod' });
  await vault.write('secret/data/team/svc', { data: { a: 1 } });
  assert.deepEqual((await vault.read('secret/data/team/svc')).data.metadata.custom_metadata, { env: 'prod' });
  await assert.rejects(vault.write('secret/metadata/team/svc', { custom_metadata: { k: '' } }),
                       /custom_metadata validation failed/);

  const top = await vault.list('secret/metadata/');
  assert.ok(top.data.keys.includes('team/'));
  assert.ok(top.data.keys.includes('app'));
  assert.deepEqual((await vault.list('secret/metadata/team/')).data.keys, ['svc']);
});

test('max_versions prunes old versions', async () => {
  await vault.write('secret/metadata/pruned', { max_versions: 2 });
  for (let i = 1; i <= 4; i += 1) await vault.write('secret/data/pruned', { data: { i } });
  const meta = await vault.read('secret/metadata/pruned');
  assert.deepEqual(Object.keys(meta.data.versions).sort(), ['3', '4']);
  assert.equal(meta.data.oldest_version, 3);
  await assert.rejects(vault.read('secret/data/pruned?version=1'), status(404));
  assert.deepEqual((await vault.read('secret/data/pruned?version=3')).data.data, { i: 3 });
});

test('delete_version_after expires versions', async () => {
  await vault.write('secret/metadata/ttl', { delete_version_after: '1s' });
  const w = await vault.write('secret/data/ttl', { data: { short: 'lived' } });
  assert.notEqual(w.data.deletion_time, '');
  assert.deepEqual((await vault.read('secret/data/ttl')).data.data, { short: 'lived' });
  await sleep(1500);
  await assert.rejects(vault.read('secret/data/ttl'), (err) => {
    assert.equal(err.response.statusCode, 404);
    assert.equal(err.response.body.data.metadata.deletion_time, w.data.deletion_time);
    return true;
  });
});

test('subkeys and the invalid-path warning', async () => {
  await vault.write('secret/data/shape', { data: { a: { b: 'x' }, c: 1 } });
  const sk = await vault.read('secret/subkeys/shape');
  assert.deepEqual(sk.data.subkeys, { a: { b: null }, c: null });
  await assert.rejects(vault.write('secret/shape', { a: 1 }), (err) => {
    assert.equal(err.response.statusCode, 404);
    assert.match(err.response.body.warnings[0], /use 'vault kv put' for this operation/);
    return true;
  });
});
