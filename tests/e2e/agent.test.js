// End-to-end: `strongroom agent` (Vault Agent's configuration, auto-auth, sinks, templates)
// against a real dev appliance. Kubernetes auth goes through the fake API server (fake_kube.js);
// AppRole and token_file through the appliance alone. Every agent's log is collected and checked
// at the end for secret values and tokens.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { waitFor, startDevClient, api } = require('./harness');
const { makeKeyPair, signServiceAccountJwt, startFakeKube } = require('./fake_kube');

const BIN = process.env.STRONGROOM_BIN || path.resolve(__dirname, '../../build/appliance');
const CLI = process.env.STRONGROOM_CLI || path.resolve(BIN, '..', 'cli', 'strongroom');
const ROOT = 'agent-e2e-root';

// The seed: the annotation's template (a YAML `|` block, so it ends with a newline).
const SEED_TEMPLATE = `{{- with secret "secret/data/lobstack/api-keys" -}}
export ANTHROPIC_API_KEY="{{ .Data.data.anthropic_api_key }}"
export OPENAI_API_KEY="{{ .Data.data.openai_api_key }}"
export STRIPE_SECRET_KEY="{{ .Data.data.stripe_secret_key }}"
{{- end -}}
`;
const KEYS = {
  anthropic_api_key: 'sk-ant-e2e-0001',
  openai_api_key: 'sk-oai-e2e-0002',
  stripe_secret_key: 'sk_live_e2e_0003',
};
// What Vault Agent renders for the seed (the trailing `-}}` trims the last newline).
function seedOutput(keys) {
  return `export ANTHROPIC_API_KEY="${keys.anthropic_api_key}"\n` +
    `export OPENAI_API_KEY="${keys.openai_api_key}"\n` +
    `export STRIPE_SECRET_KEY="${keys.stripe_secret_key}"`;
}

const SECRETS_SEEN = new Set(Object.values(KEYS));  // checked against every agent log
const LOGS = [];

function tmpdir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strongroom-agent-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// Starts the agent with `config` written to dir/agent.hcl; returns { proc, log(), exited }.
function startAgent(t, dir, config, { args = [], env = {} } = {}) {
  const file = path.join(dir, `agent-${LOGS.length}.hcl`);
  fs.writeFileSync(file, config);
  const proc = spawn(CLI, ['agent', `-config=${file}`, ...args], { env: { ...process.env, ...env } });
  const entry = { log: '' };
  LOGS.push(entry);
  proc.stdout.on('data', (d) => { entry.log += d.toString(); });
  proc.stderr.on('data', (d) => { entry.log += d.toString(); });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  t.after(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
  });
  return { proc, exited, log: () => entry.log };
}

async function devWithSecret(t) {
  const { d, root } = await startDevClient(t, ROOT);
  await root.write('secret/data/lobstack/api-keys', { data: KEYS });
  await root.addPolicy({
    name: 'lobstack-api',
    rules: 'path "secret/data/lobstack/*" { capabilities = ["read"] }\n' +
      'path "transit/encrypt/lobstack" { capabilities = ["update"] }\n' +
      'path "kv1/*" { capabilities = ["read"] }',
  });
  return { d, root };
}

async function withKubernetes(t, d, root, { ttl = '1h' } = {}) {
  await root.enableAuth({ mount_point: 'kubernetes', type: 'kubernetes' });
  const cluster = makeKeyPair('RS256');
  const kube = await startFakeKube({ publicKey: cluster.publicKey, reviewerToken: 'reviewer-token' });
  t.after(() => kube.close());
  await root.write('auth/kubernetes/config',
    { kubernetes_host: kube.url, kubernetes_ca_cert: kube.caPem, token_reviewer_jwt: 'reviewer-token' });
  await root.write('auth/kubernetes/role/lobstack-api', {
    bound_service_account_names: 'lobstack-api', bound_service_account_namespaces: 'lobstack',
    policies: 'lobstack-api', ttl,
  });
  const jwt = signServiceAccountJwt({
    privateKey: cluster.privateKey, namespace: 'lobstack', name: 'lobstack-api',
    uid: '5b6c7d8e-0000-4000-8000-0000000000aa',
  });
  SECRETS_SEEN.add(jwt);
  return jwt;
}

async function withAppRole(root, dir, { ttl = '1h' } = {}) {
  await root.enableAuth({ mount_point: 'approle', type: 'approle' });
  await root.write('auth/approle/role/agent', { token_policies: 'lobstack-api', token_ttl: ttl });
  const roleId = (await root.read('auth/approle/role/agent/role-id')).data.role_id;
  const secretId = (await root.write('auth/approle/role/agent/secret-id', {})).data.secret_id;
  SECRETS_SEEN.add(secretId);
  fs.writeFileSync(path.join(dir, 'role-id'), `${roleId}\n`);
  fs.writeFileSync(path.join(dir, 'secret-id'), `${secretId}\n`);
}

// A template stanza rendering the seed template into dest.
function seedTemplateStanza(dest) {
  return `template {
  destination = "${dest}"
  contents    = <<EOT
${SEED_TEMPLATE}EOT
}`;
}

// auto_auth's approle method reading dir/role-id and dir/secret-id (removed once read, Vault
// Agent's default, unless keepSecretId).
function approleMethod(dir, { keepSecretId = false } = {}) {
  return `  method "approle" {
    config = {
      role_id_file_path   = "${path.join(dir, 'role-id')}"
      secret_id_file_path = "${path.join(dir, 'secret-id')}"${keepSecretId ? '\n      remove_secret_id_file_after_reading = false' : ''}
    }
  }`;
}

function fileMode(p) {
  return fs.statSync(p).mode & 0o7777;
}

function readOr(p, fallback = null) {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return fallback;
  }
}

test('agent: the seed template renders byte for byte (Kubernetes auth, exit_after_auth)', async (t) => {
  const { d, root } = await devWithSecret(t);
  const jwt = await withKubernetes(t, d, root);
  const dir = tmpdir(t);
  fs.writeFileSync(path.join(dir, 'sa-token'), jwt);
  const dest = path.join(dir, 'secrets', 'api-keys');
  const agent = startAgent(t, dir, `
vault {
  address = "${d.addr}"
}
auto_auth {
  method "kubernetes" {
    mount_path = "auth/kubernetes"
    config = {
      role       = "lobstack-api"
      token_path = "${path.join(dir, 'sa-token')}"
    }
  }
  sink "file" {
    config = {
      path = "${path.join(dir, 'token')}"
    }
  }
}
exit_after_auth = true
pid_file = "${path.join(dir, 'pid')}"
${seedTemplateStanza(dest)}
`);
  const { code } = await agent.exited;
  assert.equal(code, 0, agent.log());
  assert.equal(fs.readFileSync(dest, 'utf8'), seedOutput(KEYS));
  assert.equal(fileMode(dest), 0o644);  // Vault Agent's default perms
  const token = fs.readFileSync(path.join(dir, 'token'), 'utf8');
  SECRETS_SEEN.add(token);
  assert.equal(fileMode(path.join(dir, 'token')), 0o640);  // the file sink's default mode
  const self = await api(d, token, 'GET', 'auth/token/lookup-self');
  assert.equal(self.status, 200);
  assert.equal(self.body.data.path, 'auth/kubernetes/login');
  assert.equal(fs.existsSync(path.join(dir, 'pid')), false);  // removed on exit
});

test('agent: the same configuration in JSON, as the injector writes it, from -config-env', async (t) => {
  const { d, root } = await devWithSecret(t);
  const jwt = await withKubernetes(t, d, root);
  const dir = tmpdir(t);
  fs.writeFileSync(path.join(dir, 'sa-token'), jwt);
  const dest = path.join(dir, 'api-keys');
  const config = {
    auto_auth: {
      method: { type: 'kubernetes', mount_path: 'auth/kubernetes',
        config: { role: 'lobstack-api', token_path: path.join(dir, 'sa-token') } },
      sink: [{ type: 'file', config: { path: path.join(dir, 'token') } }],
    },
    exit_after_auth: true,
    pid_file: path.join(dir, 'pid'),
    vault: { address: d.addr },
    template: [{ destination: dest, contents: SEED_TEMPLATE, left_delimiter: '{{', right_delimiter: '}}' }],
    template_config: { exit_on_retry_failure: true, static_secret_render_interval: '5m' },
  };
  const proc = spawn(CLI, ['agent', '-config-env=VAULT_CONFIG'],
    { env: { ...process.env, VAULT_CONFIG: Buffer.from(JSON.stringify(config)).toString('base64') } });
  const entry = { log: '' };
  LOGS.push(entry);
  proc.stderr.on('data', (x) => { entry.log += x.toString(); });
  const code = await new Promise((resolve) => proc.once('exit', resolve));
  assert.equal(code, 0, entry.log);
  assert.equal(fs.readFileSync(dest, 'utf8'), seedOutput(KEYS));
});

test('agent: AppRole auth; a changed secret appears within one render interval; SIGTERM', async (t) => {
  const { d, root } = await devWithSecret(t);
  const dir = tmpdir(t);
  await withAppRole(root, dir);
  const dest = path.join(dir, 'api-keys');
  const agent = startAgent(t, dir, `
vault { address = "${d.addr}" }
auto_auth {
${approleMethod(dir, { keepSecretId: true })}
  sink "file" {
    config = { path = "${path.join(dir, 'token')}", mode = "0600" }
  }
}
pid_file = "${path.join(dir, 'pid')}"
template_config { static_secret_render_interval = "1s" }
template {
  destination = "${dest}"
  perms       = "0600"
  contents    = <<EOT
${SEED_TEMPLATE}EOT
}
`);
  await waitFor(() => readOr(dest) === seedOutput(KEYS), 20000, 'the first render');
  assert.equal(fileMode(dest), 0o600);
  assert.equal(fileMode(path.join(dir, 'token')), 0o600);
  assert.equal(fs.readFileSync(path.join(dir, 'pid'), 'utf8').trim(), String(agent.proc.pid));
  const firstInode = fs.statSync(dest).ino;

  const rotated = { ...KEYS, openai_api_key: 'sk-oai-e2e-rotated-0004' };
  SECRETS_SEEN.add(rotated.openai_api_key);
  await root.write('secret/data/lobstack/api-keys', { data: rotated });
  // Within one interval (1 s) plus a render; 10 s leaves room for a loaded machine.
  await waitFor(() => readOr(dest) === seedOutput(rotated), 10000, 'the rotated key in the file');
  // Replaced by rename (a new inode), never rewritten in place.
  assert.notEqual(fs.statSync(dest).ino, firstInode);
  assert.equal(fileMode(dest), 0o600);

  agent.proc.kill('SIGTERM');
  const { code } = await agent.exited;
  assert.equal(code, 0);
  assert.equal(fs.existsSync(path.join(dir, 'pid')), false);
  assert.match(agent.log(), /received SIGTERM; exiting/);
});

test('agent: a revoked token is replaced by logging in again', async (t) => {
  const { d, root } = await devWithSecret(t);
  const jwt = await withKubernetes(t, d, root);
  const dir = tmpdir(t);
  fs.writeFileSync(path.join(dir, 'sa-token'), jwt);
  const dest = path.join(dir, 'api-keys');
  const sink = path.join(dir, 'token');
  const agent = startAgent(t, dir, `
vault { address = "${d.addr}" }
auto_auth {
  method "kubernetes" {
    config = { role = "lobstack-api", token_path = "${path.join(dir, 'sa-token')}" }
  }
  sink "file" { config = { path = "${sink}" } }
}
template_config { static_secret_render_interval = "1s" }
${seedTemplateStanza(dest)}
`);
  await waitFor(() => readOr(dest) === seedOutput(KEYS), 20000, 'the first render');
  const first = fs.readFileSync(sink, 'utf8');
  SECRETS_SEEN.add(first);
  const revoke = await api(d, ROOT, 'POST', 'auth/token/revoke', { token: first });
  assert.equal(revoke.status, 204);
  const rotated = { ...KEYS, stripe_secret_key: 'sk_live_e2e_rotated_0005' };
  SECRETS_SEEN.add(rotated.stripe_secret_key);
  await root.write('secret/data/lobstack/api-keys', { data: rotated });
  await waitFor(() => readOr(dest) === seedOutput(rotated), 15000, 'a render with a new token');
  const second = fs.readFileSync(sink, 'utf8');
  SECRETS_SEEN.add(second);
  assert.notEqual(second, first);
  assert.equal((await api(d, second, 'GET', 'auth/token/lookup-self')).status, 200);
  assert.match(agent.log(), /logging in again/);
});

test('agent: renews the token before it expires, and logs in again at its max TTL', async (t) => {
  const { d, root } = await devWithSecret(t);
  const dir = tmpdir(t);
  await root.enableAuth({ mount_point: 'approle', type: 'approle' });
  await root.write('auth/approle/role/short', { token_policies: 'lobstack-api', token_ttl: '3s', token_max_ttl: '8s' });
  const roleId = (await root.read('auth/approle/role/short/role-id')).data.role_id;
  const secretId = (await root.write('auth/approle/role/short/secret-id', {})).data.secret_id;
  SECRETS_SEEN.add(secretId);
  fs.writeFileSync(path.join(dir, 'role-id'), roleId);
  fs.writeFileSync(path.join(dir, 'secret-id'), secretId);
  const sink = path.join(dir, 'token');
  const dest = path.join(dir, 'api-keys');
  const agent = startAgent(t, dir, `
vault { address = "${d.addr}" }
auto_auth {
${approleMethod(dir, { keepSecretId: true })}
  sink "file" { config = { path = "${sink}" } }
}
template_config { static_secret_render_interval = "1s" }
template {
  destination = "${dest}"
  contents    = "{{ with secret \\"secret/data/lobstack/api-keys\\" }}{{ .Data.data.openai_api_key }}{{ end }}"
}
`);
  await waitFor(() => readOr(dest) === KEYS.openai_api_key, 20000, 'the first render');
  const first = fs.readFileSync(sink, 'utf8');
  SECRETS_SEEN.add(first);
  // Renewed at two thirds of 3 s, before it expires.
  await waitFor(() => /auth: token renewed/.test(agent.log()), 10000, 'a renewal');
  // Past the 8 s max TTL no renewal can help: a new login, a new token in the sink.
  await waitFor(() => { const now = readOr(sink); return now && now !== first; }, 20000, 'a new token after the max TTL');
  const second = fs.readFileSync(sink, 'utf8');
  SECRETS_SEEN.add(second);
  assert.equal((await api(d, second, 'GET', 'auth/token/lookup-self')).status, 200);
  const rotated = { ...KEYS, openai_api_key: 'sk-oai-e2e-rotated-0007' };
  SECRETS_SEEN.add(rotated.openai_api_key);
  await root.write('secret/data/lobstack/api-keys', { data: rotated });
  await waitFor(() => readOr(dest) === rotated.openai_api_key, 10000, 'a render with the new token');
});

// A TCP relay the test can cut and restore: the server "goes down" for the agent.
async function startRelay(target) {
  const sockets = new Set();
  let server = null;
  const port = await new Promise((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const p = probe.address().port;
      probe.close(() => resolve(p));
    });
  });
  const up = () => new Promise((resolve) => {
    server = net.createServer((c) => {
      const s = net.connect(target.port, '127.0.0.1');
      sockets.add(c);
      sockets.add(s);
      c.pipe(s);
      s.pipe(c);
      const end = () => { c.destroy(); s.destroy(); sockets.delete(c); sockets.delete(s); };
      c.on('error', end); s.on('error', end); c.on('close', end); s.on('close', end);
    });
    server.listen(port, '127.0.0.1', resolve);
  });
  const down = () => new Promise((resolve) => {
    for (const s of sockets) s.destroy();
    sockets.clear();
    server.close(() => resolve());
  });
  await up();
  return { port, up, down };
}

test('agent: server down keeps the last file, and the agent recovers when it is back', async (t) => {
  const { d, root } = await devWithSecret(t);
  const dir = tmpdir(t);
  await withAppRole(root, dir);
  const relay = await startRelay({ port: d.port });
  t.after(() => relay.down().catch(() => {}));
  const dest = path.join(dir, 'api-keys');
  const agent = startAgent(t, dir, `
vault { address = "http://127.0.0.1:${relay.port}" }
auto_auth {
${approleMethod(dir)}
}
template_config { static_secret_render_interval = "1s" }
${seedTemplateStanza(dest)}
`);
  await waitFor(() => readOr(dest) === seedOutput(KEYS), 20000, 'the first render');
  // The secret id file is removed once read (Vault Agent's default).
  assert.equal(fs.existsSync(path.join(dir, 'secret-id')), false);
  await relay.down();
  const rotated = { ...KEYS, anthropic_api_key: 'sk-ant-e2e-rotated-0006' };
  SECRETS_SEEN.add(rotated.anthropic_api_key);
  await root.write('secret/data/lobstack/api-keys', { data: rotated });
  await waitFor(() => /attempt 2\)/.test(agent.log()), 15000, 'failed renders while down');
  assert.equal(fs.readFileSync(dest, 'utf8'), seedOutput(KEYS));  // the last good file stays
  assert.equal(agent.proc.exitCode, null);
  await relay.up();
  await waitFor(() => readOr(dest) === seedOutput(rotated), 30000, 'the render after recovery');
});

test('agent: AppRole before the server is up: the secret id is removed only after a login, and kept for the next', async (t) => {
  const { d, root } = await devWithSecret(t);
  const dir = tmpdir(t);
  await withAppRole(root, dir);
  const relay = await startRelay({ port: d.port });
  t.after(() => relay.down().catch(() => {}));
  await relay.down();
  const dest = path.join(dir, 'api-keys');
  const sink = path.join(dir, 'token');
  const agent = startAgent(t, dir, `
vault { address = "http://127.0.0.1:${relay.port}" }
auto_auth {
${approleMethod(dir)}
  sink "file" { config = { path = "${sink}" } }
}
template_config { static_secret_render_interval = "1s" }
${seedTemplateStanza(dest)}
`);
  await waitFor(() => /login failed \(attempt 2\)/.test(agent.log()), 15000, 'failed logins');
  assert.ok(fs.existsSync(path.join(dir, 'secret-id')), 'the secret id file stays until a login used it');
  await relay.up();
  await waitFor(() => readOr(dest) === seedOutput(KEYS), 30000, 'the first render');
  assert.equal(fs.existsSync(path.join(dir, 'secret-id')), false);
  // A later login (the token revoked) uses the secret id kept in memory.
  const first = fs.readFileSync(sink, 'utf8');
  SECRETS_SEEN.add(first);
  assert.equal((await api(d, ROOT, 'POST', 'auth/token/revoke', { token: first })).status, 204);
  const rotated = { ...KEYS, openai_api_key: 'sk-oai-e2e-rotated-0010' };
  SECRETS_SEEN.add(rotated.openai_api_key);
  await root.write('secret/data/lobstack/api-keys', { data: rotated });
  await waitFor(() => readOr(dest) === seedOutput(rotated), 15000, 'a render after the new login');
  SECRETS_SEEN.add(fs.readFileSync(sink, 'utf8'));
  assert.notEqual(fs.readFileSync(sink, 'utf8'), first);
});

test('agent: Transit encrypt through a write-style secret, KV v1, token_file auth, a command', async (t) => {
  const { d, root } = await devWithSecret(t);
  await root.mount({ mount_point: 'transit', type: 'transit' });
  await root.write('transit/keys/lobstack', {});
  await root.mount({ mount_point: 'kv1', type: 'kv' });
  await root.write('kv1/app', { password: 'kv1-password-0009', port: 5432 });
  SECRETS_SEEN.add('kv1-password-0009');
  const dir = tmpdir(t);
  // (node-vault's tokenCreate makes the created token the client's: root is used up to here.)
  const token = (await root.tokenCreate({ policies: ['lobstack-api'], ttl: '1h' })).auth.client_token;
  SECRETS_SEEN.add(token);
  fs.writeFileSync(path.join(dir, 'vault-token'), `${token}\n`);
  const dest = path.join(dir, 'out', 'cipher');
  const kv1 = path.join(dir, 'out', 'kv1.json');
  const agent = startAgent(t, dir, `
vault { address = "${d.addr}" }
auto_auth {
  method "token_file" {
    config = { token_file_path = "${path.join(dir, 'vault-token')}" }
  }
}
exit_after_auth = true
template {
  destination = "${dest}"
  command     = "echo rendered >> ${path.join(dir, 'command-ran')}"
  contents    = "{{ with secret \\"transit/encrypt/lobstack\\" \\"plaintext=aGVsbG8=\\" }}{{ .Data.ciphertext }}{{ end }}"
}
template {
  destination = "${kv1}"
  contents    = "{{ with secret \\"kv1/app\\" }}{{ .Data | toJSON }} {{ .Data.password | base64Encode }}{{ end }}"
}
`);
  const { code } = await agent.exited;
  assert.equal(code, 0, agent.log());
  const cipher = fs.readFileSync(dest, 'utf8');
  assert.match(cipher, /^vault:v1:[A-Za-z0-9+/=]+$/);
  const plain = await api(d, ROOT, 'POST', 'transit/decrypt/lobstack', { ciphertext: cipher });
  assert.equal(plain.body.data.plaintext, 'aGVsbG8=');
  assert.equal(fs.readFileSync(path.join(dir, 'command-ran'), 'utf8'), 'rendered\n');
  // KV v1: .Data holds the fields; toJSON sorts keys as Go's encoding/json does.
  assert.equal(fs.readFileSync(kv1, 'utf8'),
    `{"password":"kv1-password-0009","port":5432} ${Buffer.from('kv1-password-0009').toString('base64')}`);
});

test('agent: HTTPS with ca_cert; an untrusted or misnamed server is refused; tls_skip_verify', async (t) => {
  const { Daemon } = require('./harness');
  const nodeVault = require('node-vault');
  const d = new Daemon();
  t.after(() => d.destroy());
  d.makeToken({ tls: true });
  d.cli(['-tls-generate-key']);
  d.cli([`-tls-self-signed-cert=${d.certFile}`, '-tls-cert-hosts=127.0.0.1,localhost']);
  await d.startConfig();
  const ca = fs.readFileSync(d.certFile, 'utf8');
  const vault = nodeVault({ endpoint: d.addr, requestOptions: { ca } });
  const init = await vault.request({ path: '/sys/init', method: 'PUT', json: { recovery_shares: 1, recovery_threshold: 1 } });
  vault.token = init.root_token;
  SECRETS_SEEN.add(init.root_token);
  await vault.mount({ mount_point: 'secret', type: 'kv', options: { version: '2' } });
  await vault.write('secret/data/tls', { data: { k: 'tls-secret-value-0008' } });
  SECRETS_SEEN.add('tls-secret-value-0008');
  const dir = tmpdir(t);
  fs.writeFileSync(path.join(dir, 'vault-token'), init.root_token);
  const config = (vaultStanza, dest) => `
vault {
  address = "${d.addr}"
${vaultStanza}
}
auto_auth {
  method "token_file" {
    exit_on_err = true
    config = { token_file_path = "${path.join(dir, 'vault-token')}" }
  }
}
exit_after_auth = true
template {
  destination = "${dest}"
  contents    = "{{ with secret \\"secret/data/tls\\" }}{{ .Data.data.k }}{{ end }}"
}
`;
  const run = async (stanza, dest) => {
    const agent = startAgent(t, dir, config(stanza, path.join(dir, dest)));
    const { code } = await agent.exited;
    return { code, log: agent.log(), file: readOr(path.join(dir, dest)) };
  };
  const trusted = await run(`  ca_cert = "${d.certFile}"`, 'trusted');
  assert.equal(trusted.code, 0, trusted.log);
  assert.equal(trusted.file, 'tls-secret-value-0008');
  const untrusted = await run('', 'untrusted');
  assert.equal(untrusted.code, 1, untrusted.log);
  assert.match(untrusted.log, /TLS handshake: .*certificate verify failed/);
  assert.equal(untrusted.file, null);
  const misnamed = await run(`  ca_cert = "${d.certFile}"\n  tls_server_name = "vault.example"`, 'misnamed');
  assert.equal(misnamed.code, 1, misnamed.log);
  assert.match(misnamed.log, /hostname mismatch/);
  const skipped = await run('  tls_skip_verify = true', 'skipped');
  assert.equal(skipped.code, 0, skipped.log);
  assert.equal(skipped.file, 'tls-secret-value-0008');
});

// Vault Agent's sink wrap_ttl: the sink file holds the JSON wrap_info (api.SecretWrapInfo) of a
// sys/wrapping/wrap of {"token": <the agent's token>}, while the agent renders with the token.
test('agent: a sink with wrap_ttl holds a wrapped copy of the token; the agent keeps using it', async (t) => {
  const { d, root } = await devWithSecret(t);
  const dir = tmpdir(t);
  await withAppRole(root, dir);
  const dest = path.join(dir, 'api-keys');
  const plain = path.join(dir, 'token');
  const wrapped = path.join(dir, 'token-wrapped');
  startAgent(t, dir, `
vault { address = "${d.addr}" }
auto_auth {
${approleMethod(dir)}
  sink "file" { config = { path = "${plain}" } }
  sink "file" {
    wrap_ttl = "5m"
    config = { path = "${wrapped}", mode = "0600" }
  }
}
${seedTemplateStanza(dest)}
`);
  await waitFor(() => readOr(dest) === seedOutput(KEYS) && readOr(wrapped) && readOr(plain), 20000,
    'the render and both sinks');
  const token = readOr(plain);
  SECRETS_SEEN.add(token);
  const text = readOr(wrapped);
  assert.equal(text.endsWith('}\n'), true, 'one JSON line, as Go\'s encoder writes it');
  assert.equal(text.split('\n').length, 2);
  const info = JSON.parse(text);
  SECRETS_SEEN.add(info.token);
  assert.deepEqual(Object.keys(info),
    ['token', 'accessor', 'ttl', 'creation_time', 'creation_path', 'wrapped_accessor']);
  assert.equal(info.ttl, 300);
  assert.equal(info.creation_path, 'sys/wrapping/wrap');
  assert.equal(info.wrapped_accessor, '');
  assert.notEqual(info.token, token);
  assert.equal(fileMode(wrapped), 0o600);
  assert.equal(fileMode(plain), 0o640);
  // The recipient unwraps it with a Vault client library, once.
  const nodeVault = require('node-vault');
  const recipient = nodeVault({ endpoint: d.addr, token: info.token });
  const opened = await recipient.unwrap();
  assert.equal(opened.data.token, token);
  const app = nodeVault({ endpoint: d.addr, token: opened.data.token });
  assert.equal((await app.read('secret/data/lobstack/api-keys')).data.data.openai_api_key, KEYS.openai_api_key);
  await assert.rejects(nodeVault({ endpoint: d.addr, token: ROOT }).unwrap({ token: info.token }),
    (err) => err.response.statusCode === 400 && /wrapping token is not valid or does not exist/.test(err.message));
});

// Vault Agent's method wrap_ttl: the login itself is wrapped; the one sink gets its wrap_info,
// whose wrapped_accessor names the token inside, and the agent (which cannot use it) pauses.
test('agent: method wrap_ttl wraps the login; its wrap_info goes to the sink; exit_after_auth', async (t) => {
  const { d, root } = await devWithSecret(t);
  const dir = tmpdir(t);
  await withAppRole(root, dir);
  const sink = path.join(dir, 'token-wrapped');
  const agent = startAgent(t, dir, `
vault { address = "${d.addr}" }
auto_auth {
  method "approle" {
    wrap_ttl = "2m"
    config = {
      role_id_file_path   = "${path.join(dir, 'role-id')}"
      secret_id_file_path = "${path.join(dir, 'secret-id')}"
    }
  }
  sink "file" { config = { path = "${sink}" } }
}
exit_after_auth = true
`);
  const { code } = await agent.exited;
  assert.equal(code, 0, agent.log());
  assert.match(agent.log(), /wrapped \(wrapping token ttl 120s\); writing the wrapping token to the sink and pausing/);
  const info = JSON.parse(fs.readFileSync(sink, 'utf8'));
  SECRETS_SEEN.add(info.token);
  assert.equal(info.creation_path, 'auth/approle/login');
  assert.equal(info.ttl, 120);
  assert.notEqual(info.wrapped_accessor, '');
  assert.equal(fs.existsSync(path.join(dir, 'secret-id')), false, 'the secret id was used');
  const opened = await nodeVaultUnwrap(d, info.token);
  SECRETS_SEEN.add(opened.auth.client_token);
  assert.equal(opened.auth.accessor, info.wrapped_accessor);
  assert.deepEqual(opened.auth.policies, ['default', 'lobstack-api']);
  const app = require('node-vault')({ endpoint: d.addr, token: opened.auth.client_token });
  assert.equal((await app.read('secret/data/lobstack/api-keys')).data.data.stripe_secret_key, KEYS.stripe_secret_key);
});

// node-vault's unwrap() with the wrapping token in the body (the client holding another token).
async function nodeVaultUnwrap(d, wrappingToken) {
  return require('node-vault')({ endpoint: d.addr, token: ROOT }).unwrap({ token: wrappingToken });
}

test('agent: bad configurations are refused with a clear error before any request', async (t) => {
  const dir = tmpdir(t);
  const cases = [
    ['listener "tcp" { address = "127.0.0.1:8100" }\nauto_auth { method "approle" { config = { role_id_file_path = "/x" } } }',
      /listener.*not supported by strongroom agent/],
    ['auto_auth { method "kubernetes" { config = { role = "r" } } }\ntemplat { destination = "/x" }',
      /templat: unknown key/],
    ['auto_auth { method "ldap" { } }', /type "ldap" is not supported/],
    ['auto_auth { method "kubernetes" { config = { } } }', /kubernetes needs "role"/],
    ['auto_auth { method "approle" { config = { role_id_file_path = "/x" } } }\ntemplate { contents = "x" }',
      /template 1: no destination/],
    ['template { destination = "/x" contents = "x" }', /need an auto_auth method/],
    ['auto_auth { method "approle" { config = { role_id_file_path = "/x" } } }\n' +
      'template { destination = "/tmp/x" contents = "{{ .Data" }', /template \/tmp\/x: template:/],
    // Vault Agent's rules for a wrapping method, with its texts; and no template with one.
    ['auto_auth { method "approle" { wrap_ttl = "1m" config = { role_id_file_path = "/x" } }\n' +
      'sink "file" { config = { path = "/tmp/a" } }\nsink "file" { config = { path = "/tmp/b" } } }',
      /error parsing auto_auth: wrapping enabled on auth method and 0 or many sinks defined/],
    ['auto_auth { method "approle" { wrap_ttl = "1m" config = { role_id_file_path = "/x" } }\n' +
      'sink "file" { wrap_ttl = "1m" config = { path = "/tmp/a" } } }',
      /error parsing auto_auth: wrapping enabled both on auth method and sink/],
    ['auto_auth { method "approle" { wrap_ttl = "1m" config = { role_id_file_path = "/x" } }\n' +
      'sink "file" { config = { path = "/tmp/a" } } }\ntemplate { destination = "/tmp/x" contents = "x" }',
      /the agent cannot use the wrapped token, so it cannot render templates/],
  ];
  for (const [config, expected] of cases) {
    const agent = startAgent(t, dir, config);
    const { code } = await agent.exited;
    assert.equal(code, 1, config);
    assert.match(agent.log(), expected, config);
  }
});

test('agent: no secret value or token in any agent log', () => {
  assert.ok(LOGS.length > 5);
  for (const { log } of LOGS) {
    for (const secret of SECRETS_SEEN) {
      assert.equal(log.includes(secret), false, `a secret value in an agent log:\n${log}`);
    }
  }
});
