// End-to-end: Transit's key types and algorithms beyond AES (issue 20, item 6), driven by
// node-vault's generic read/write (and plain HTTP for exact statuses), signatures and digests
// checked with node:crypto, and the PKCS#11 token inspected with pkcs11-tool.
// Vault API sections: secrets/transit keys (type ed25519, hmac with key_size, rsa-*),
// keys/:name/config (Vault's fields and error texts), sign/verify (hash_algorithm sha1, sha2-*,
// sha3-*, none; prehashed; marshaling_algorithm), hmac (sha1, sha3-*), hash (sha3-*),
// cache-config. strongroom's custody (docs/operations.md, "Transit"): ed25519 private keys stay
// in the token as non-extractable token objects (SoftHSM2 2.6.1 cannot wrap them), one per key
// version, destroyed by trim, key deletion and disabling the mount; what SoftHSM2 2.6.1 cannot
// do inside the token (RSA-OAEP with SHA-256, SHA-3 HMACs, RSA-PSS with SHA-3) is refused with
// a 400 that says so.
'use strict';

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { execFileSync } = require('node:child_process');
const nodeVault = require('node-vault');
const { Daemon, waitDevReady, api } = require('./harness');

const b64 = (s) => Buffer.from(s).toString('base64');
const unb64 = (s) => Buffer.from(s, 'base64').toString();
const SIG = (v) => new RegExp(`^vault:v${v}:[A-Za-z0-9+/]+={0,2}$`);
const rawOf = (versioned) => Buffer.from(versioned.split(':')[2], 'base64');

// A node-vault rejection with this HTTP status and (when given) a first error matching `message`.
const rejected = (code, message) => (err) => {
  assert.ok(err.response, `an HTTP error, not ${err}`);
  assert.equal(err.response.statusCode, code, JSON.stringify(err.response.body));
  if (typeof message === 'string') assert.equal(err.response.body.errors[0], message);
  if (message instanceof RegExp) assert.match(err.response.body.errors[0], message);
  return true;
};

// Vault shows an ed25519 public key as base64 of its 32 raw bytes; node wants an SPKI.
const edPublicKey = (raw) => crypto.createPublicKey({
  key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(raw, 'base64')]),
  format: 'der',
  type: 'spki',
});

describe('transit key types and algorithms on a dev server', () => {
  const ROOT = 'transit-types-root';
  let d;
  let vault;
  const http = (method, p, body) => api(d, ROOT, method, p, body);
  const status400 = async (p, body, pattern) => {
    const res = await http('POST', p, body);
    assert.equal(res.status, 400, `${p}: ${JSON.stringify(res.body)}`);
    if (typeof pattern === 'string') assert.deepEqual(res.body.errors, [pattern]);
    else assert.match(res.body.errors[0], pattern);
    return res;
  };

  before(async () => {
    d = new Daemon();
    await d.startDev(ROOT);
    vault = nodeVault({ endpoint: d.addr, token: ROOT });
    await waitDevReady(vault);
    await vault.mount({ mount_point: 'transit', type: 'transit' });
  });
  after(() => d.destroy());

  test('ed25519: public keys in the key read, Vault-format signatures that verify outside, rotation', async () => {
    const created = await vault.write('transit/keys/ed', { type: 'ed25519' });
    const k = created.data;
    assert.equal(k.type, 'ed25519');
    assert.equal(k.supports_signing, true);
    assert.equal(k.supports_encryption, false);
    assert.equal(k.derived, false);
    assert.equal(k.exportable, false);
    assert.deepEqual(Object.keys(k.keys), ['1']);
    assert.equal(k.keys['1'].name, 'ed25519');
    assert.match(k.keys['1'].creation_time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/);
    const pub1 = k.keys['1'].public_key;
    assert.equal(Buffer.from(pub1, 'base64').length, 32);
    assert.deepEqual((await vault.read('transit/keys/ed')).data.keys, k.keys);

    const input = Buffer.from('release build 1.4.2 of the lobstack agent');
    const signed = await vault.write('transit/sign/ed', { input: input.toString('base64') });
    assert.match(signed.data.signature, SIG(1));
    assert.equal(signed.data.key_version, 1);
    const sig = rawOf(signed.data.signature);
    assert.equal(sig.length, 64);
    assert.equal(crypto.verify(null, input, edPublicKey(pub1), sig), true, 'verifies with the public key alone');
    assert.equal(crypto.verify(null, Buffer.from('release build 1.4.3'), edPublicKey(pub1), sig), false);

    // hash_algorithm does not apply to Ed25519 (Ed25519 is deterministic: the same signature).
    const viaPath = await vault.write('transit/sign/ed/sha2-512', { input: input.toString('base64') });
    assert.equal(viaPath.data.signature, signed.data.signature);
    const viaBody = await vault.write('transit/sign/ed', { input: input.toString('base64'), hash_algorithm: 'sha3-256' });
    assert.equal(viaBody.data.signature, signed.data.signature);
    await status400('transit/sign/ed', { input: input.toString('base64'), hash_algorithm: 'md5' },
                    'invalid hash algorithm "md5"');
    await status400('transit/sign/ed', { input: input.toString('base64'), prehashed: true },
                    /prehashed is not supported for ed25519 keys/);

    const ok = await vault.write('transit/verify/ed', { input: input.toString('base64'), signature: signed.data.signature });
    assert.equal(ok.data.valid, true);
    const bad = await vault.write('transit/verify/ed', { input: b64('other'), signature: signed.data.signature });
    assert.equal(bad.data.valid, false);

    // JWS marshaling changes the encoding only: base64url without padding.
    const jws = await vault.write('transit/sign/ed', { input: input.toString('base64'), marshaling_algorithm: 'jws' });
    assert.match(jws.data.signature, /^vault:v1:[A-Za-z0-9_-]+$/);
    assert.equal(crypto.verify(null, input, edPublicKey(pub1), Buffer.from(jws.data.signature.split(':')[2], 'base64url')), true);
    assert.equal((await vault.write('transit/verify/ed', {
      input: input.toString('base64'), signature: jws.data.signature, marshaling_algorithm: 'jws',
    })).data.valid, true);

    // Batch sign keeps references.
    const batch = await vault.write('transit/sign/ed', {
      batch_input: [{ input: b64('a'), reference: 'r1' }, { input: b64('b'), reference: 'r2' }],
    });
    assert.deepEqual(batch.data.batch_results.map((r) => r.reference), ['r1', 'r2']);
    assert.equal(crypto.verify(null, Buffer.from('b'), edPublicKey(pub1), rawOf(batch.data.batch_results[1].signature)), true);

    // Rotation: a new key pair; v1 signatures still verify, key_version picks the old one.
    const rotated = await vault.write('transit/keys/ed/rotate', {});
    assert.equal(rotated.data.latest_version, 2);
    const pub2 = rotated.data.keys['2'].public_key;
    assert.notEqual(pub2, pub1);
    assert.equal(rotated.data.keys['1'].public_key, pub1);
    const s2 = await vault.write('transit/sign/ed', { input: input.toString('base64') });
    assert.match(s2.data.signature, SIG(2));
    assert.equal(crypto.verify(null, input, edPublicKey(pub2), rawOf(s2.data.signature)), true);
    assert.equal(crypto.verify(null, input, edPublicKey(pub1), rawOf(s2.data.signature)), false);
    assert.equal((await vault.write('transit/verify/ed', { input: input.toString('base64'), signature: signed.data.signature })).data.valid, true);
    const old = await vault.write('transit/sign/ed', { input: input.toString('base64'), key_version: 1 });
    assert.equal(old.data.signature, signed.data.signature);

    await status400('transit/encrypt/ed', { plaintext: b64('x') }, 'key type ed25519 does not support encryption');
    await status400('transit/keys/ed-derived', { type: 'ed25519', derived: true }, /derived keys are not supported/);
  });

  test('hash algorithms: sha3-* and sha1 where Vault has them, inside the token where it has them', async () => {
    const data = Buffer.from('the quick brown fox');
    // transit/hash (unkeyed): sha3-* too; Vault's list there has no sha1.
    for (const [alg, node] of [['sha3-224', 'sha3-224'], ['sha3-256', 'sha3-256'], ['sha3-384', 'sha3-384'],
      ['sha3-512', 'sha3-512'], ['sha2-224', 'sha224']]) {
      const res = await vault.write(`transit/hash/${alg}`, { input: data.toString('base64') });
      assert.equal(res.data.sum, crypto.createHash(node).update(data).digest('hex'), alg);
    }
    await status400('transit/hash/sha1', { input: data.toString('base64') }, 'unsupported algorithm sha1');

    // ECDSA: the digest is computed outside (nothing secret in it), signed in the token.
    await vault.write('transit/keys/ec', { type: 'ecdsa-p256' });
    const pem = (await vault.read('transit/keys/ec')).data.keys['1'].public_key;
    for (const [alg, node] of [['sha1', 'sha1'], ['sha3-256', 'sha3-256'], ['sha3-512', 'sha3-512'], ['sha2-224', 'sha224']]) {
      const s = await vault.write(`transit/sign/ec/${alg}`, { input: data.toString('base64') });
      assert.equal(crypto.verify(node, data, pem, rawOf(s.data.signature)), true, alg);
      assert.equal((await vault.write('transit/verify/ec', {
        input: data.toString('base64'), signature: s.data.signature, hash_algorithm: alg,
      })).data.valid, true, alg);
      assert.equal((await vault.write('transit/verify/ec', {
        input: data.toString('base64'), signature: s.data.signature, hash_algorithm: alg === 'sha1' ? 'sha2-256' : 'sha1',
      })).data.valid, false, `${alg} is not another hash`);
    }
    const digest = crypto.createHash('sha3-256').update(data).digest();
    const pre = await vault.write('transit/sign/ec/sha3-256', { input: digest.toString('base64'), prehashed: true });
    assert.equal(crypto.verify('sha3-256', data, pem, rawOf(pre.data.signature)), true);
    await status400('transit/sign/ec', { input: b64('x'), hash_algorithm: 'none' },
                    'hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15');

    // RSA: PKCS#1 v1.5 with any of them (the DigestInfo is built outside, the RSA operation runs
    // inside); PSS with sha1 and SHA-2; PSS with SHA-3 is refused by SoftHSM2 2.6.1, which says so.
    await vault.write('transit/keys/rsa', { type: 'rsa-2048' });
    const rsaPem = (await vault.read('transit/keys/rsa')).data.keys['1'].public_key;
    for (const [alg, node] of [['sha3-256', 'sha3-256'], ['sha1', 'sha1'], ['sha3-512', 'sha3-512']]) {
      const s = await vault.write(`transit/sign/rsa/${alg}`, { input: data.toString('base64'), signature_algorithm: 'pkcs1v15' });
      assert.equal(crypto.verify(node, data, { key: rsaPem, padding: crypto.constants.RSA_PKCS1_PADDING },
                                 rawOf(s.data.signature)), true, alg);
      assert.equal((await vault.write(`transit/verify/rsa/${alg}`, {
        input: data.toString('base64'), signature: s.data.signature, signature_algorithm: 'pkcs1v15',
      })).data.valid, true, alg);
    }
    const pss1 = await vault.write('transit/sign/rsa/sha1', { input: data.toString('base64') });
    assert.equal(crypto.verify('sha1', data, {
      key: rsaPem, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: crypto.constants.RSA_PSS_SALTLEN_AUTO,
    }, rawOf(pss1.data.signature)), true);
    await status400('transit/sign/rsa/sha3-256', { input: data.toString('base64') },
                    /^RSA-PSS signatures with sha3-256 are not available: they have to be made inside the PKCS#11 token, and this PKCS#11 token does not offer .*\(C_SignInit: CKR_ARGUMENTS_BAD\); pkcs1v15 signatures with sha3-256 are$/);
    // hash_algorithm none: a prehashed DigestInfo (or anything) signed as given, pkcs1v15 only.
    const info = Buffer.concat([Buffer.from('3031300d060960864801650304020105000420', 'hex'),
      crypto.createHash('sha256').update(data).digest()]);
    const none = await vault.write('transit/sign/rsa/none', {
      input: info.toString('base64'), prehashed: true, signature_algorithm: 'pkcs1v15',
    });
    assert.equal(crypto.verify('sha256', data, { key: rsaPem, padding: crypto.constants.RSA_PKCS1_PADDING },
                               rawOf(none.data.signature)), true);
    await status400('transit/sign/rsa/none', { input: info.toString('base64'), prehashed: true },
                    'hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15');

    // HMAC, keyed, only inside the token: sha1 and SHA-2 there; SHA-3 refused with the reason.
    await vault.write('transit/keys/mac', { type: 'hmac', key_size: 64 });
    const mac1 = await vault.write('transit/hmac/mac/sha1', { input: data.toString('base64') });
    assert.match(mac1.data.hmac, SIG(1));
    assert.equal(rawOf(mac1.data.hmac).length, 20);
    assert.equal((await vault.write('transit/hmac/mac', { input: data.toString('base64'), algorithm: 'sha1' })).data.hmac,
                 mac1.data.hmac);
    assert.equal((await vault.write('transit/verify/mac/sha1', { input: data.toString('base64'), hmac: mac1.data.hmac })).data.valid, true);
    assert.equal((await vault.write('transit/verify/mac', { input: data.toString('base64'), hmac: mac1.data.hmac })).data.valid, false,
                 'a sha1 HMAC is not a sha2-256 one');
    assert.equal(rawOf((await vault.write('transit/hmac/mac/sha2-224', { input: data.toString('base64') })).data.hmac).length, 28);
    for (const alg of ['sha3-224', 'sha3-256', 'sha3-384', 'sha3-512']) {
      await status400(`transit/hmac/mac/${alg}`, { input: data.toString('base64') },
                      new RegExp(`^HMAC with ${alg} is not available: this PKCS#11 token has no mechanism for it`));
    }
    await status400('transit/hmac/mac/none', { input: data.toString('base64') }, 'unsupported algorithm none');
    await status400('transit/hmac/mac/md5', { input: data.toString('base64') }, 'unsupported algorithm md5');
    // Other key types HMAC with their per-version HMAC key, sha1 included.
    const ecMac = await vault.write('transit/hmac/ec/sha1', { input: data.toString('base64') });
    assert.equal(rawOf(ecMac.data.hmac).length, 20);
  });

  test('hmac keys take Vault\'s key_size', async () => {
    const dflt = await vault.write('transit/keys/h32', { type: 'hmac' });
    assert.equal(dflt.data.key_size, 32);
    assert.equal(dflt.data.supports_signing, false);
    assert.equal(dflt.data.keys, undefined);
    const big = await vault.write('transit/keys/h512', { type: 'hmac', key_size: 512 });
    assert.equal(big.data.key_size, 512);
    const mac = await vault.write('transit/hmac/h512/sha2-512', { input: b64('m') });
    assert.equal(rawOf(mac.data.hmac).length, 64);
    await status400('transit/keys/h31', { type: 'hmac', key_size: 31 }, 'invalid key_size 31');
    await status400('transit/keys/h513', { type: 'hmac', key_size: 513 }, 'invalid key_size 513');
    await status400('transit/keys/aes-sized', { type: 'aes256-gcm96', key_size: 64 },
                    'key_size is not valid for algorithm aes256-gcm96');
    assert.equal((await http('GET', 'transit/keys/aes-sized')).status, 404);
    // SoftHSM2 wants an HMAC key at least as long as the digest: a 32-byte key does sha2-256,
    // not sha2-512 (refused, never computed outside the token).
    assert.equal(rawOf((await vault.write('transit/hmac/h32', { input: b64('m') })).data.hmac).length, 32);
    await status400('transit/hmac/h32/sha2-512', { input: b64('m') },
                    'key_size 32 is too small for sha2-512 in the token; it needs a key of at least 64 bytes');
  });

  test('RSA encryption: Vault\'s RSA-OAEP with SHA-256 must run in the token; SoftHSM2 2.6.1 cannot, and the 400 says so', async () => {
    await vault.write('transit/keys/rsa-enc', { type: 'rsa-3072' });
    const key = (await vault.read('transit/keys/rsa-enc')).data;
    assert.equal(key.supports_encryption, false, 'not with this token');
    assert.equal(key.supports_signing, true);
    const why = /^rsa keys sign and verify only here: Vault's RSA encryption \(RSA-OAEP with SHA-256\) has to run inside the PKCS#11 token, and this PKCS#11 token does not offer RSA-OAEP with SHA-256 \(C_(En|De)cryptInit: CKR_ARGUMENTS_BAD\)$/;
    await status400('transit/encrypt/rsa-enc', { plaintext: b64('x') }, why);
    await assert.rejects(vault.write('transit/encrypt/rsa-enc', { plaintext: b64('x') }), rejected(400, why));
    // A ciphertext in Vault's format, made by a client with the public key, is refused alike.
    const ct = crypto.publicEncrypt({ key: key.keys['1'].public_key, oaepHash: 'sha256',
      padding: crypto.constants.RSA_PKCS1_OAEP_PADDING }, Buffer.from('x'));
    await status400('transit/decrypt/rsa-enc', { ciphertext: `vault:v1:${ct.toString('base64')}` }, why);
    await status400('transit/datakey/plaintext/rsa-enc', {}, why);
    await status400('transit/encrypt/rsa-enc', { plaintext: b64('x'), associated_data: b64('ad') },
                    'associated_data is not supported for key type rsa-3072');
  });

  test('keys/:name/config: Vault\'s fields and texts; what would export a key is refused', async () => {
    await vault.write('transit/keys/cfg', {});
    await vault.write('transit/keys/cfg/rotate', {});
    await vault.write('transit/keys/cfg/rotate', {});
    const zero = await vault.write('transit/keys/cfg/config', { min_decryption_version: 0 });
    assert.equal(zero.data.min_decryption_version, 1);
    assert.deepEqual(zero.warnings, ['transit key numbering starts at 1; forcing minimum to 1']);
    await status400('transit/keys/cfg/config', { min_decryption_version: -1 }, 'min decryption version cannot be negative');
    await status400('transit/keys/cfg/config', { min_encryption_version: -1 }, 'min encryption version cannot be negative');
    await status400('transit/keys/cfg/config', { min_decryption_version: 5 },
                    'cannot set min decryption version of 5, latest key version is 3');
    await status400('transit/keys/cfg/config', { min_encryption_version: 5 },
                    'cannot set min encryption version of 5, latest key version is 3');
    await status400('transit/keys/cfg/config', { min_decryption_version: 3, min_encryption_version: 2 },
                    'cannot set min encryption/decryption values; min encryption version of 2 must be greater than or equal to min decryption version of 3');
    const set = await vault.write('transit/keys/cfg/config', {
      min_decryption_version: 2, min_encryption_version: 3, deletion_allowed: true, auto_rotate_period: '24h',
      exportable: false, allow_plaintext_backup: false,
    });
    assert.equal(set.data.min_decryption_version, 2);
    assert.equal(set.data.min_encryption_version, 3);
    assert.equal(set.data.deletion_allowed, true);
    assert.equal(set.data.auto_rotate_period, 86400);
    assert.equal(set.data.exportable, false);
    const read = (await vault.read('transit/keys/cfg')).data;
    assert.equal(read.min_encryption_version, 3);
    assert.equal(read.auto_rotate_period, 86400);
    await status400('transit/keys/cfg/config', { exportable: true }, /exportable is not supported: Transit keys never leave the token/);
    await status400('transit/keys/cfg/config', { allow_plaintext_backup: true }, /allow_plaintext_backup is not supported/);
    await status400('transit/keys/cfg/config', { auto_rotate_period: '5m' }, 'auto rotate period must be 0 to disable or at least an hour');
    assert.equal((await vault.read('transit/keys/cfg')).data.exportable, false);
    await status400('transit/keys/nope/config', { deletion_allowed: true }, 'no existing key named nope could be found');
  });

  test('cache-config: Vault\'s size (0 or at least 10); a bounded cache evicts and keys keep working', async () => {
    assert.deepEqual((await vault.read('transit/cache-config')).data, { size: 0 });
    await status400('transit/cache-config', { size: 5 }, 'size must be 0 or a value greater or equal to 10');
    const set = await vault.write('transit/cache-config', { size: 10 });
    assert.deepEqual(set.data, { size: 10 });
    assert.deepEqual((await vault.read('transit/cache-config')).data, { size: 10 });
    // More keys than the cache holds: each one still encrypts and decrypts (evicted keys are
    // loaded again and their versions unwrapped into the token again).
    const cts = [];
    for (let i = 0; i < 14; i += 1) {
      await vault.write(`transit/keys/c${i}`, {});
      cts.push((await vault.write(`transit/encrypt/c${i}`, { plaintext: b64(`p${i}`) })).data.ciphertext);
    }
    for (let i = 0; i < 14; i += 1) {
      assert.equal(unb64((await vault.write(`transit/decrypt/c${i}`, { ciphertext: cts[i] })).data.plaintext), `p${i}`);
    }
    await vault.write('transit/keys/c0/rotate', {});  // a write on a key loaded again is kept
    assert.equal((await vault.read('transit/keys/c0')).data.latest_version, 2);
    assert.deepEqual((await vault.write('transit/cache-config', { size: 0 })).data, { size: 0 });
  });
});

// A configured (non-dev) appliance, so its token can be looked into and the same data
// directory and token started again.
async function configuredAppliance(t) {
  const d = new Daemon();
  t.after(() => d.destroy());
  d.makeToken();
  await d.startConfig();
  const init = await nodeVault({ endpoint: d.addr }).request({
    path: '/sys/init', method: 'PUT', json: { recovery_shares: 1, recovery_threshold: 1 },
  });
  const vault = nodeVault({ endpoint: d.addr, token: init.root_token });
  await vault.mount({ mount_point: 'transit', type: 'transit' });
  return { d, vault, root: init.root_token };
}

// The Transit token objects in the appliance's token, by what their label names
// ("<key>:v<version>"), read with pkcs11-tool (OpenSC) from outside the appliance.
function transitTokenObjects(d) {
  const out = execFileSync('pkcs11-tool', [
    '--module', '/usr/lib/softhsm/libsofthsm2.so', '--token-label', 'e2e', '--login', '--pin', '4321',
    '--list-objects', '--type', 'privkey',
  ], { env: d.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return [...out.matchAll(/label:\s+strongroom-transit:[0-9a-f-]+:(\S+)/g)].map((m) => m[1]).sort();
}

test('ed25519 versions are token objects: rotation makes one, trim and delete destroy them, a restart keeps them working', async (t) => {
  const { d, vault, root } = await configuredAppliance(t);
  assert.deepEqual(transitTokenObjects(d), []);
  const created = await vault.write('transit/keys/ed', { type: 'ed25519' });
  assert.equal(created.warnings, null, 'a single node: nothing to warn about');
  await vault.write('transit/keys/ed/rotate', {});
  await vault.write('transit/keys/ed/rotate', {});
  assert.deepEqual(transitTokenObjects(d), ['ed:v1', 'ed:v2', 'ed:v3']);
  // AES and other wrapped keys leave nothing in the token.
  await vault.write('transit/keys/aes', {});
  await vault.write('transit/keys/ec', { type: 'ecdsa-p384' });
  assert.deepEqual(transitTokenObjects(d), ['ed:v1', 'ed:v2', 'ed:v3']);

  const keys = (await vault.read('transit/keys/ed')).data.keys;
  const input = Buffer.from('signed before the restart');
  const sigs = {};
  for (const v of [1, 2, 3]) {
    sigs[v] = (await vault.write('transit/sign/ed', { input: input.toString('base64'), key_version: v })).data.signature;
    assert.match(sigs[v], SIG(v));
  }
  await vault.write('transit/cache-config', { size: 20 });

  // Restart: the objects are the keys; they still sign, for the same public keys.
  assert.equal(await d.stop(), 0);
  await d.startConfig();
  const again = nodeVault({ endpoint: d.addr, token: root });
  assert.deepEqual(transitTokenObjects(d), ['ed:v1', 'ed:v2', 'ed:v3']);
  assert.deepEqual((await again.read('transit/keys/ed')).data.keys, keys);
  for (const v of [1, 3]) {
    const s = (await again.write('transit/sign/ed', { input: input.toString('base64'), key_version: v })).data.signature;
    assert.equal(s, sigs[v], 'Ed25519 is deterministic: the same key gives the same signature');
    assert.equal(crypto.verify(null, input, edPublicKey(keys[String(v)].public_key), rawOf(s)), true);
  }
  assert.deepEqual((await again.read('transit/cache-config')).data, { size: 20 });

  // Trim destroys the objects of the versions it removes, and only those.
  await again.write('transit/keys/ed/config', { min_decryption_version: 3, min_encryption_version: 3 });
  const trimmed = await again.write('transit/keys/ed/trim', { min_available_version: 3 });
  assert.deepEqual(Object.keys(trimmed.data.keys), ['3']);
  assert.deepEqual(transitTokenObjects(d), ['ed:v3']);
  await assert.rejects(again.write('transit/verify/ed', { input: input.toString('base64'), signature: sigs[1] }),
                       rejected(400, 'ciphertext or signature version is disallowed by policy (too old)'));
  assert.equal((await again.write('transit/verify/ed', { input: input.toString('base64'), signature: sigs[3] })).data.valid, true);
  await again.write('transit/keys/ed/rotate', {});
  assert.deepEqual(transitTokenObjects(d), ['ed:v3', 'ed:v4']);

  // Deleting the key destroys the rest.
  await again.write('transit/keys/ed/config', { deletion_allowed: true });
  const del = await api(d, root, 'DELETE', 'transit/keys/ed');
  assert.equal(del.status, 204, JSON.stringify(del.body));
  assert.deepEqual(transitTokenObjects(d), []);
  await assert.rejects(again.read('transit/keys/ed'), rejected(404));

  // A key made again under the same name gets new objects (and new public keys).
  const reborn = await again.write('transit/keys/ed', { type: 'ed25519' });
  assert.notEqual(reborn.data.keys['1'].public_key, keys['1'].public_key);
  assert.deepEqual(transitTokenObjects(d), ['ed:v1']);

  // Disabling the mount destroys its objects too; another mount's stay.
  await again.mount({ mount_point: 'transit2', type: 'transit' });
  await again.write('transit2/keys/other', { type: 'ed25519' });
  assert.deepEqual(transitTokenObjects(d), ['ed:v1', 'other:v1']);
  await again.unmount({ mount_point: 'transit' });
  assert.deepEqual(transitTokenObjects(d), ['other:v1']);
  const s = await again.write('transit2/sign/other', { input: b64('still here') });
  assert.match(s.data.signature, SIG(1));
});
