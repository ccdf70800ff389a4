// End-to-end: node-vault over HTTPS to an appliance whose TLS key exists only in the PKCS#11
// token (listener tls_key_label). The key and a self-signed certificate are made with
// strongroomd's -tls-generate-key and -tls-self-signed-cert; there is no key file anywhere, and
// every handshake is signed by the token through the broker. node-vault trusts the certificate
// through its documented requestOptions.ca.
// Vault API sections: sys/init, sys/health, sys/mounts, KV v2 data read/write.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const tls = require('node:tls');
const nodeVault = require('node-vault');
const { Daemon } = require('./harness');

function filesUnder(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? filesUnder(p) : e.isFile() ? [p] : [];
  });
}

test('node-vault talks HTTPS to an appliance whose TLS key is only in the token', async (t) => {
  const d = new Daemon();
  t.after(() => d.destroy());
  d.makeToken({ tls: true });

  const publicKeyPem = d.cli(['-tls-generate-key']);
  assert.match(publicKeyPem, /-----BEGIN PUBLIC KEY-----/);
  d.cli([`-tls-self-signed-cert=${d.certFile}`, '-tls-cert-hosts=127.0.0.1,localhost']);
  const ca = fs.readFileSync(d.certFile, 'utf8');
  const cert = new crypto.X509Certificate(ca);
  assert.equal(cert.publicKey.export({ type: 'spki', format: 'pem' }), publicKeyPem);
  assert.ok(cert.verify(cert.publicKey), 'the certificate is signed by the token key');
  assert.match(cert.subjectAltName, /IP Address:127\.0\.0\.1/);

  // No private key in any file the appliance has (config, PIN, token store, certificate).
  for (const f of filesUnder(d.dir)) {
    assert.ok(!fs.readFileSync(f).includes('PRIVATE KEY-----'), `${f} holds a private key`);
  }
  assert.doesNotMatch(fs.readFileSync(path.join(d.dir, 'strongroom.hcl'), 'utf8'), /tls_key_file/);

  await d.startConfig();
  assert.match(d.addr, /^https:\/\/127\.0\.0\.1:\d+$/);

  const vault = nodeVault({ endpoint: d.addr, requestOptions: { ca } });
  const health0 = await vault.health();
  assert.equal(health0.initialized, false);

  const init = await vault.request({
    path: '/sys/init', method: 'PUT', json: { recovery_shares: 1, recovery_threshold: 1 },
  });
  assert.match(init.root_token, /^hvs\./);
  vault.token = init.root_token;
  const health = await vault.health();
  assert.equal(health.initialized, true);
  assert.equal(health.sealed, false);

  await vault.mount({ mount_point: 'secret', type: 'kv', options: { version: '2' } });
  const written = await vault.write('secret/data/lobstack/api-keys', { data: { openai: 'sk-tls-1' } });
  assert.equal(written.data.version, 1);
  const read = await vault.read('secret/data/lobstack/api-keys');
  assert.equal(read.data.data.openai, 'sk-tls-1');

  // Node's own view of the connection: TLS 1.3, this certificate, verified.
  const info = await new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: d.port, ca, servername: 'localhost' }, () => {
      const result = {
        authorized: socket.authorized,
        protocol: socket.getProtocol(),
        fingerprint: socket.getPeerCertificate().fingerprint256,
      };
      socket.end();
      resolve(result);
    });
    socket.on('error', reject);
  });
  assert.deepEqual(info, { authorized: true, protocol: 'TLSv1.3', fingerprint: cert.fingerprint256 });

  // A client that does not trust the certificate is refused; the appliance keeps serving.
  const untrusting = nodeVault({ endpoint: d.addr });
  await assert.rejects(untrusting.health(), /self[- ]signed certificate|unable to verify/i);
  assert.equal((await vault.read('secret/data/lobstack/api-keys')).data.data.openai, 'sk-tls-1');
});
