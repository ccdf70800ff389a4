// End-to-end: Transit ed25519 keys in a Raft cluster of two strongroomd processes with their own
// SoftHSM2 tokens (docs/operations.md, "Transit", on the trade-off). SoftHSM2 2.6.1 cannot wrap
// an Ed25519 private key, so a version lives only in the token of the node that made it: the
// creating request is warned, every node verifies (the public key is replicated), only that
// node's token signs (elsewhere a 400 names the node), AES keys (wrapped, replicated) work
// everywhere, and a trim or delete done by another node leaves the object on record until its
// holder is the active node again and destroys it. Tokens inspected with pkcs11-tool.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const nodeVault = require('node-vault');
const { Daemon, api, portPair } = require('./harness');

const b64 = (s) => Buffer.from(s).toString('base64');
const certsScript = path.join(__dirname, '..', '..', 'packaging', 'cluster-certs.sh');

async function health(d) {
  try {
    return (await fetch(`${d.addr}/v1/sys/health`)).status;
  } catch {
    return 0;
  }
}

async function until(what, check, ms = 60000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// "<key>:v<version>" of each Transit token object in node `d`'s own token.
function transitTokenObjects(d) {
  const out = execFileSync('pkcs11-tool', [
    '--module', '/usr/lib/softhsm/libsofthsm2.so', '--token-label', 'e2e', '--login', '--pin', '4321',
    '--list-objects', '--type', 'privkey',
  ], { env: d.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return [...out.matchAll(/label:\s+strongroom-transit:[0-9a-f-]+:(\S+)/g)].map((m) => m[1]).sort();
}

test('ed25519 versions live in the token of the node that made them; other nodes verify and clean up after it', async (t) => {
  const pki = fs.mkdtempSync(path.join(os.tmpdir(), 'strongroom-e2e-pki-'));
  t.after(() => fs.rmSync(pki, { recursive: true, force: true }));
  execFileSync(certsScript, ['ca', pki], { stdio: 'ignore' });
  const add = async (node) => {
    execFileSync(certsScript, ['node', pki, node, '127.0.0.1'], { stdio: 'ignore' });
    const apiPort = await portPair();
    const d = new Daemon();
    t.after(() => d.destroy());
    d.makeToken({
      raft: {
        node,
        apiPort,
        clusterPort: apiPort + 1,
        certs: { ca: path.join(pki, 'ca.pem'), cert: path.join(pki, `${node}.pem`), key: path.join(pki, `${node}.key`) },
      },
    });
    await d.startConfig();
    return d;
  };
  const n1 = await add('n1');
  const init = await api(n1, null, 'PUT', 'sys/init', { recovery_shares: 1, recovery_threshold: 1 });
  assert.equal(init.status, 200, JSON.stringify(init.body));
  const token = init.body.root_token;
  const v1 = nodeVault({ endpoint: n1.addr, token });
  const minted = await api(n1, token, 'POST', 'sys/storage/raft/join-token', { node_id: 'n2' });
  assert.equal(minted.status, 200, JSON.stringify(minted.body));
  const n2 = await add('n2');
  const joined = await api(n2, null, 'POST', 'sys/storage/raft/join',
                           { leader_api_addr: n1.addr, join_token: minted.body.data.join_token });
  assert.equal(joined.status, 200, JSON.stringify(joined.body) + n2.log);
  await until('n2 as a standby', async () => (await health(n2)) === 429);
  const v2 = nodeVault({ endpoint: n2.addr, token });
  const stepDownTo = async (from, to) => {
    await nodeVault({ endpoint: from.addr, token }).stepDown();
    await until(`${to === n1 ? 'n1' : 'n2'} as the active node`,
                async () => (await health(to)) === 200 && (await health(from)) === 429);
  };

  // On n1: the key is made in n1's token, and the response says what that means.
  await v1.mount({ mount_point: 'transit', type: 'transit' });
  const created = await v1.write('transit/keys/ed', { type: 'ed25519' });
  assert.equal(created.warnings.length, 1, JSON.stringify(created.warnings));
  assert.match(created.warnings[0], /version 1 of ed25519 key ed is kept only in the PKCS#11 token of node "n1"/);
  await v1.write('transit/keys/aes', {});
  const input = b64('signed in a cluster');
  const sig1 = (await v1.write('transit/sign/ed', { input })).data.signature;
  const ct = (await v2.write('transit/encrypt/aes', { plaintext: b64('wrapped keys go everywhere') })).data.ciphertext;
  assert.deepEqual(transitTokenObjects(n1), ['ed:v1']);
  assert.deepEqual(transitTokenObjects(n2), []);

  // n2 active: it verifies and decrypts, but n1's version does not sign here.
  await stepDownTo(n1, n2);
  assert.equal((await v2.write('transit/verify/ed', { input, signature: sig1 })).data.valid, true);
  assert.equal(Buffer.from((await v2.write('transit/decrypt/aes', { ciphertext: ct })).data.plaintext, 'base64').toString(),
               'wrapped keys go everywhere');
  const refused = await api(n2, token, 'POST', 'transit/sign/ed', { input });
  assert.equal(refused.status, 400, JSON.stringify(refused.body));
  assert.match(refused.body.errors[0],
               /^the private key of version 1 of key "ed" is not in this node's PKCS#11 token: .*\(node "n1"\)\. Sign where that token is, or rotate the key/);
  // Rotating on n2 makes a version n2's token holds.
  const rotated = await v2.write('transit/keys/ed/rotate', {});
  assert.match(rotated.warnings[0], /version 2 of ed25519 key ed is kept only in the PKCS#11 token of node "n2"/);
  const sig2 = (await v2.write('transit/sign/ed', { input })).data.signature;
  assert.match(sig2, /^vault:v2:/);
  const pub2 = rotated.data.keys['2'].public_key;
  const spki = (raw) => crypto.createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'),
    Buffer.from(raw, 'base64')]), format: 'der', type: 'spki' });
  assert.equal(crypto.verify(null, Buffer.from(input, 'base64'), spki(pub2), Buffer.from(sig2.split(':')[2], 'base64')), true);
  assert.deepEqual(transitTokenObjects(n2), ['ed:v2']);

  // Trim on n2: v1's object is in n1's token, out of n2's reach; it stays on record for n1 ...
  await v2.write('transit/keys/ed/config', { min_decryption_version: 2, min_encryption_version: 2 });
  await v2.write('transit/keys/ed/trim', { min_available_version: 2 });
  assert.deepEqual(transitTokenObjects(n1), ['ed:v1']);
  // ... which destroys it once it is the active node again.
  await stepDownTo(n2, n1);
  await until('n1 destroying its trimmed version', async () => transitTokenObjects(n1).length === 0, 30000);
  assert.match(n1.log, /transit: destroyed the unused token object "strongroom-transit:[0-9a-f-]+:ed:v1"/);

  // Delete on n1: v2 is in n2's token; n2 destroys it when it is active.
  await v1.write('transit/keys/ed/config', { deletion_allowed: true });
  assert.equal((await api(n1, token, 'DELETE', 'transit/keys/ed')).status, 204);
  assert.deepEqual(transitTokenObjects(n2), ['ed:v2']);
  await stepDownTo(n1, n2);
  await until('n2 destroying the deleted key\'s version', async () => transitTokenObjects(n2).length === 0, 30000);
  assert.deepEqual(transitTokenObjects(n1), []);
});
