// End-to-end: backups as an application's operator takes them (issue 17, item 6). Data written
// and read with node-vault; the snapshot itself is binary (application/octet-stream), which
// node-vault's JSON requests cannot carry, so it is saved and restored with Node's fetch, as
// `curl -o` / `--data-binary` would (docs/operations.md, "Backup and restore").
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const nodeVault = require('node-vault');
const { startDevClient } = require('./harness');

const ROOT = 'root-snapshot';

async function save(d, token) {
  const res = await fetch(`${d.addr}/v1/sys/storage/raft/snapshot`, { headers: { 'X-Vault-Token': token } });
  return { status: res.status, type: res.headers.get('content-type'), body: Buffer.from(await res.arrayBuffer()) };
}

async function restore(d, token, body) {
  const res = await fetch(`${d.addr}/v1/sys/storage/raft/snapshot`, {
    method: 'POST',
    headers: { 'X-Vault-Token': token, 'Content-Type': 'application/octet-stream' },
    body,
  });
  return { status: res.status, text: await res.text() };
}

test('a snapshot restores the state it was taken in; a damaged one changes nothing', async (t) => {
  const { d, root } = await startDevClient(t, ROOT);
  await root.write('secret/data/a', { data: { v: 'alpha' } });
  const snap = await save(d, ROOT);
  assert.equal(snap.status, 200);
  assert.equal(snap.type, 'application/octet-stream');
  assert.equal(snap.body.subarray(0, 8).toString(), 'SRSNAP01');

  await root.write('secret/data/b', { data: { v: 'bravo' } });
  await root.delete('secret/metadata/a');
  await assert.rejects(root.read('secret/data/a'), (e) => e.response.statusCode === 404);

  const damaged = Buffer.from(snap.body);
  damaged[damaged.length >> 1] ^= 1;
  const refused = await restore(d, ROOT, damaged);
  assert.equal(refused.status, 400);
  assert.match(refused.text, /checksum mismatch/);
  assert.equal((await root.read('secret/data/b')).data.data.v, 'bravo');

  const restored = await restore(d, ROOT, snap.body);
  assert.equal(restored.status, 204, restored.text);
  assert.equal((await root.read('secret/data/a')).data.data.v, 'alpha');
  await assert.rejects(root.read('secret/data/b'), (e) => e.response.statusCode === 404);
});

test('snapshots need sudo', async (t) => {
  const { d, root } = await startDevClient(t, ROOT);
  await root.addPolicy({
    name: 'backup-nosudo',
    rules: 'path "sys/storage/raft/snapshot" { capabilities = ["read", "update"] }',
  });
  const token = (await root.tokenCreate({ policies: ['backup-nosudo'] })).auth.client_token;
  root.token = ROOT;
  const client = nodeVault({ endpoint: d.addr, token });
  await assert.rejects(client.read('sys/storage/raft/snapshot'), (e) => e.response.statusCode === 403);
  const snap = await save(d, ROOT);
  assert.equal((await save(d, token)).status, 403);
  assert.equal((await restore(d, token, snap.body)).status, 403);
});
