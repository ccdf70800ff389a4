// End-to-end: the container entrypoint (packaging/container/entrypoint.sh) run directly, without a
// container engine, on a temporary "volume": first start (SoftHSM2 token, configuration,
// sys/init, init.json), SIGTERM, a second start that reuses all of it, and the PIN rules.
// Started as root, the script drops to STRONGROOM_USER; the tests use "nobody" then.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const https = require('node:https');
const { execFile, execFileSync } = require('node:child_process');
const { waitFor, freePort, CLI } = require('./harness');
const { makeKeyPair, makeTlsMaterial, startFakeKube } = require('./fake_kube');

const BUILT = process.env.STRONGROOM_BIN || path.resolve(__dirname, '../../build/appliance');
const SCRIPT = path.resolve(__dirname, '../../packaging/container/entrypoint.sh');
const INIT_SCRIPT = path.resolve(__dirname, '../../deploy/kubernetes/init/strongroom-init.sh');
const IS_ROOT = process.getuid() === 0;

// Started as root, the entrypoint drops to nobody and runs itself and strongroomd again as nobody,
// who cannot read a checkout under /root (mode 0700, the usual place on a fresh machine). Root
// runs therefore use copies (hard links where possible) in a directory everyone can traverse.
function runnableCopies() {
  if (!IS_ROOT) return { entrypoint: SCRIPT, bin: BUILT };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strongroom-entrypoint-bin-'));
  fs.chmodSync(dir, 0o755);
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  for (const f of ['strongroomd', 'strongroom-worker']) {
    try {
      fs.linkSync(path.join(BUILT, f), path.join(dir, f));
    } catch {
      fs.copyFileSync(path.join(BUILT, f), path.join(dir, f));
      fs.chmodSync(path.join(dir, f), 0o755);
    }
  }
  fs.copyFileSync(SCRIPT, path.join(dir, 'entrypoint.sh'));
  fs.chmodSync(path.join(dir, 'entrypoint.sh'), 0o755);
  return { entrypoint: path.join(dir, 'entrypoint.sh'), bin: dir };
}
const { entrypoint: ENTRYPOINT, bin: BIN } = runnableCopies();


// A temporary directory the unprivileged user can traverse (the volume is created inside it).
function tempRoot(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strongroom-entrypoint-'));
  fs.chmodSync(dir, 0o755);
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

class Entrypoint {
  constructor(env) {
    this.env = env;
    this.log = '';
    this.proc = null;
  }

  start() {
    this.log = '';
    this.proc = spawn(ENTRYPOINT, [], { env: this.env });
    const onData = (d) => { this.log += d.toString(); };
    this.proc.stdout.on('data', onData);
    this.proc.stderr.on('data', onData);
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => resolve({ code, signal })));
    return this;
  }

  // Resolves once strongroomd is ready and the entrypoint has finished its first-start work.
  async ready(addr) {
    await waitFor(() => /API on http:\/\/127\.0\.0\.1:\d+/.test(this.log) || this.proc.exitCode !== null,
      30000, `strongroomd started by the entrypoint\n${this.log}`);
    assert.equal(this.proc.exitCode, null, `the entrypoint exited early:\n${this.log}`);
    const deadline = Date.now() + 30000;
    for (;;) {
      const res = await fetch(`${addr}/v1/sys/health`).catch(() => null);
      if (res && res.status === 200 && fs.existsSync(path.join(this.env.STRONGROOM_DATA, 'initialized'))) return;
      if (Date.now() > deadline) throw new Error(`never healthy and initialised:\n${this.log}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async stop(signal = 'SIGTERM') {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return this.exited;
    this.proc.kill(signal);
    return this.exited;
  }
}

async function setup(t, extraEnv = {}) {
  const root = tempRoot(t);
  const port = await freePort();
  const env = {
    PATH: process.env.PATH,
    STRONGROOM_DATA: path.join(root, 'volume'),
    STRONGROOMD: path.join(BIN, 'strongroomd'),
    STRONGROOM_LISTEN: `127.0.0.1:${port}`,
    STRONGROOM_TLS_DISABLE: 'true',
    STRONGROOM_WORKERS: '2',
    STRONGROOM_RECOVERY_SHARES: '3',
    STRONGROOM_RECOVERY_THRESHOLD: '2',
    ...(IS_ROOT ? { STRONGROOM_USER: 'nobody' } : {}),
    ...(process.env.ASAN_OPTIONS ? { ASAN_OPTIONS: process.env.ASAN_OPTIONS } : {}),
    ...(process.env.UBSAN_OPTIONS ? { UBSAN_OPTIONS: process.env.UBSAN_OPTIONS } : {}),
    ...extraEnv,
  };
  const ep = new Entrypoint(env);
  t.after(() => ep.proc && ep.stop('SIGKILL'));
  return { root, env, ep, addr: `http://127.0.0.1:${port}`, data: env.STRONGROOM_DATA };
}

async function api(addr, token, method, p, body) {
  const headers = { 'X-Vault-Token': token };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${addr}/v1/${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

// The token directory's entries: one token (a UUID directory) and its objects (one file each).
// SoftHSM2 rewrites object files in place (generation counters), so contents are not compared.
function tree(dir) {
  return fs.readdirSync(dir, { recursive: true }).sort();
}

test('entrypoint: first start makes the token and initialises; SIGTERM stops; a restart reuses both', async (t) => {
  const { env, ep, addr, data } = await setup(t, { STRONGROOM_PIN: 'e2e-pin-5678' });

  // First start.
  ep.start();
  await ep.ready(addr);
  assert.match(ep.log, /first start: initialising SoftHSM2 token "strongroom"/);
  assert.match(ep.log, /initialising strongroom \(recovery_shares=3, recovery_threshold=2\)/);
  assert.doesNotMatch(ep.log, /e2e-pin-5678/, 'the PIN is never printed');
  if (IS_ROOT) {
    // Started as root, the entrypoint continued as STRONGROOM_USER (its pid is strongroomd's
    // parent shell, or strongroomd itself after exec) and handed it the volume.
    const uid = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${ep.proc.pid}/status`, 'utf8'))[1];
    assert.equal(Number(uid), 65534);
    assert.match(ep.log, /dropping root: continuing as nobody/);
    assert.equal(fs.statSync(path.join(data, 'tokens')).uid, 65534);
  }
  const health = (await api(addr, '', 'GET', 'sys/health')).body;
  assert.equal(health.initialized, true);
  assert.equal(health.sealed, false);

  const initPath = path.join(data, 'init.json');
  assert.equal(fs.statSync(initPath).mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.join(data, 'so-pin')).mode & 0o777, 0o600);
  const init = JSON.parse(fs.readFileSync(initPath, 'utf8'));
  assert.match(init.root_token, /^hvs\./);
  assert.equal(init.recovery_keys_base64.length, 3);
  const hcl = fs.readFileSync(path.join(data, 'strongroom.hcl'), 'utf8');
  assert.match(hcl, /pin\s+= "env:\/\/STRONGROOM_PIN"/);
  assert.match(hcl, /tls_disable = true/);
  assert.doesNotMatch(hcl, /e2e-pin-5678/);

  const root = init.root_token;
  assert.equal((await api(addr, root, 'POST', 'sys/mounts/kv', { type: 'kv', options: { version: '2' } })).status, 204);
  assert.equal((await api(addr, root, 'POST', 'kv/data/app', { data: { password: 'p1' } })).status, 200);
  assert.equal((await api(addr, root, 'GET', 'kv/data/app')).body.data.data.password, 'p1');

  assert.equal(fs.readdirSync(path.join(data, 'tokens')).length, 1, 'one token');
  const tokensBefore = tree(path.join(data, 'tokens'));
  const initBefore = fs.readFileSync(initPath, 'utf8');
  const first = await ep.stop('SIGTERM');
  assert.deepEqual(first, { code: 0, signal: null }, ep.log);
  assert.match(ep.log, /received SIGTERM; shutting down/);

  // Second start: no token initialisation, no sys/init; the same root token reads the secret.
  ep.start();
  await ep.ready(addr);
  assert.doesNotMatch(ep.log, /initialising/);
  assert.match(ep.log, /unsealed with the KEK in the PKCS#11 token/);
  assert.equal((await api(addr, root, 'GET', 'kv/data/app')).body.data.data.password, 'p1');
  assert.deepEqual(tree(path.join(data, 'tokens')), tokensBefore);
  assert.equal(fs.readFileSync(initPath, 'utf8'), initBefore);

  // Operators move init.json out; later starts do not need it (or recreate it).
  fs.rmSync(initPath);
  const second = await ep.stop('SIGINT');
  assert.equal(second.code, 0, ep.log);
  ep.start();
  await ep.ready(addr);
  assert.equal(fs.existsSync(initPath), false);
  assert.equal((await api(addr, root, 'GET', 'kv/data/app')).body.data.data.password, 'p1');
  assert.equal((await ep.stop()).code, 0);
});

test('entrypoint: refuses to start without a PIN, naming what to set', async (t) => {
  const { ep, data } = await setup(t);
  ep.start();
  const { code } = await ep.exited;
  assert.equal(code, 1);
  assert.match(ep.log, /no HSM PIN: set STRONGROOM_PIN_FILE .* or STRONGROOM_PIN/);
  assert.equal(fs.existsSync(path.join(data, 'tokens')), false, 'nothing was created');

  // Arguments run strongroomd with them instead (no PIN needed for -version).
  const version = spawn(ENTRYPOINT, ['-version'], { env: ep.env });
  let out = '';
  version.stdout.on('data', (d) => { out += d; });
  const status = await new Promise((resolve) => version.once('exit', resolve));
  assert.equal(status, 0);
  assert.match(out, /strongroomd/);
});

test('entrypoint: refuses an empty or unreadable PIN file and a too short PIN', async (t) => {
  const { root, env } = await setup(t);
  const empty = path.join(root, 'empty-pin');
  fs.writeFileSync(empty, '', { mode: 0o644 });
  for (const [extra, message] of [
    [{ STRONGROOM_PIN_FILE: empty }, /STRONGROOM_PIN_FILE .* is empty/],
    [{ STRONGROOM_PIN_FILE: path.join(root, 'missing') }, /is not a readable file/],
    [{ STRONGROOM_PIN: '123' }, /must be 4 to 255 characters long/],
  ]) {
    const ep = new Entrypoint({ ...env, ...extra }).start();
    const { code } = await ep.exited;
    assert.equal(code, 1, ep.log);
    assert.match(ep.log, message);
  }
});

test('entrypoint: PIN from a mounted file; a TLS key file without its certificate is refused', async (t) => {
  const { root, env, ep, addr, data } = await setup(t);
  const pinFile = path.join(root, 'hsm-pin');
  fs.writeFileSync(pinFile, 'file-pin-2468\n', { mode: 0o644 });

  // A key file is only used with its certificate: refused before a config is written.
  const noCert = new Entrypoint({
    ...env, STRONGROOM_PIN_FILE: pinFile, STRONGROOM_TLS_DISABLE: 'false', STRONGROOM_TLS_KEY_FILE: path.join(root, 'tls.key'),
  }).start();
  assert.equal((await noCert.exited).code, 1);
  assert.match(noCert.log, /STRONGROOM_TLS_KEY_FILE needs STRONGROOM_TLS_CERT_FILE/);
  assert.equal(fs.existsSync(path.join(data, 'strongroom.hcl')), false);

  ep.env = { ...env, STRONGROOM_PIN_FILE: pinFile };
  ep.start();
  await ep.ready(addr);
  assert.doesNotMatch(ep.log, /file-pin-2468/);
  const hcl = fs.readFileSync(path.join(data, 'strongroom.hcl'), 'utf8');
  assert.ok(hcl.includes(`pin         = "file://${pinFile}"`), hcl);
  const init = JSON.parse(fs.readFileSync(path.join(data, 'init.json'), 'utf8'));
  assert.equal((await api(addr, init.root_token, 'GET', 'auth/token/lookup-self')).status, 200);

  // The image's health check: succeeds while the API answers, fails once it is gone.
  const check = (e) => new Promise((resolve) => {
    spawn(ENTRYPOINT, ['healthcheck'], { env: e, stdio: 'ignore' }).once('exit', resolve);
  });
  assert.equal(await check(ep.env), 0);
  assert.equal((await ep.stop()).code, 0);
  assert.notEqual(await check(ep.env), 0);

  // A restart with the file reuses the token (the PIN in it logs in).
  ep.start();
  await ep.ready(addr);
  assert.doesNotMatch(ep.log, /initialising/);
  assert.equal((await api(addr, init.root_token, 'GET', 'auth/token/lookup-self')).status, 200);
  assert.equal((await ep.stop()).code, 0);
});

// GET over https trusting only the given CA.
function httpsGet(url, ca, token) {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, headers: token ? { 'X-Vault-Token': token } : {} }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: body ? JSON.parse(body) : null }));
    });
    req.on('error', reject);
  });
}

// Issue 15, item 15g: TLS by default keeps the listener's private key in the token. The first
// start generates it there, writes a CSR and a certificate signed by the token; no key file is
// ever written; later starts reuse key and certificate.
test('entrypoint: TLS by default with the key generated in the token, no key file', async (t) => {
  const { env, ep, data } = await setup(t, { STRONGROOM_PIN: 'tok-tls-2468', STRONGROOM_TLS_DISABLE: 'false' });
  const port = Number(env.STRONGROOM_LISTEN.split(':')[1]);
  const addr = `https://127.0.0.1:${port}`;
  ep.start();
  await waitFor(() => fs.existsSync(path.join(data, 'initialized')) || ep.proc.exitCode !== null, 30000,
    `the first start with the TLS key in the token\n${ep.log}`);
  assert.equal(ep.proc.exitCode, null, ep.log);
  assert.match(ep.log, /generating the TLS key "strongroom-tls" in the token/);
  assert.match(ep.log, /API on https:\/\/127\.0\.0\.1:\d+/);
  assert.match(ep.log, /handshakes are signed by the token/);
  const hcl = fs.readFileSync(path.join(data, 'strongroom.hcl'), 'utf8');
  assert.match(hcl, /tls_key_label = "strongroom-tls"/);
  assert.doesNotMatch(hcl, /tls_key_file/);
  assert.ok(hcl.includes(`tls_cert_file = "${path.join(data, 'tls', 'tls.crt')}"`), hcl);
  const certPem = fs.readFileSync(path.join(data, 'tls', 'tls.crt'), 'utf8');
  assert.match(certPem, /BEGIN CERTIFICATE/);
  assert.match(fs.readFileSync(path.join(data, 'tls', 'tls.csr'), 'utf8'), /BEGIN CERTIFICATE REQUEST/);
  // No private key anywhere outside the token's own files.
  for (const f of fs.readdirSync(data, { recursive: true })) {
    if (String(f).startsWith('tokens')) continue;
    const full = path.join(data, String(f));
    if (!fs.statSync(full).isFile()) continue;
    assert.doesNotMatch(fs.readFileSync(full, 'latin1'), /PRIVATE KEY/, `${f} holds a private key`);
  }
  // Clients that trust the certificate reach the API; the health check works over https.
  const health = await httpsGet(`${addr}/v1/sys/health`, certPem);
  assert.equal(health.status, 200);
  assert.equal(health.body.initialized, true);
  const check = await new Promise((resolve) => {
    spawn(ENTRYPOINT, ['healthcheck'], { env: ep.env, stdio: 'ignore' }).once('exit', resolve);
  });
  assert.equal(check, 0, 'the health check over https');
  assert.equal((await ep.stop()).code, 0, ep.log);

  // A restart reuses the key and the certificate.
  ep.start();
  await waitFor(() => /API on https:/.test(ep.log) || ep.proc.exitCode !== null, 30000, ep.log);
  assert.equal(ep.proc.exitCode, null, ep.log);
  assert.doesNotMatch(ep.log, /generating the TLS key/);
  assert.equal(fs.readFileSync(path.join(data, 'tls', 'tls.crt'), 'utf8'), certPem);
  assert.equal((await httpsGet(`${addr}/v1/sys/health`, certPem)).status, 200);
  assert.equal((await ep.stop()).code, 0, ep.log);
});

test('entrypoint with TLS, then the init Job\'s script against the fresh appliance (VAULT_CACERT)', async (t) => {
  const { root, env, ep, data } = await setup(t, { STRONGROOM_PIN: 'tls-pin-1357', STRONGROOM_TLS_DISABLE: 'false' });
  const tlsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'strongroom-entrypoint-tls-'));
  t.after(() => fs.rmSync(tlsDir, { recursive: true, force: true }));
  const tls = makeTlsMaterial(tlsDir, ['IP:127.0.0.1', 'DNS:localhost'], 'strongroom');
  for (const [name, pem] of [['tls.crt', tls.certPem], ['tls.key', tls.keyPem], ['ca.crt', tls.caPem]]) {
    fs.writeFileSync(path.join(root, name), pem, { mode: 0o644 });
  }
  // A key file, asked for explicitly (the default keeps the key in the token, test above).
  ep.env = {
    ...env, STRONGROOM_TLS_CERT_FILE: path.join(root, 'tls.crt'), STRONGROOM_TLS_KEY_FILE: path.join(root, 'tls.key'),
  };
  const port = Number(env.STRONGROOM_LISTEN.split(':')[1]);
  const addr = `https://127.0.0.1:${port}`;

  // First start: sys/init over https on loopback (the certificate is not checked there).
  ep.start();
  await waitFor(() => fs.existsSync(path.join(data, 'initialized')) || ep.proc.exitCode !== null, 30000,
    `the first start over TLS\n${ep.log}`);
  assert.equal(ep.proc.exitCode, null, ep.log);
  assert.match(ep.log, /API on https:\/\/127\.0\.0\.1:\d+/);
  assert.match(ep.log, /warning: STRONGROOM_TLS_KEY_FILE/);
  const init = JSON.parse(fs.readFileSync(path.join(data, 'init.json'), 'utf8'));
  const health = await httpsGet(`${addr}/v1/sys/health`, tls.caPem);
  assert.equal(health.status, 200);
  assert.equal(health.body.sealed, false);
  const check = await new Promise((resolve) => {
    spawn(ENTRYPOINT, ['healthcheck'], { env: ep.env, stdio: 'ignore' }).once('exit', resolve);
  });
  assert.equal(check, 0, 'the health check over https');

  // The init Job's script, as the Job runs it: token from a file, the server's CA, no reviewer
  // JWT. secret/ does not exist on a fresh appliance, so it is enabled this time.
  const cluster = makeKeyPair('RS256');
  const kube = await startFakeKube({ publicKey: cluster.publicKey, reviewerToken: 'vault-reviewer' });
  t.after(() => kube.close());
  fs.writeFileSync(path.join(root, 'root-token'), `${init.root_token}\n`, { mode: 0o600 });
  const runInit = () => new Promise((resolve) => {
    execFile('bash', [INIT_SCRIPT], {
      env: {
        // The script runs the CLI (the image's /usr/bin/strongroom; here the build's).
        PATH: process.env.PATH, STRONGROOM_CLI: CLI, VAULT_ADDR: addr, VAULT_CACERT: path.join(root, 'ca.crt'),
        VAULT_TOKEN_FILE: path.join(root, 'root-token'), KUBERNETES_HOST: kube.url,
        KUBERNETES_CA_CERT: kube.caPath, TOKEN_REVIEWER_JWT: '', AUDIT_FILE_PATH: path.join(data, 'audit.log'),
      },
    }, (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
  const first = await runInit();
  assert.equal(first.code, 0, first.stderr + first.stdout);
  assert.match(first.stdout, /enabled KV v2 at secret\//);
  assert.equal((await runInit()).code, 0);
  const mounts = (await httpsGet(`${addr}/v1/sys/mounts`, tls.caPem, init.root_token)).body.data;
  assert.equal(mounts['secret/'].options.version, '2');
  assert.equal(mounts['transit/'].type, 'transit');
  assert.ok(fs.statSync(path.join(data, 'audit.log')).size > 0);

  // Without the CA the script refuses the server's certificate.
  const untrusted = await new Promise((resolve) => {
    execFile('bash', [INIT_SCRIPT], {
      env: { PATH: process.env.PATH, STRONGROOM_CLI: CLI, VAULT_ADDR: addr, VAULT_TOKEN: init.root_token, KUBERNETES_CA_CERT: '', TOKEN_REVIEWER_JWT: '' },
    }, (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stderr }));
  });
  assert.equal(untrusted.code, 1);
  assert.match(untrusted.stderr, /TLS handshake: certificate verify failed/);

  assert.equal((await ep.stop()).code, 0, ep.log);
});

test('entrypoint in a Raft cluster: the node makes its cluster key in its token, waits for its certificate, installs it and serves', async (t) => {
  const { root, env, ep, addr, data } = await setup(t);
  const port = Number(env.STRONGROOM_LISTEN.split(':')[1]);
  // The operator's side: the cluster CA (kept away from the node) and the folder the node is
  // handed certificates in (the Kubernetes Secret), holding the CA only at first.
  const certsScript = path.resolve(__dirname, '../../packaging/cluster-certs.sh');
  const pki = path.join(root, 'pki');
  execFileSync(certsScript, ['ca', pki], { stdio: 'ignore' });
  const handed = path.join(root, 'cluster-tls');
  fs.mkdirSync(handed, { mode: 0o755 });
  fs.copyFileSync(path.join(pki, 'ca.pem'), path.join(handed, 'ca.crt'));
  fs.chmodSync(path.join(handed, 'ca.crt'), 0o644);
  fs.mkdirSync(path.join(root, 'config'), { mode: 0o755 });
  const config = path.join(root, 'config', 'strongroom.hcl');
  fs.writeFileSync(config, `api_addr = "http://127.0.0.1:${port}"
cluster_addr = "https://127.0.0.1:${port + 1}"
workers = 2
listener "tcp" {
  address     = "127.0.0.1:${port}"
  tls_disable = true
}
storage "raft" {
  path              = "${data}/data"
  node_id           = "n1"
  cluster_ca_file   = "${handed}/ca.crt"
  cluster_cert_file = "${data}/cluster-tls/tls.crt"
  cluster_key_label = "strongroom-cluster"
}
seal "pkcs11" {
  lib         = "/usr/lib/softhsm/libsofthsm2.so"
  token_label = "strongroom"
  pin         = "env://STRONGROOM_PIN"
}
`);
  fs.chmodSync(config, 0o644);
  Object.assign(env, {
    STRONGROOM_CONFIG: config, STRONGROOM_PIN: '12345678', STRONGROOM_CLUSTER_CERTS: handed,
    STRONGROOM_RAFT_NODE_ID: 'n1', STRONGROOM_CLUSTER_CERT_POLL: '1',
  });
  // A request left in the volume by an earlier version (its key was a file): replaced, since
  // it is not for the token's key.
  const csr = path.join(data, 'cluster-tls', 'tls.csr');
  fs.mkdirSync(path.dirname(csr), { recursive: true });
  const oldKey = path.join(root, 'old-cluster.key');
  execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-subj', '/CN=n1', '-keyout', oldKey, '-out', csr], { stdio: 'ignore' });
  const oldPub = execFileSync('openssl', ['pkey', '-in', oldKey, '-pubout']).toString();
  fs.chmodSync(path.dirname(csr), 0o777);
  fs.chmodSync(csr, 0o666);
  ep.start();
  await waitFor(() => /waiting for .*\/n1\.crt/.test(ep.log) || ep.proc.exitCode !== null, 60000,
    `the entrypoint waiting for the node's certificate\n${ep.log}`);
  assert.equal(ep.proc.exitCode, null, ep.log);
  // The key is in the token: no key file in the volume; the request names the node id.
  assert.match(ep.log, /cluster key "strongroom-cluster" in the token/);
  assert.equal(fs.existsSync(path.join(data, 'cluster-tls', 'tls.key')), false);
  const request = execFileSync('openssl', ['req', '-in', csr, '-noout', '-text']).toString();
  assert.match(request, /URI:urn:strongroom:node:n1/);
  assert.notEqual(execFileSync('openssl', ['req', '-in', csr, '-noout', '-pubkey']).toString(), oldPub);
  execFileSync(certsScript, ['sign', pki, 'n1', csr, '127.0.0.1'], { stdio: 'ignore' });
  fs.copyFileSync(path.join(pki, 'n1.pem'), path.join(handed, 'n1.crt'));
  fs.chmodSync(path.join(handed, 'n1.crt'), 0o644);
  await ep.ready(addr);
  assert.match(ep.log, /installed node n1's cluster certificate/);
  const san = execFileSync('openssl', ['x509', '-in', path.join(data, 'cluster-tls', 'tls.crt'), '-noout', '-ext', 'subjectAltName']).toString();
  assert.match(san, /URI:urn:strongroom:node:n1/);
  // The daemon signs its cluster handshakes with the token's key.
  await waitFor(() => /handshakes are signed by the token/.test(ep.log), 30000, ep.log);
  assert.equal((await ep.stop()).code, 0, ep.log);
});
