// `strongroom` and response wrapping against a real dev appliance, as the `vault` CLI does it
// (Vault docs: "Response wrapping", the global -wrap-ttl flag and VAULT_WRAP_TTL, `vault unwrap`):
// the wrapping table and its -field names, -format=json's wrap_info, unwrap with the token as an
// argument (sent in the body) or as the CLI's own token, single use, wrapped token creation
// (wrapped_accessor), wrapped lists and logins, and `token create -type=batch`.
// UPDATE_GOLDEN=1 rewrites the golden files.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { startDevClient, api, CLI } = require('./harness');

const GOLDEN = path.join(__dirname, 'golden', 'cli');
const ROOT = 'cli-wrap-root-token';

function run(env, args, input) {
  const r = spawnSync(CLI, args, { env, input, encoding: 'utf8', timeout: 30000 });
  if (r.error) throw r.error;
  return { code: r.status, out: r.stdout, err: r.stderr };
}

// Volatile values: tokens, accessors, Go's time.Time.String() of the creation time.
function normalise(text) {
  return text
    .replace(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \+0000 UTC/g, '<time>')
    .replace(/hv[sb]\.[A-Za-z0-9_-]+/g, '<token>')
    .replace(/^(wrapping_accessor:|wrapped_accessor:|token_accessor)(\s+)[A-Za-z0-9]+$/gm, '$1$2<accessor>');
}

function golden(name, text) {
  const file = path.join(GOLDEN, name);
  const got = normalise(text);
  if (process.env.UPDATE_GOLDEN) fs.writeFileSync(file, got);
  assert.equal(got, fs.readFileSync(file, 'utf8'), `golden ${name}`);
}

test('response wrapping from the CLI', async (t) => {
  const { d } = await startDevClient(t, ROOT);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'strongroom-cli-wrap-'));
  t.after(() => fs.rmSync(home, { recursive: true, force: true }));
  const env = { PATH: process.env.PATH, HOME: home, VAULT_ADDR: d.addr, VAULT_TOKEN: ROOT };
  const noToken = { PATH: process.env.PATH, HOME: home, VAULT_ADDR: d.addr };
  let r = run(env, ['kv', 'put', 'secret/app', 'password=s3cret', 'user=alice']);
  assert.equal(r.code, 0, r.err);

  await t.test('-wrap-ttl: the wrapping table; unwrap TOKEN opens it once', () => {
    r = run(env, ['kv', 'get', '-wrap-ttl=5m', 'secret/app']);
    assert.equal(r.code, 0, r.err);
    golden('wrap_kv_get.txt', r.out);
    const token = /^wrapping_token:\s+(\S+)$/m.exec(r.out)[1];
    r = run(env, ['unwrap', token]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^data\s+map\[password:s3cret user:alice\]$/m);
    r = run(env, ['unwrap', token]);
    assert.equal(r.code, 2);
    assert.match(r.err, /^Error unwrapping: Error making API request\.\n\nURL: PUT http:\/\/127\.0\.0\.1:\d+\/v1\/sys\/wrapping\/unwrap\nCode: 400\. Errors:\n\n\* wrapping token is not valid or does not exist\n$/);
  });

  await t.test('-format=json prints the response with its wrap_info; unwrap with no argument uses the CLI token', () => {
    r = run(env, ['read', '-wrap-ttl=2m', '-format=json', 'secret/data/app']);
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out);
    assert.deepEqual(Object.keys(j).slice(0, 7), ['request_id', 'lease_id', 'lease_duration', 'renewable',
      'data', 'warnings', 'wrap_info']);
    assert.equal(j.data, null);
    assert.deepEqual(Object.keys(j.wrap_info),
      ['token', 'accessor', 'ttl', 'creation_time', 'creation_path', 'wrapped_accessor']);
    assert.equal(j.wrap_info.ttl, 120);
    assert.equal(j.wrap_info.creation_path, 'secret/data/app');
    assert.equal(j.wrap_info.wrapped_accessor, '');
    assert.match(j.wrap_info.creation_time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    // The wrapping token as VAULT_TOKEN: sent as X-Vault-Token, no body.
    r = run({ ...env, VAULT_TOKEN: j.wrap_info.token }, ['unwrap', '-format=json']);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(JSON.parse(r.out).data.data, { password: 's3cret', user: 'alice' });
    // And without any token of the CLI's own, the argument is the request's token.
    r = run(env, ['read', '-wrap-ttl=2m', '-field=wrapping_token', 'secret/data/app']);
    r = run(noToken, ['unwrap', '-field=data', r.out]);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'map[password:s3cret user:alice]');
  });

  await t.test('-field names the wrapping fields', () => {
    r = run(env, ['read', '-wrap-ttl=90s', '-format=json', 'secret/data/app']);
    const info = JSON.parse(r.out).wrap_info;
    for (const [field, want] of [['wrapping_token_ttl', '90'], ['wrapping_token_creation_path', 'secret/data/app'],
      ['wrapped_accessor', '']]) {
      r = run(env, ['read', '-wrap-ttl=90s', `-field=${field}`, 'secret/data/app']);
      assert.deepEqual([r.code, r.out], [0, want], field);
    }
    r = run(env, ['read', '-wrap-ttl=90s', '-field=wrapping_accessor', 'secret/data/app']);
    assert.match(r.out, /^\S+$/);
    assert.notEqual(r.out, info.accessor, 'each request has its own wrapping token');
    r = run(env, ['read', '-wrap-ttl=90s', '-field=wrapping_token_creation_time', 'secret/data/app']);
    assert.match(r.out, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    r = run(env, ['read', '-field=wrapping_token', 'secret/data/app']);
    assert.deepEqual([r.code, r.err], [1, 'Field "wrapping_token" not present in secret\n']);
  });

  await t.test('token create -wrap-ttl: wrapped_accessor names the token inside', () => {
    r = run(env, ['token', 'create', '-policy=default', '-ttl=1h', '-wrap-ttl=1m']);
    assert.equal(r.code, 0, r.err);
    golden('wrap_token_create.txt', r.out);
    const wrapping = /^wrapping_token:\s+(\S+)$/m.exec(r.out)[1];
    const inner = /^wrapped_accessor:\s+(\S+)$/m.exec(r.out)[1];
    r = run(env, ['unwrap', '-format=json', wrapping]);
    assert.equal(r.code, 0, r.err);
    const auth = JSON.parse(r.out).auth;
    assert.equal(auth.accessor, inner);
    r = run({ ...env, VAULT_TOKEN: auth.client_token }, ['token', 'lookup', '-field=policies']);
    assert.deepEqual([r.code, r.out], [0, '[default]']);
  });

  await t.test('VAULT_WRAP_TTL, and sys/wrapping/wrap wraps for 5m when nothing is given', () => {
    r = run(env, ['write', '-field=wrapping_token_ttl', 'sys/wrapping/wrap', 'foo=bar']);
    assert.deepEqual([r.code, r.out], [0, '300'], r.err);
    r = run({ ...env, VAULT_WRAP_TTL: '45s' }, ['read', '-field=wrapping_token_ttl', 'secret/data/app']);
    assert.deepEqual([r.code, r.out], [0, '45'], r.err);
    r = run({ ...env, VAULT_WRAP_TTL: '45s' }, ['read', '-wrap-ttl=2m', '-field=wrapping_token_ttl', 'secret/data/app']);
    assert.equal(r.out, '120', '-wrap-ttl wins');
    r = run({ ...env, VAULT_WRAP_TTL: 'soon' }, ['read', 'secret/data/app']);
    assert.equal(r.code, 1);
    assert.match(r.err, /^VAULT_WRAP_TTL: /);
    r = run(env, ['read', '-wrap-ttl=never', 'secret/data/app']);
    assert.equal(r.code, 1);
    // A wrapped write of data: unwrap gives it back.
    r = run(env, ['write', '-wrap-ttl=1m', '-field=wrapping_token', 'sys/wrapping/wrap', 'zip=zap']);
    r = run(env, ['unwrap', '-field=zip', r.out]);
    assert.deepEqual([r.code, r.out], [0, 'zap']);
  });

  await t.test('wrapped lists: list and kv list show the wrapping token; unwrap prints the keys', () => {
    r = run(env, ['list', '-wrap-ttl=1m', 'secret/metadata']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^wrapping_token_creation_path:\s+secret\/metadata\/$/m);
    r = run(env, ['kv', 'list', '-wrap-ttl=1m', '-field=wrapping_token', 'secret']);
    assert.equal(r.code, 0, r.err);
    r = run(env, ['unwrap', r.out]);
    assert.deepEqual([r.code, r.out], [0, 'Keys\n----\napp\n']);
  });

  await t.test('login -wrap-ttl shows the wrapping token and stores nothing', async () => {
    await api(d, ROOT, 'POST', 'sys/auth/approle', { type: 'approle' });
    await api(d, ROOT, 'POST', 'auth/approle/role/ci', { token_policies: ['default'] });
    const roleId = (await api(d, ROOT, 'GET', 'auth/approle/role/ci/role-id')).body.data.role_id;
    const secretId = (await api(d, ROOT, 'POST', 'auth/approle/role/ci/secret-id')).body.data.secret_id;
    r = run(noToken, ['login', '-method=approle', '-wrap-ttl=1m', `role_id=${roleId}`, 'secret_id=-'], secretId);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^wrapping_token_creation_path:\s+auth\/approle\/login$/m);
    assert.doesNotMatch(r.out, /Success!/);
    assert.equal(fs.existsSync(path.join(home, '.vault-token')), false);
    const wrapping = /^wrapping_token:\s+(\S+)$/m.exec(r.out)[1];
    r = run(noToken, ['unwrap', '-field=token', wrapping]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^hvs\./);
  });

  await t.test('unwrap refusals, and -output-curl-string shows the header', () => {
    r = run(env, ['unwrap', 'a', 'b']);
    assert.deepEqual([r.code, r.err], [1, 'Too many arguments (expected 0-1, got 2)\n']);
    r = run(env, ['unwrap', 'hvs.not-a-wrapping-token']);
    assert.equal(r.code, 2);
    assert.match(r.err, /wrapping token is not valid or does not exist/);
    // The CLI's own (root) token is no wrapping token.
    r = run(env, ['unwrap']);
    assert.equal(r.code, 2);
    assert.match(r.err, /wrapping token is not valid or does not exist/);
    r = run(env, ['kv', 'get', '-wrap-ttl=1m', '-output-curl-string', 'secret/app']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^curl -H "X-Vault-Request: true" -H "X-Vault-Wrap-TTL: 60s" -H "X-Vault-Token: \$\(strongroom print token\)" http:\/\/127\.0\.0\.1:\d+\/v1\/secret\/data\/app\n$/);
  });

  await t.test('token create -type=batch', () => {
    r = run(env, ['token', 'create', '-type=batch', '-policy=default', '-ttl=10m', '-format=json']);
    assert.equal(r.code, 0, r.err);
    const auth = JSON.parse(r.out).auth;
    assert.match(auth.client_token, /^hvb\./);
    assert.equal(auth.accessor, '');
    r = run({ ...env, VAULT_TOKEN: auth.client_token }, ['token', 'lookup', '-field=type']);
    assert.deepEqual([r.code, r.out], [0, 'batch']);
    r = run(env, ['token', 'create', '-type=batch', '-use-limit=2']);
    assert.equal(r.code, 2);
    assert.match(r.err, /batch tokens cannot have "num_uses" set/);
  });
});
