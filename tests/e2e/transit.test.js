// End-to-end: the Transit secrets engine driven by node-vault (its own encryptData, decryptData,
// rewrapData and transit*Key commands, and generic write/read/list for the rest) and by plain
// HTTP, for status codes and bodies exactly as sent.
// Vault API sections: secrets/transit (keys, keys/:name/config|rotate|trim, encrypt, decrypt,
// rewrap, datakey, hmac, verify, sign, random, hash, cache-config); key types ed25519 (kept as
// token objects: their lifecycle checked in the token with pkcs11-tool), hmac (key_size), RSA;
// hash algorithms sha1 and sha3-*; strongroom's refusals (export, backup, exportable, derived,
// what the token cannot do) and its per-version nonce budget (docs/operations.md, "Transit").
'use strict';

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const nodeVault = require('node-vault');
const { Daemon, waitDevReady, api } = require('./harness');

const b64 = (s) => Buffer.from(s).toString('base64');
const unb64 = (s) => Buffer.from(s, 'base64').toString();
const CT = (v) => new RegExp(`^vault:v${v}:[A-Za-z0-9+/]+={0,2}$`);
const NINETY_DAYS = 90 * 24 * 3600;  // "2160h" in seconds: 7776000

// A node-vault rejection with this HTTP status and (when given) exactly this first error.
const rejected = (code, message) => (err) => {
  assert.ok(err.response, `an HTTP error, not ${err}`);
  assert.equal(err.response.statusCode, code, JSON.stringify(err.response.body));
  if (message !== undefined) assert.equal(err.response.body.errors[0], message);
  return true;
};

// Flip one bit of the sealed bytes of a "vault:vN:<base64>" ciphertext (past the nonce).
function tamper(ciphertext) {
  const i = ciphertext.lastIndexOf(':');
  const raw = Buffer.from(ciphertext.slice(i + 1), 'base64');
  raw[raw.length - 20] ^= 0x01;
  return `${ciphertext.slice(0, i + 1)}${raw.toString('base64')}`;
}

describe('transit on a dev server', () => {
  const ROOT = 'transit-e2e-root';
  let d;
  let vault;
  const http = (method, p, body) => api(d, ROOT, method, p, body);

  before(async () => {
    d = new Daemon();
    await d.startDev(ROOT);
    vault = nodeVault({ endpoint: d.addr, token: ROOT });
    await waitDevReady(vault);
    // Dev mode mounts only secret/; Transit is mounted as in Vault.
    const mounted = await http('PUT', 'sys/mounts/transit', { type: 'transit' });
    assert.equal(mounted.status, 204, JSON.stringify(mounted.body));
    assert.equal((await vault.mounts()).data['transit/'].type, 'transit');
  });
  after(() => d.destroy());

  test('the reference keys lobstack and agent-data: 90-day auto-rotation, create, read, list, delete', async () => {
    // node-vault's transitCreateKey sends its arguments as the body (name too, which is ignored).
    const created = await vault.transitCreateKey({ name: 'lobstack', auto_rotate_period: '2160h' });
    assert.equal(created.data.name, 'lobstack');
    assert.equal(created.data.type, 'aes256-gcm96');
    assert.equal(created.data.auto_rotate_period, NINETY_DAYS);
    assert.equal(created.warnings, null);
    const raw = await http('POST', 'transit/keys/agent-data', { type: 'aes256-gcm96', auto_rotate_period: '2160h' });
    assert.equal(raw.status, 200, JSON.stringify(raw.body));
    assert.equal(raw.body.data.auto_rotate_period, 7776000);

    const now = Math.floor(Date.now() / 1000);
    for (const name of ['lobstack', 'agent-data']) {
      const k = (await vault.transitReadKey({ name })).data;
      assert.equal(k.name, name);
      assert.equal(k.type, 'aes256-gcm96');
      assert.equal(k.auto_rotate_period, 7776000);
      assert.equal(k.latest_version, 1);
      assert.equal(k.min_decryption_version, 1);
      assert.equal(k.min_encryption_version, 0);
      assert.equal(k.min_available_version, 0);
      assert.equal(k.deletion_allowed, false);
      assert.equal(k.exportable, false);
      assert.equal(k.allow_plaintext_backup, false);
      assert.equal(k.derived, false);
      assert.equal(k.supports_encryption, true);
      assert.equal(k.supports_decryption, true);
      assert.equal(k.supports_signing, false);
      assert.deepEqual(Object.keys(k.keys), ['1']);
      assert.equal(typeof k.keys['1'], 'number');
      assert.ok(Math.abs(k.keys['1'] - now) < 120, `key version 1 created at ${k.keys['1']}, now ${now}`);
    }
    const viaRead = await http('GET', 'transit/keys/lobstack');
    assert.equal(viaRead.status, 200);
    assert.equal(viaRead.body.data.auto_rotate_period, 7776000);
    assert.equal(viaRead.body.mount_type, 'transit');

    // Creating again changes nothing and says so, as Vault does.
    const again = await vault.write('transit/keys/lobstack', { type: 'aes128-gcm96' });
    assert.deepEqual(again.warnings, ['key lobstack already existed']);
    assert.equal(again.data.type, 'aes256-gcm96');
    assert.equal(again.data.latest_version, 1);

    const small = await vault.write('transit/keys/small', { type: 'aes128-gcm96' });
    assert.equal(small.data.type, 'aes128-gcm96');
    assert.equal(small.data.auto_rotate_period, 0);

    const listed = await vault.transitListKeys();
    for (const name of ['lobstack', 'agent-data', 'small']) assert.ok(listed.data.keys.includes(name), name);
    assert.ok((await vault.list('transit/keys')).data.keys.includes('agent-data'));
    const listedRaw = await http('LIST', 'transit/keys');
    assert.equal(listedRaw.status, 200);
    assert.ok(listedRaw.body.data.keys.includes('lobstack'));

    // Deletion is refused until the key's config allows it.
    await assert.rejects(vault.transitDeleteKey({ name: 'small' }),
                         rejected(400, 'error deleting policy small: deletion is not allowed for this key'));
    const cfg = await vault.write('transit/keys/small/config', { deletion_allowed: true });
    assert.equal(cfg.data.deletion_allowed, true);
    const del = await http('DELETE', 'transit/keys/small');
    assert.equal(del.status, 204, JSON.stringify(del.body));
    await assert.rejects(vault.transitReadKey({ name: 'small' }), rejected(404));
    assert.ok(!(await vault.transitListKeys()).data.keys.includes('small'));
    await assert.rejects(vault.transitDeleteKey({ name: 'nope' }),
                         rejected(400, 'error deleting policy nope: could not delete key; not found'));
  });

  test('encrypt and decrypt round trip through node-vault and plain HTTP', async () => {
    await vault.transitCreateKey({ name: 'rt' });
    const secret = 'sk-live-lobstack-0123456789';
    const enc = await vault.encryptData({ name: 'rt', plaintext: b64(secret) });
    assert.match(enc.data.ciphertext, CT(1));
    assert.equal(enc.data.key_version, 1);
    assert.ok(!enc.data.ciphertext.includes(b64(secret)));
    const dec = await vault.decryptData({ name: 'rt', ciphertext: enc.data.ciphertext });
    assert.equal(unb64(dec.data.plaintext), secret);

    // Random nonces: the same plaintext never gives the same ciphertext.
    const enc2 = await vault.encryptData({ name: 'rt', plaintext: b64(secret) });
    assert.notEqual(enc2.data.ciphertext, enc.data.ciphertext);

    // Binary and empty plaintexts survive.
    const bin = crypto.randomBytes(257);
    const encBin = await http('POST', 'transit/encrypt/rt', { plaintext: bin.toString('base64') });
    assert.equal(encBin.status, 200, JSON.stringify(encBin.body));
    const decBin = await http('POST', 'transit/decrypt/rt', { ciphertext: encBin.body.data.ciphertext });
    assert.equal(decBin.status, 200);
    assert.deepEqual(Buffer.from(decBin.body.data.plaintext, 'base64'), bin);
    const encEmpty = await vault.encryptData({ name: 'rt', plaintext: '' });
    assert.equal((await vault.decryptData({ name: 'rt', ciphertext: encEmpty.data.ciphertext })).data.plaintext, '');

    // associated_data is bound: the same AD decrypts, another or none does not.
    const ad = b64('tenant=lobstack');
    const encAd = await vault.encryptData({ name: 'rt', plaintext: b64(secret), associated_data: ad });
    assert.equal(unb64((await vault.decryptData({ name: 'rt', ciphertext: encAd.data.ciphertext, associated_data: ad })).data.plaintext),
                 secret);

    // The reference keys encrypt too (the agent-data key, via node-vault).
    await vault.transitCreateKey({ name: 'agent-data', auto_rotate_period: '2160h' });
    const agent = await vault.encryptData({ name: 'agent-data', plaintext: b64('{"memory":"x"}') });
    assert.equal(unb64((await vault.decryptData({ name: 'agent-data', ciphertext: agent.data.ciphertext })).data.plaintext),
                 '{"memory":"x"}');
    // A ciphertext is bound to its key: another key's decrypt refuses it.
    await assert.rejects(vault.decryptData({ name: 'agent-data', ciphertext: enc.data.ciphertext }),
                         rejected(400, 'cipher: message authentication failed'));

    // Vault's upsert: encrypt to a missing key with the create capability (root) creates it.
    const upsert = await http('POST', 'transit/encrypt/born-on-encrypt', { plaintext: b64('hi') });
    assert.equal(upsert.status, 200, JSON.stringify(upsert.body));
    assert.match(upsert.body.data.ciphertext, CT(1));
    assert.equal((await vault.transitReadKey({ name: 'born-on-encrypt' })).data.type, 'aes256-gcm96');
  });

  test('rotate: new ciphertexts say v2, v1 still decrypts, rewrap moves v1 to v2', async () => {
    await vault.transitCreateKey({ name: 'lobstack', auto_rotate_period: '2160h' });
    const before = await vault.transitReadKey({ name: 'lobstack' });
    const v1 = await vault.encryptData({ name: 'lobstack', plaintext: b64('before rotation') });
    assert.match(v1.data.ciphertext, new RegExp(`^vault:v${before.data.latest_version}:`));
    const start = before.data.latest_version;

    const rotated = await vault.write('transit/keys/lobstack/rotate', {});
    assert.equal(rotated.data.latest_version, start + 1);
    const read = (await vault.transitReadKey({ name: 'lobstack' })).data;
    assert.equal(read.latest_version, start + 1);
    assert.deepEqual(Object.keys(read.keys).map(Number), Array.from({ length: start + 1 }, (_, i) => i + 1));
    assert.equal(read.auto_rotate_period, 7776000, 'rotation keeps the configured period');

    const v2 = await vault.encryptData({ name: 'lobstack', plaintext: b64('after rotation') });
    assert.match(v2.data.ciphertext, CT(start + 1));
    assert.equal(v2.data.key_version, start + 1);
    assert.equal(unb64((await vault.decryptData({ name: 'lobstack', ciphertext: v1.data.ciphertext })).data.plaintext),
                 'before rotation');
    assert.equal(unb64((await vault.decryptData({ name: 'lobstack', ciphertext: v2.data.ciphertext })).data.plaintext),
                 'after rotation');

    // node-vault's rewrapData: the same plaintext under the latest version.
    const rewrapped = await vault.rewrapData({ name: 'lobstack', ciphertext: v1.data.ciphertext });
    assert.match(rewrapped.data.ciphertext, CT(start + 1));
    assert.equal(rewrapped.data.key_version, start + 1);
    assert.equal(unb64((await vault.decryptData({ name: 'lobstack', ciphertext: rewrapped.data.ciphertext })).data.plaintext),
                 'before rotation');

    // An explicit older key_version still encrypts (nothing forbids it yet).
    const old = await http('POST', 'transit/encrypt/lobstack', { plaintext: b64('pinned'), key_version: start });
    assert.equal(old.status, 200, JSON.stringify(old.body));
    assert.match(old.body.data.ciphertext, CT(start));
    assert.equal(old.body.data.key_version, start);
    const future = await http('POST', 'transit/encrypt/lobstack', { plaintext: b64('x'), key_version: start + 5 });
    assert.equal(future.status, 400);
    assert.deepEqual(future.body.errors, ['invalid key version']);

    // min_encryption_version forbids encrypting with older versions.
    await vault.write('transit/keys/lobstack/config', { min_encryption_version: start + 1 });
    const refused = await http('POST', 'transit/encrypt/lobstack', { plaintext: b64('x'), key_version: start });
    assert.equal(refused.status, 400);
    assert.deepEqual(refused.body.errors,
                     ['requested version for encryption is less than the minimum encryption key version']);
    await vault.write('transit/keys/lobstack/config', { min_encryption_version: 0 });
  });

  test('batch encrypt with one bad item: 400, the item\'s error, the others succeed, references kept', async () => {
    await vault.transitCreateKey({ name: 'batch' });
    const batch_input = [
      { plaintext: b64('first'), reference: 'ref-1' },
      { plaintext: 'this is *not* base64!', reference: 'ref-2' },
      { plaintext: b64('third'), reference: 'ref-3' },
    ];
    const res = await http('POST', 'transit/encrypt/batch', { batch_input });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    const results = res.body.data.batch_results;
    assert.equal(results.length, 3);
    assert.deepEqual(results.map((r) => r.reference), ['ref-1', 'ref-2', 'ref-3']);
    assert.equal(results[1].error, 'failed to base64-decode plaintext');
    assert.equal(results[1].ciphertext, undefined);
    for (const i of [0, 2]) {
      assert.match(results[i].ciphertext, CT(1));
      assert.equal(results[i].key_version, 1);
      assert.ok(!results[i].error, `item ${i} has no error: ${results[i].error}`);
    }

    // node-vault sees the 400 as a rejection and keeps the body for the caller.
    await assert.rejects(vault.encryptData({ name: 'batch', batch_input }), (err) => {
      assert.equal(err.response.statusCode, 400);
      assert.equal(err.response.body.data.batch_results[1].error, 'failed to base64-decode plaintext');
      assert.match(err.response.body.data.batch_results[0].ciphertext, CT(1));
      return true;
    });

    // partial_failure_response_code turns a partial failure into that status.
    const partial = await http('POST', 'transit/encrypt/batch', { batch_input, partial_failure_response_code: 207 });
    assert.equal(partial.status, 207, JSON.stringify(partial.body));
    assert.equal(partial.body.data.batch_results[1].error, 'failed to base64-decode plaintext');
    assert.match(partial.body.data.batch_results[2].ciphertext, CT(1));

    // All good: 200, in order, references kept; batch decrypt gives the plaintexts back.
    const good = await vault.encryptData({
      name: 'batch',
      batch_input: [{ plaintext: b64('a'), reference: 'x' }, { plaintext: b64('b'), reference: 'y' }],
    });
    assert.deepEqual(good.data.batch_results.map((r) => r.reference), ['x', 'y']);
    const decrypted = await vault.decryptData({
      name: 'batch',
      batch_input: [
        { ciphertext: good.data.batch_results[1].ciphertext, reference: 'y' },
        { ciphertext: results[0].ciphertext, reference: 'first' },
      ],
    });
    assert.deepEqual(decrypted.data.batch_results.map((r) => [r.reference, unb64(r.plaintext)]),
                     [['y', 'b'], ['first', 'first']]);

    // A batch decrypt with one tampered item: 400, its error, the rest decrypt.
    const mixed = await http('POST', 'transit/decrypt/batch', {
      batch_input: [
        { ciphertext: results[2].ciphertext, reference: 'ok' },
        { ciphertext: tamper(results[0].ciphertext), reference: 'bad' },
      ],
    });
    assert.equal(mixed.status, 400, JSON.stringify(mixed.body));
    assert.equal(unb64(mixed.body.data.batch_results[0].plaintext), 'third');
    assert.equal(mixed.body.data.batch_results[0].reference, 'ok');
    assert.equal(mixed.body.data.batch_results[1].error, 'cipher: message authentication failed');
    assert.equal(mixed.body.data.batch_results[1].reference, 'bad');

    // Batch rewrap after a rotation.
    await vault.write('transit/keys/batch/rotate', {});
    const rewrapped = await vault.rewrapData({
      name: 'batch', batch_input: [{ ciphertext: results[0].ciphertext, reference: 'r' }],
    });
    assert.match(rewrapped.data.batch_results[0].ciphertext, CT(2));
    assert.equal(rewrapped.data.batch_results[0].reference, 'r');
  });

  test('decrypt errors carry Vault\'s texts', async () => {
    await vault.transitCreateKey({ name: 'errs' });
    const enc = (await vault.encryptData({ name: 'errs', plaintext: b64('payload') })).data.ciphertext;
    const ad = b64('context-a');
    const encAd = (await vault.encryptData({ name: 'errs', plaintext: b64('payload'), associated_data: ad })).data.ciphertext;
    const decrypt = (body) => http('POST', 'transit/decrypt/errs', body);
    const refused = async (body, message) => {
      const res = await decrypt(body);
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.deepEqual(res.body.errors, [message]);
    };

    await refused({ ciphertext: tamper(enc) }, 'cipher: message authentication failed');
    await refused({ ciphertext: encAd, associated_data: b64('context-b') }, 'cipher: message authentication failed');
    await refused({ ciphertext: encAd }, 'cipher: message authentication failed');
    await refused({ ciphertext: enc, associated_data: ad }, 'cipher: message authentication failed');
    await refused({ ciphertext: 'vault:v1:%%%not-base64%%%' }, 'invalid ciphertext: could not decode base64');
    await refused({ ciphertext: enc.replace(/^vault:/, '') }, 'invalid ciphertext: no prefix');
    await refused({ ciphertext: 'plain text' }, 'invalid ciphertext: no prefix');
    await refused({ ciphertext: enc.replace(/^vault:v1:/, 'vault:v9:') }, 'invalid ciphertext: version is too new');
    await assert.rejects(vault.decryptData({ name: 'errs', ciphertext: tamper(enc) }),
                         rejected(400, 'cipher: message authentication failed'));
    await assert.rejects(vault.decryptData({ name: 'no-such-key', ciphertext: enc }),
                         rejected(400, 'encryption key not found'));
    await assert.rejects(vault.rewrapData({ name: 'no-such-key', ciphertext: enc }),
                         rejected(400, 'encryption key not found'));
    // Decrypt does not create keys (only encrypt upserts).
    await assert.rejects(vault.transitReadKey({ name: 'no-such-key' }), rejected(404));

    // min_decryption_version: v1 is refused once the minimum is 2, and again after trim.
    await vault.write('transit/keys/errs/rotate', {});
    const encV2 = (await vault.encryptData({ name: 'errs', plaintext: b64('v2 payload') })).data.ciphertext;
    assert.match(encV2, CT(2));
    const cfg = await vault.write('transit/keys/errs/config', { min_decryption_version: 2 });
    assert.equal(cfg.data.min_decryption_version, 2);
    await refused({ ciphertext: enc }, 'ciphertext or signature version is disallowed by policy (too old)');
    await assert.rejects(vault.rewrapData({ name: 'errs', ciphertext: enc }),
                         rejected(400, 'ciphertext or signature version is disallowed by policy (too old)'));
    assert.equal(unb64((await vault.decryptData({ name: 'errs', ciphertext: encV2 })).data.plaintext), 'v2 payload');
    // Lowering it again brings v1 back (it was never removed) …
    await vault.write('transit/keys/errs/config', { min_decryption_version: 1 });
    assert.equal(unb64((await vault.decryptData({ name: 'errs', ciphertext: enc })).data.plaintext), 'payload');
    // … until trim removes it for good.
    await vault.write('transit/keys/errs/config', { min_decryption_version: 2 });
    const trimmed = await vault.write('transit/keys/errs/trim', { min_available_version: 2 });
    assert.equal(trimmed.data.min_available_version, 2);
    assert.deepEqual(Object.keys(trimmed.data.keys), ['2']);
    const lower = await http('POST', 'transit/keys/errs/config', { min_decryption_version: 1 });
    assert.equal(lower.status, 400);
    assert.deepEqual(lower.body.errors, ['min decryption version should not be less then min available version']);
    await refused({ ciphertext: enc }, 'ciphertext or signature version is disallowed by policy (too old)');
    const over = await http('POST', 'transit/keys/errs/config', { min_decryption_version: 3 });
    assert.equal(over.status, 400);
    assert.deepEqual(over.body.errors, ['cannot set min decryption version of 3, latest key version is 2']);

    // Missing fields.
    await refused({}, 'missing ciphertext to decrypt');
    const noPlain = await http('POST', 'transit/encrypt/errs', {});
    assert.equal(noPlain.status, 400);
    assert.deepEqual(noPlain.body.errors, ['missing plaintext to encrypt']);
  });

  test('datakey, random and hash', async () => {
    await vault.transitCreateKey({ name: 'agent-data', auto_rotate_period: '2160h' });

    // datakey/plaintext: a fresh key in clear and wrapped; the wrapped one decrypts to it.
    const pk = await vault.write('transit/datakey/plaintext/agent-data', {});
    assert.equal(Buffer.from(pk.data.plaintext, 'base64').length, 32);
    assert.match(pk.data.ciphertext, /^vault:v\d+:/);
    assert.equal((await vault.decryptData({ name: 'agent-data', ciphertext: pk.data.ciphertext })).data.plaintext,
                 pk.data.plaintext);
    const pk512 = await http('POST', 'transit/datakey/plaintext/agent-data', { bits: 512 });
    assert.equal(pk512.status, 200);
    assert.equal(Buffer.from(pk512.body.data.plaintext, 'base64').length, 64);
    const wrapped = await vault.write('transit/datakey/wrapped/agent-data', { bits: 128 });
    assert.equal(wrapped.data.plaintext, undefined);
    const unwrapped = await vault.decryptData({ name: 'agent-data', ciphertext: wrapped.data.ciphertext });
    assert.equal(Buffer.from(unwrapped.data.plaintext, 'base64').length, 16);
    const badBits = await http('POST', 'transit/datakey/plaintext/agent-data', { bits: 100 });
    assert.equal(badBits.status, 400);
    assert.deepEqual(badBits.body.errors, ['invalid bits: must be 128, 256 or 512']);
    const badKind = await http('POST', 'transit/datakey/clear/agent-data', {});
    assert.equal(badKind.status, 400);

    // random: 32 bytes base64 by default; a size and a source in the path; hex.
    const r = await vault.write('transit/random', {});
    assert.equal(Buffer.from(r.data.random_bytes, 'base64').length, 32);
    assert.notEqual((await vault.write('transit/random', {})).data.random_bytes, r.data.random_bytes);
    const rHex = await vault.write('transit/random/16', { format: 'hex' });
    assert.match(rHex.data.random_bytes, /^[0-9a-f]{32}$/);
    const rSeal = await http('POST', 'transit/random/seal/24', { format: 'base64' });
    assert.equal(rSeal.status, 200, JSON.stringify(rSeal.body));
    assert.equal(Buffer.from(rSeal.body.data.random_bytes, 'base64').length, 24);
    const rAll = await http('POST', 'transit/random/all', { bytes: 8, format: 'hex' });
    assert.equal(rAll.status, 200);
    assert.match(rAll.body.data.random_bytes, /^[0-9a-f]{16}$/);
    const rBad = await http('POST', 'transit/random', { format: 'binary' });
    assert.equal(rBad.status, 400);
    assert.deepEqual(rBad.body.errors, ['unsupported encoding format; must be "hex" or "base64"']);

    // hash: checked against Node's own digests.
    const data = 'the quick brown fox';
    const sha256 = crypto.createHash('sha256').update(data).digest('hex');
    assert.equal((await vault.write('transit/hash', { input: b64(data) })).data.sum, sha256);
    const h512 = await vault.write('transit/hash/sha2-512', { input: b64(data), format: 'hex' });
    assert.equal(h512.data.sum, crypto.createHash('sha512').update(data).digest('hex'));
    const h3 = await http('POST', 'transit/hash/sha3-256', { input: b64(data), format: 'base64' });
    assert.equal(h3.status, 200);
    assert.equal(h3.body.data.sum, crypto.createHash('sha3-256').update(data).digest('base64'));
    const hAlg = await vault.write('transit/hash', { input: b64(data), algorithm: 'sha2-384' });
    assert.equal(hAlg.data.sum, crypto.createHash('sha384').update(data).digest('hex'));
    const hBad = await http('POST', 'transit/hash/md5', { input: b64(data) });
    assert.equal(hBad.status, 400);
  });

  test('hmac and verify, with hmac keys and AES keys', async () => {
    await vault.transitCreateKey({ name: 'agent-data', auto_rotate_period: '2160h' });

    // An hmac key: no encryption, HMACs (sha2-256 by default, others by path), verify.
    const hk = await vault.write('transit/keys/macs', { type: 'hmac', key_size: 64 });
    assert.equal(hk.data.type, 'hmac');
    assert.equal(hk.data.key_size, 64);
    assert.equal(hk.data.supports_encryption, false);
    const notEnc = await http('POST', 'transit/encrypt/macs', { plaintext: b64('x') });
    assert.equal(notEnc.status, 400);
    assert.match(notEnc.body.errors[0], /does not support encryption/);

    const input = b64('message to authenticate');
    const mac = await vault.write('transit/hmac/macs', { input });
    assert.match(mac.data.hmac, CT(1));
    assert.equal(Buffer.from(mac.data.hmac.split(':')[2], 'base64').length, 32);
    assert.equal((await vault.write('transit/hmac/macs', { input })).data.hmac, mac.data.hmac, 'HMACs are deterministic');
    assert.notEqual((await vault.write('transit/hmac/macs', { input: b64('other') })).data.hmac, mac.data.hmac);
    const mac512 = await http('POST', 'transit/hmac/macs/sha2-512', { input });
    assert.equal(mac512.status, 200, JSON.stringify(mac512.body));
    assert.equal(Buffer.from(mac512.body.data.hmac.split(':')[2], 'base64').length, 64);
    const macAlg = await vault.write('transit/hmac/macs', { input, algorithm: 'sha2-512' });
    assert.equal(macAlg.data.hmac, mac512.body.data.hmac, 'algorithm in the body or the path is the same');

    assert.equal((await vault.write('transit/verify/macs', { input, hmac: mac.data.hmac })).data.valid, true);
    assert.equal((await vault.write('transit/verify/macs', { input: b64('forged'), hmac: mac.data.hmac })).data.valid, false);
    assert.equal((await vault.write('transit/verify/macs/sha2-512', { input, hmac: mac512.body.data.hmac })).data.valid, true);
    assert.equal((await vault.write('transit/verify/macs', { input, hmac: mac512.body.data.hmac })).data.valid, false,
                 'a sha2-512 HMAC does not verify as sha2-256');

    // After rotation new HMACs are v2, and the v1 HMAC still verifies.
    await vault.write('transit/keys/macs/rotate', {});
    const mac2 = await vault.write('transit/hmac/macs', { input });
    assert.match(mac2.data.hmac, CT(2));
    assert.notEqual(mac2.data.hmac.split(':')[2], mac.data.hmac.split(':')[2]);
    assert.equal((await vault.write('transit/verify/macs', { input, hmac: mac.data.hmac })).data.valid, true);
    assert.equal((await vault.write('transit/verify/macs', { input, hmac: mac2.data.hmac })).data.valid, true);

    // Batch HMAC with a reference; HMAC with an AES key works too, as in Vault.
    const bh = await vault.write('transit/hmac/macs', { batch_input: [{ input, reference: 'a' }, { input: b64('z'), reference: 'b' }] });
    assert.deepEqual(bh.data.batch_results.map((r) => r.reference), ['a', 'b']);
    assert.equal(bh.data.batch_results[0].hmac, mac2.data.hmac);
    const aesMac = await vault.write('transit/hmac/agent-data', { input });
    assert.match(aesMac.data.hmac, /^vault:v\d+:/);
    assert.equal((await vault.write('transit/verify/agent-data', { input, hmac: aesMac.data.hmac })).data.valid, true);
  });

  test('ECDSA and RSA signatures verify here and with the public key alone (node:crypto)', async () => {
    const input = Buffer.from('pay tenant 7 the sum of 100 EUR');
    for (const [name, type, opts, verifyOpts] of [
      ['sig-p256', 'ecdsa-p256', {}, {}],
      ['sig-p384', 'ecdsa-p384', { hash_algorithm: 'sha2-256' }, {}],
      ['sig-rsa-pss', 'rsa-2048', {}, { padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
                                        saltLength: crypto.constants.RSA_PSS_SALTLEN_AUTO }],
      ['sig-rsa-v15', 'rsa-3072', { signature_algorithm: 'pkcs1v15' },
       { padding: crypto.constants.RSA_PKCS1_PADDING }],
    ]) {
      await vault.transitCreateKey({ name, type });
      const key = await vault.transitReadKey({ name });
      assert.equal(key.data.supports_signing, true);
      const pem = key.data.keys['1'].public_key;
      assert.match(pem, /BEGIN PUBLIC KEY/);
      const signed = await vault.write(`transit/sign/${name}`, { input: input.toString('base64'), ...opts });
      const signature = signed.data.signature;
      assert.match(signature, /^vault:v1:/);
      const raw = Buffer.from(signature.split(':')[2], 'base64');
      assert.equal(crypto.verify('sha256', input, { key: pem, ...verifyOpts }, raw), true, name);
      const ok = await vault.write(`transit/verify/${name}`, { input: input.toString('base64'), signature, ...opts });
      assert.equal(ok.data.valid, true, name);
      const bad = await vault.write(`transit/verify/${name}`, { input: b64('other'), signature, ...opts });
      assert.equal(bad.data.valid, false, name);
    }
    // JWS marshaling: r || s in base64url, as JOSE libraries expect (ieee-p1363 in node:crypto).
    const jws = await vault.write('transit/sign/sig-p256', { input: input.toString('base64'), marshaling_algorithm: 'jws' });
    const rs = Buffer.from(jws.data.signature.split(':')[2], 'base64url');
    assert.equal(rs.length, 64);
    const pem = (await vault.transitReadKey({ name: 'sig-p256' })).data.keys['1'].public_key;
    assert.equal(crypto.verify('sha256', input, { key: pem, dsaEncoding: 'ieee-p1363' }, rs), true);
    // RSA keys sign only here (SoftHSM2 2.6.1 decrypts OAEP with SHA-1 only).
    const enc = await http('POST', 'transit/encrypt/sig-rsa-pss', { plaintext: b64('x') });
    assert.equal(enc.status, 400);
    assert.match(enc.body.errors[0], /rsa keys sign and verify only/);
  });

  test('what would let key material out, and unbuilt key types, are refused with 400', async () => {
    await vault.transitCreateKey({ name: 'lobstack', auto_rotate_period: '2160h' });
    const create = (name, body) => http('POST', `transit/keys/${name}`, body);
    for (const [name, body, pattern] of [
      ['exp', { exportable: true }, /exportable is not supported/],
      ['bak', { allow_plaintext_backup: true }, /allow_plaintext_backup is not supported/],
      ['der', { derived: true }, /derived keys are not supported/],
      ['conv', { convergent_encryption: true }, /convergent_encryption keys are not supported/],
      // Derived ed25519 keys would be computed from the key value outside the token.
      ['ed', { type: 'ed25519', derived: true }, /derived keys are not supported/],
      ['cha', { type: 'chacha20-poly1305' }, /not supported/],
      ['what', { type: 'rot13' }, /unknown key type rot13/],
      ['rot', { auto_rotate_period: '10m' }, /auto rotate period must be 0 to disable or at least an hour/],
    ]) {
      const res = await create(name, body);
      assert.equal(res.status, 400, `${name}: ${JSON.stringify(res.body)}`);
      assert.match(res.body.errors[0], pattern);
      assert.equal((await http('GET', `transit/keys/${name}`)).status, 404, `${name} was not created`);
    }
    await assert.rejects(vault.transitCreateKey({ name: 'ed', type: 'ed25519', derived: true }), rejected(400));

    for (const p of ['export/encryption-key/lobstack', 'export/hmac-key/lobstack/1', 'backup/lobstack']) {
      const res = await http('GET', `transit/${p}`);
      assert.equal(res.status, 400, `${p}: ${JSON.stringify(res.body)}`);
      assert.match(res.body.errors[0], /Transit keys never leave the PKCS#11 token/);
    }
    await assert.rejects(vault.read('transit/export/encryption-key/lobstack'), rejected(400));
    const restore = await http('POST', 'transit/restore/lobstack2', { backup: 'e30=' });
    assert.equal(restore.status, 400);
    const exp = await http('POST', 'transit/keys/lobstack/config', { exportable: true });
    assert.equal(exp.status, 400);
    assert.equal((await vault.transitReadKey({ name: 'lobstack' })).data.exportable, false);
    const sign = await http('POST', 'transit/sign/lobstack', { input: b64('x') });
    assert.equal(sign.status, 400);
    assert.equal(sign.body.errors[0], 'key type aes256-gcm96 does not support signing');
  });
});

// A configured (non-dev) appliance, so the same data directory and SoftHSM2 token can be started
// again. `extra` lines are appended to the harness's configuration file.
async function configuredAppliance(t, extra = '') {
  const d = new Daemon();
  t.after(() => d.destroy());
  d.makeToken();
  if (extra) fs.appendFileSync(path.join(d.dir, 'strongroom.hcl'), `${extra}\n`);
  await d.startConfig();
  const init = await nodeVault({ endpoint: d.addr }).request({
    path: '/sys/init', method: 'PUT', json: { recovery_shares: 1, recovery_threshold: 1 },
  });
  const vault = nodeVault({ endpoint: d.addr, token: init.root_token });
  await vault.mount({ mount_point: 'transit', type: 'transit' });
  return { d, vault, root: init.root_token };
}

test('ciphertexts, HMACs and key settings survive a restart of the appliance', async (t) => {
  const { d, vault, root } = await configuredAppliance(t);
  await vault.transitCreateKey({ name: 'lobstack', auto_rotate_period: '2160h' });
  await vault.transitCreateKey({ name: 'agent-data', auto_rotate_period: '2160h' });
  await vault.write('transit/keys/macs', { type: 'hmac' });
  const v1 = (await vault.encryptData({ name: 'lobstack', plaintext: b64('api key v1') })).data.ciphertext;
  await vault.write('transit/keys/lobstack/rotate', {});
  const v2 = (await vault.encryptData({ name: 'lobstack', plaintext: b64('api key v2') })).data.ciphertext;
  assert.match(v2, CT(2));
  const ad = b64('agent=42');
  const agent = (await vault.encryptData({ name: 'agent-data', plaintext: b64('memory'), associated_data: ad })).data.ciphertext;
  const mac = (await vault.write('transit/hmac/macs', { input: b64('signed') })).data.hmac;
  await vault.write('transit/keys/agent-data/config', { deletion_allowed: true });

  assert.equal(await d.stop(), 0);
  await d.startConfig();  // same data directory and token; the HSM seal unseals by itself
  const again = nodeVault({ endpoint: d.addr, token: root });
  assert.equal((await again.status()).sealed, false);
  assert.equal((await again.mounts()).data['transit/'].type, 'transit');

  assert.equal(unb64((await again.decryptData({ name: 'lobstack', ciphertext: v1 })).data.plaintext), 'api key v1');
  assert.equal(unb64((await again.decryptData({ name: 'lobstack', ciphertext: v2 })).data.plaintext), 'api key v2');
  const dec = await api(d, root, 'POST', 'transit/decrypt/agent-data', { ciphertext: agent, associated_data: ad });
  assert.equal(dec.status, 200, JSON.stringify(dec.body));
  assert.equal(unb64(dec.body.data.plaintext), 'memory');
  assert.equal((await again.write('transit/verify/macs', { input: b64('signed'), hmac: mac })).data.valid, true);
  await assert.rejects(again.decryptData({ name: 'lobstack', ciphertext: tamper(v1) }),
                       rejected(400, 'cipher: message authentication failed'));

  const k = (await again.transitReadKey({ name: 'lobstack' })).data;
  assert.equal(k.latest_version, 2, 'no rotation happened on restart');
  assert.equal(k.auto_rotate_period, 7776000);
  assert.deepEqual(Object.keys(k.keys), ['1', '2']);
  assert.equal((await again.transitReadKey({ name: 'agent-data' })).data.deletion_allowed, true);
  assert.deepEqual((await again.transitListKeys()).data.keys.slice().sort(), ['agent-data', 'lobstack', 'macs']);
  assert.match((await again.encryptData({ name: 'lobstack', plaintext: b64('x') })).data.ciphertext, CT(2));
  const rw = await again.rewrapData({ name: 'lobstack', ciphertext: v1 });
  assert.match(rw.data.ciphertext, CT(2));
});

test('the nonce budget rotates a key before its bound, also across a restart; auto_rotate_period rotates on time', async (t) => {
  // Both settings exist to be lowered in tests (docs/operations.md).
  const { d, vault, root } = await configuredAppliance(
    t, 'transit_max_encryptions_per_version = 3\ntransit_min_auto_rotate_period = "1s"');
  await vault.transitCreateKey({ name: 'bounded' });
  const versions = [];
  for (let i = 0; i < 4; i += 1) {
    versions.push((await vault.encryptData({ name: 'bounded', plaintext: b64(`m${i}`) })).data.key_version);
  }
  assert.deepEqual(versions, [1, 1, 1, 2], 'the fourth encryption goes to a fresh version');
  const pinned = await api(d, root, 'POST', 'transit/encrypt/bounded', { plaintext: b64('x'), key_version: 1 });
  assert.equal(pinned.status, 400, JSON.stringify(pinned.body));
  assert.match(pinned.body.errors[0], /reached its encryption limit/);

  // Version 2 has made one encryption; after a restart its whole reservation counts as spent.
  assert.equal(await d.stop(), 0);
  await d.startConfig();
  const again = nodeVault({ endpoint: d.addr, token: root });
  const after = await again.encryptData({ name: 'bounded', plaintext: b64('after restart') });
  assert.equal(after.data.key_version, 3);
  assert.equal(unb64((await again.decryptData({ name: 'bounded', ciphertext: after.data.ciphertext })).data.plaintext),
               'after restart');

  // auto_rotate_period (here 2s, allowed by the lowered minimum) is honoured by the broker.
  const created = await again.transitCreateKey({ name: 'ticking', auto_rotate_period: '2s' });
  assert.equal(created.data.auto_rotate_period, 2);
  const first = (await again.encryptData({ name: 'ticking', plaintext: b64('t') })).data.ciphertext;
  const deadline = Date.now() + 15000;
  while ((await again.transitReadKey({ name: 'ticking' })).data.latest_version < 2) {
    assert.ok(Date.now() < deadline, 'the key auto-rotated within 15s');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  assert.match(d.log, /transit: key ticking auto-rotated to version \d+/);
  assert.match((await again.encryptData({ name: 'ticking', plaintext: b64('u') })).data.ciphertext, /^vault:v([2-9]|\d\d+):/);
  assert.equal(unb64((await again.decryptData({ name: 'ticking', ciphertext: first })).data.plaintext), 't');
});
