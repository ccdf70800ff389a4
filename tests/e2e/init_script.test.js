// End-to-end: deploy/kubernetes/init/strongroom-init.sh (the init Job's script) against a real dev
// appliance and a fake Kubernetes API server: run twice (idempotent), then the reference set-up of
// docs/reference-setup.md must be in place (mounts, transit keys rotated every 90 days, the four
// policies verbatim, Kubernetes auth and its three roles, the file audit device) and an API pod and an
// agent pod log in with service-account JWTs checked through TokenReview.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startDevClient, api, CLI } = require('./harness');
const { makeKeyPair, signServiceAccountJwt, startFakeKube } = require('./fake_kube');

const SCRIPT = path.resolve(__dirname, '../../deploy/kubernetes/init/strongroom-init.sh');
const ROOT = 'init-script-e2e-root';

// The policies exactly as docs/reference-setup.md shows them ("`name`…:" then a code block).
function documentedPolicies() {
  const md = fs.readFileSync(path.resolve(__dirname, '../../docs/reference-setup.md'), 'utf8');
  const out = {};
  for (const m of md.matchAll(/^`(lobstack-[a-z-]+)`[^\n]*:\n\n```\n([\s\S]*?)```/gm)) out[m[1]] = m[2];
  assert.deepEqual(Object.keys(out).sort(), ['lobstack-agent', 'lobstack-api', 'lobstack-api-csi', 'lobstack-provisioner']);
  return out;
}

function runScript(env) {
  return new Promise((resolve) => {
    // The script runs the CLI (build/cli/strongroom, or STRONGROOM_CLI) as the image's /usr/bin/strongroom.
    execFile('bash', [SCRIPT], { env: { PATH: process.env.PATH, STRONGROOM_CLI: CLI, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

async function setup(t) {
  const { d } = await startDevClient(t, ROOT);
  const cluster = makeKeyPair('RS256');
  const kube = await startFakeKube({ publicKey: cluster.publicKey, reviewerToken: 'vault-reviewer' });
  t.after(() => kube.close());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strongroom-init-e2e-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const caFile = path.join(dir, 'ca.crt');
  fs.writeFileSync(caFile, kube.caPem);
  const jwtFile = path.join(dir, 'reviewer.jwt');
  fs.writeFileSync(jwtFile, 'vault-reviewer\n');
  const env = {
    VAULT_ADDR: d.addr, VAULT_TOKEN: ROOT,
    KUBERNETES_HOST: kube.url, KUBERNETES_CA_CERT: caFile, TOKEN_REVIEWER_JWT: jwtFile,
    AUDIT_FILE_PATH: path.join(dir, 'audit', 'audit.log'),
  };
  fs.mkdirSync(path.join(dir, 'audit'));
  const jwtFor = (namespace, name) => signServiceAccountJwt({
    privateKey: cluster.privateKey, namespace, name, uid: `uid-${namespace}-${name}`,
  });
  return { d, kube, env, jwtFor };
}

test('init script: sets up the reference configuration, twice without harm', async (t) => {
  const { d, kube, env, jwtFor } = await setup(t);

  const first = await runScript(env);
  assert.equal(first.code, 0, first.stderr + first.stdout);
  assert.match(first.stdout, /secret\/ is already KV v2/); // dev mode mounts it
  assert.match(first.stdout, /enabled Transit at transit\//);
  assert.match(first.stdout, /enabled file audit device file\//);
  // The second run reads its token from a file, as the Job does (VAULT_TOKEN_FILE).
  const tokenFile = path.join(path.dirname(env.KUBERNETES_CA_CERT), 'root-token');
  fs.writeFileSync(tokenFile, `${ROOT}\n`, { mode: 0o600 });
  const { VAULT_TOKEN, ...withoutToken } = env;
  assert.equal(VAULT_TOKEN, ROOT);
  const second = await runScript({ ...withoutToken, VAULT_TOKEN_FILE: tokenFile });
  assert.equal(second.code, 0, second.stderr + second.stdout);
  assert.match(second.stdout, /transit\/ is already Transit/);
  assert.match(second.stdout, /kubernetes\/ is already Kubernetes auth/);
  assert.match(second.stdout, /audit device file\/ already writes/);
  assert.doesNotMatch(second.stdout, /created transit key|enabled/);

  // Mounts.
  const mounts = (await api(d, ROOT, 'GET', 'sys/mounts')).body.data;
  assert.equal(mounts['secret/'].type, 'kv');
  assert.equal(mounts['secret/'].options.version, '2');
  assert.equal(mounts['transit/'].type, 'transit');

  // Transit keys: rotated every 90 days (read back in seconds, as Vault does).
  for (const key of ['lobstack', 'agent-data']) {
    const k = await api(d, ROOT, 'GET', `transit/keys/${key}`);
    assert.equal(k.status, 200, key);
    assert.equal(k.body.data.type, 'aes256-gcm96');
    assert.equal(k.body.data.auto_rotate_period, 7776000, key);
    assert.equal(k.body.data.latest_version, 1, `${key}: created once`);
  }

  // Policies, verbatim.
  for (const [name, text] of Object.entries(documentedPolicies())) {
    const p = await api(d, ROOT, 'GET', `sys/policies/acl/${name}`);
    assert.equal(p.status, 200, name);
    assert.equal(p.body.data.policy, text, name);
  }

  // Kubernetes auth and roles.
  const auths = (await api(d, ROOT, 'GET', 'sys/auth')).body.data;
  assert.equal(auths['kubernetes/'].type, 'kubernetes');
  const config = (await api(d, ROOT, 'GET', 'auth/kubernetes/config')).body.data;
  assert.equal(config.kubernetes_host, kube.url);
  assert.equal(config.kubernetes_ca_cert, kube.caPem);
  assert.equal(config.token_reviewer_jwt_set, true);
  assert.equal(config.token_reviewer_jwt, undefined);
  const apiRole = (await api(d, ROOT, 'GET', 'auth/kubernetes/role/lobstack-api')).body.data;
  assert.deepEqual(apiRole.bound_service_account_names, ['lobstack-api']);
  assert.deepEqual(apiRole.bound_service_account_namespaces, ['lobstack-control-plane']);
  assert.deepEqual(apiRole.token_policies, ['lobstack-api', 'lobstack-provisioner']);
  assert.equal(apiRole.alias_name_source, 'serviceaccount_uid');
  assert.equal(apiRole.token_ttl, 3600);
  assert.equal(apiRole.token_max_ttl, 14400);
  const agentRole = (await api(d, ROOT, 'GET', 'auth/kubernetes/role/lobstack-agent')).body.data;
  assert.deepEqual(agentRole.bound_service_account_names, ['agent-*']);
  assert.deepEqual(agentRole.bound_service_account_namespaces, ['lobstack-agents']);
  assert.deepEqual(agentRole.token_policies, ['lobstack-agent']);
  assert.equal(agentRole.alias_name_source, 'serviceaccount_name');
  assert.equal(agentRole.token_ttl, 3600);
  assert.equal(agentRole.token_max_ttl, 14400);
  // The CSI provider's role: the API's service account, audience vault only, read-only policy.
  const csiRole = (await api(d, ROOT, 'GET', 'auth/kubernetes/role/lobstack-api-csi')).body.data;
  assert.deepEqual(csiRole.bound_service_account_names, ['lobstack-api']);
  assert.deepEqual(csiRole.bound_service_account_namespaces, ['lobstack-control-plane']);
  assert.deepEqual(csiRole.token_policies, ['lobstack-api-csi']);
  assert.equal(csiRole.audience, 'vault');
  assert.equal(csiRole.token_max_ttl, 14400);

  // Audit device.
  const audit = (await api(d, ROOT, 'GET', 'sys/audit')).body.data;
  assert.equal(audit['file/'].type, 'file');
  assert.equal(audit['file/'].options.file_path, env.AUDIT_FILE_PATH);
  assert.ok(fs.statSync(env.AUDIT_FILE_PATH).size > 0, 'the audit file is written');

  // Smoke: the API pod and an agent pod log in through TokenReview.
  assert.equal((await api(d, ROOT, 'POST', 'secret/data/lobstack/api-keys', { data: { openai: 'sk-1' } })).status, 200);
  const apiLogin = await api(d, null, 'POST', 'auth/kubernetes/login',
    { role: 'lobstack-api', jwt: jwtFor('lobstack-control-plane', 'lobstack-api') });
  assert.equal(apiLogin.status, 200, JSON.stringify(apiLogin.body));
  assert.deepEqual(apiLogin.body.auth.policies, ['default', 'lobstack-api', 'lobstack-provisioner']);
  assert.equal(apiLogin.body.auth.lease_duration, 3600);
  const apiToken = apiLogin.body.auth.client_token;
  assert.equal((await api(d, apiToken, 'GET', 'secret/data/lobstack/api-keys')).body.data.data.openai, 'sk-1');
  const enc = await api(d, apiToken, 'POST', 'transit/encrypt/lobstack', { plaintext: 'YQ==' });
  assert.match(enc.body.data.ciphertext, /^vault:v1:/);
  const agentLogin = await api(d, null, 'POST', 'auth/kubernetes/login',
    { role: 'lobstack-agent', jwt: jwtFor('lobstack-agents', 'agent-7') });
  assert.equal(agentLogin.status, 200);
  assert.deepEqual(agentLogin.body.auth.policies, ['default', 'lobstack-agent']);
  assert.equal((await api(d, agentLogin.body.auth.client_token, 'GET', 'secret/data/lobstack/api-keys')).status, 403);
  assert.ok(kube.requests.some((r) => r.review && r.review.authenticated), 'TokenReview was used');

  // The Job's mode: TOKEN_REVIEWER_JWT empty leaves the reviewer JWT unset (in a pod, strongroom
  // then reviews with its own service-account token; here each login JWT reviews itself).
  const third = await runScript({ ...env, TOKEN_REVIEWER_JWT: '' });
  assert.equal(third.code, 0, third.stderr);
  assert.equal((await api(d, ROOT, 'GET', 'auth/kubernetes/config')).body.data.token_reviewer_jwt_set, false);
  const again = await api(d, null, 'POST', 'auth/kubernetes/login',
    { role: 'lobstack-api', jwt: jwtFor('lobstack-control-plane', 'lobstack-api') });
  assert.equal(again.status, 200);
  assert.notEqual(kube.requests.at(-1).headers.authorization, 'Bearer vault-reviewer');
});

test('init script: fails loudly on a bad token, a conflicting mount or audit device, missing files', async (t) => {
  const { d, env } = await setup(t);

  const badToken = await runScript({ ...env, VAULT_TOKEN: 'hvs.not-a-token' });
  assert.equal(badToken.code, 1);
  assert.match(badToken.stderr, /listing secrets engines: .*GET .*\/v1\/sys\/mounts Code: 403\..*permission denied/);

  // Inputs are checked before anything changes.
  const noCa = await runScript({ ...env, KUBERNETES_CA_CERT: path.join(os.tmpdir(), 'no-such-ca.crt') });
  assert.equal(noCa.code, 1);
  assert.match(noCa.stderr, /KUBERNETES_CA_CERT .* is not readable/);
  assert.equal(noCa.stdout, '');
  const noJwt = await runScript({ ...env, TOKEN_REVIEWER_JWT: path.join(os.tmpdir(), 'no-such.jwt') });
  assert.equal(noJwt.code, 1);
  assert.match(noJwt.stderr, /TOKEN_REVIEWER_JWT .* is not readable/);
  assert.equal((await api(d, ROOT, 'GET', 'sys/mounts')).body.data['transit/'], undefined);

  // An audit device file/ writing elsewhere is not replaced.
  const other = path.join(path.dirname(env.AUDIT_FILE_PATH), 'other.log');
  assert.equal((await api(d, ROOT, 'PUT', 'sys/audit/file', { type: 'file', options: { file_path: other } })).status, 204);
  const wrongAudit = await runScript(env);
  assert.equal(wrongAudit.code, 1);
  assert.match(wrongAudit.stderr, /audit device file\/ exists with .*other\.log.*, not file_path/);

  // transit/ taken by another engine.
  assert.equal((await api(d, ROOT, 'DELETE', 'sys/mounts/transit')).status, 204);
  assert.equal((await api(d, ROOT, 'POST', 'sys/mounts/transit', { type: 'kv', options: { version: '1' } })).status, 204);
  const wrongTransit = await runScript(env);
  assert.equal(wrongTransit.code, 1);
  assert.match(wrongTransit.stderr, /transit\/ is mounted as kv, not transit/);

  const noAddr = await runScript({ ...env, VAULT_ADDR: '' });
  assert.equal(noAddr.code, 1);
  assert.match(noAddr.stderr, /VAULT_ADDR is not set/);
});
