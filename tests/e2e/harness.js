// Starts the real strongroomd (broker + workers) for end-to-end tests: either -dev, or with a
// config file against a fresh SoftHSM2 token made with softhsm2-util.
'use strict';

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const net = require('node:net');
const path = require('node:path');

const BIN = process.env.STRONGROOM_BIN || path.resolve(__dirname, '../../build/appliance');
// The client-side binary (`strongroom agent`, `strongroom injector`): build/cli/strongroom.
const CLI = process.env.STRONGROOM_CLI || path.resolve(BIN, '..', 'cli', 'strongroom');

// Whether a process of group `pgid` is alive (a zombie holds nothing and does not count).
function groupAlive(pgid) {
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;  // ended meanwhile
    }
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z') return true;
  }
  return false;
}

function waitFor(predicate, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = () => {
      const value = predicate();
      if (value) return resolve(value);
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 25);
    };
    tick();
  });
}

class Daemon {
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strongroom-e2e-'));
    this.log = '';
    this.proc = null;
  }

  // Fresh SoftHSM2 token in this.dir/tokens; returns the environment the daemon needs.
  // With { tls: true } the listener serves HTTPS with its key in the token (tls_key_label) and
  // the certificate this.certFile, which the test makes with the -tls-* commands (cli()).
  // With { raft: { node, apiPort, clusterPort, certs: { ca, cert, key }, retryJoin } } the
  // storage is a Raft node listening on those fixed ports (a cluster needs them in its config).
  // `listenerExtra` is HCL added inside the listener block, `extra` HCL added at the top level
  // (e.g. telemetry stanzas).
  makeToken({ tls = false, raft = null, listenerExtra = '', extra = '' } = {}) {
    const tokens = path.join(this.dir, 'tokens');
    fs.mkdirSync(tokens);
    this.softhsmConf = path.join(this.dir, 'softhsm2.conf');
    fs.writeFileSync(this.softhsmConf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\n`);
    this.env = { ...process.env, SOFTHSM2_CONF: this.softhsmConf };
    execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'e2e', '--pin', '4321', '--so-pin', '8765'],
                 { env: this.env, stdio: 'ignore' });
    fs.writeFileSync(path.join(this.dir, 'pin'), '4321\n', { mode: 0o600 });
    this.certFile = path.join(this.dir, 'tls.crt');
    const tlsLines = tls
      ? `  tls_cert_file = "${this.certFile}"\n  tls_key_label = "strongroom-tls"`
      : '  tls_disable = true';
    const storage = raft
      ? `api_addr     = "http://127.0.0.1:${raft.apiPort}"
cluster_addr = "https://127.0.0.1:${raft.clusterPort}"
storage "raft" {
  path              = "${path.join(this.dir, 'data')}"
  node_id           = "${raft.node}"
  cluster_ca_file   = "${raft.certs.ca}"
  cluster_cert_file = "${raft.certs.cert}"
  cluster_key_file  = "${raft.certs.key}"
${raft.retryJoin ? `  retry_join {\n    leader_api_addr = "${raft.retryJoin}"\n${raft.joinTokenFile ? `    join_token_file = "${raft.joinTokenFile}"\n` : ''}  }` : ''}
}`
      : `storage "rocksdb" {
  path = "${path.join(this.dir, 'data')}"
}`;
    fs.writeFileSync(path.join(this.dir, 'strongroom.hcl'), `
listener "tcp" {
  address     = "127.0.0.1:${raft ? raft.apiPort : 0}"
${tlsLines}
${listenerExtra}
}
${storage}
${extra}
seal "pkcs11" {
  lib         = "/usr/lib/softhsm/libsofthsm2.so"
  token_label = "e2e"
  pin         = "file://${path.join(this.dir, 'pin')}"
}
workers = 2
`);
  }

  // Runs strongroomd with this daemon's configuration and `args` to completion; returns stdout.
  cli(args) {
    return execFileSync(path.join(BIN, 'strongroomd'), [`-config=${path.join(this.dir, 'strongroom.hcl')}`, ...args],
                        { env: this.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  async start(args) {
    this.log = '';
    // Its own process group (detached), which its spawner and workers inherit: kill() takes
    // them all, as systemd's control-group kill and a container's end do.
    this.proc = spawn(path.join(BIN, 'strongroomd'), args, { env: this.env || process.env, detached: true });
    const onData = (d) => { this.log += d.toString(); };
    this.proc.stdout.on('data', onData);
    this.proc.stderr.on('data', onData);
    const m = await waitFor(() => /API on (https?):\/\/127\.0\.0\.1:(\d+)/.exec(this.log), 20000, 'the API address');
    this.port = Number(m[2]);
    await waitFor(() => (this.log.match(/\]: serving/g) || []).length >= 2, 20000, 'the workers');
    this.addr = `${m[1]}://127.0.0.1:${this.port}`;
    return this;
  }

  // The API listens before dev mode has initialised, unsealed and mounted secret/; the banner
  // (with the root token) is printed only after that, so wait for it too.
  async startDev(rootToken) {
    await this.start(['-dev', `-dev-root-token-id=${rootToken}`, '-dev-listen-address=127.0.0.1:0']);
    await waitFor(() => /Root Token: /.test(this.log), 20000, 'the dev mode set-up');
    return this;
  }

  startConfig() {
    if (!this.env) this.makeToken();  // call makeToken({ tls: true }) first for HTTPS
    return this.start([`-config=${path.join(this.dir, 'strongroom.hcl')}`]);
  }

  // SIGKILL: the node dies without a word (a crashed or cut-off server).
  async kill() {
    if (!this.proc || this.proc.exitCode !== null) return;
    const exited = new Promise((resolve) => this.proc.once('exit', resolve));
    const group = this.proc.pid;
    process.kill(-group, 'SIGKILL');
    await exited;
    this.proc = null;
    // Its workers hold the API socket until they are gone: a start at once needs the port.
    await waitFor(() => !groupAlive(group), 10000, `the processes of group ${group} to end`);
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return this.proc ? this.proc.exitCode : null;
    const exited = new Promise((resolve) => this.proc.once('exit', (code) => resolve(code)));
    this.proc.kill('SIGTERM');
    const code = await exited;
    this.proc = null;
    return code;
  }

  async destroy() {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// The dev server listens before it has finished unsealing, creating the root token and
// mounting secret/; on a loaded machine the first requests can see "Vault is sealed" or an
// unknown token. Waits until the dev set-up is visible through the API.
async function waitDevReady(client) {
  const deadline = Date.now() + 20000;
  for (;;) {
    try {
      const mounts = await client.mounts();
      if (mounts.data && mounts.data['secret/']) return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline) throw new Error('dev server never mounted secret/');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// A dev appliance for one test (destroyed after it) and a node-vault client holding its root
// token, once the dev set-up is visible.
async function startDevClient(t, rootToken) {
  const nodeVault = require('node-vault');
  const d = new Daemon();
  t.after(() => d.destroy());
  await d.startDev(rootToken);
  const root = nodeVault({ endpoint: d.addr, token: rootToken });
  await waitDevReady(root);
  return { d, root };
}

// Plain HTTP, for status codes and bodies exactly as sent.
async function api(d, token, method, p, body) {
  const headers = {};
  if (token) headers['X-Vault-Token'] = token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${d.addr}/v1/${p}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

// A free loopback port (bound and released), or whether `port` is free, when given one.
function freePort(port = 0) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(0));
    srv.listen(port, '127.0.0.1', () => {
      const bound = srv.address().port;
      srv.close(() => resolve(bound));
    });
  });
}

// Two adjacent free ports: an API port and the cluster port after it (Vault's convention).
async function portPair() {
  for (;;) {
    const p = await freePort();
    if (p > 0 && p < 65000 && (await freePort(p + 1)) === p + 1) return p;
  }
}

module.exports = { Daemon, waitFor, waitDevReady, startDevClient, api, freePort, portPair, CLI };
