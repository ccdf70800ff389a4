// End-to-end: the userpass auth method through node-vault (enableAuth, write, userpassLogin,
// read, list), raw HTTP, and the CLI's `strongroom login -method=userpass`.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const nodeVault = require('node-vault');
const { startDevClient, api, CLI } = require('./harness');

const ROOT = 'userpass-e2e-root';

test('userpass: users, login, token, refusals, password update, CLI login', async (t) => {
  const { d, root } = await startDevClient(t, ROOT);
  await root.enableAuth({ mount_point: 'userpass', type: 'userpass', description: 'operators' });
  assert.equal((await root.auths()).data['userpass/'].type, 'userpass');
  await root.addPolicy({
    name: 'ops', rules: 'path "secret/data/ops/*" { capabilities = ["create", "read", "update"] }',
  });
  await root.write('auth/userpass/users/alice', {
    password: 's3cret-pass', token_policies: 'ops', token_ttl: '30m', token_max_ttl: '1h',
  });

  // A read shows the token parameters, never the password or its hash.
  const user = await api(d, ROOT, 'GET', 'auth/userpass/users/alice');
  assert.equal(user.status, 200);
  assert.deepEqual(user.body.data.token_policies, ['ops']);
  assert.equal(user.body.data.token_ttl, 1800);
  assert.doesNotMatch(JSON.stringify(user.body), /password|argon|s3cret/);
  assert.deepEqual((await root.list('auth/userpass/users')).data.keys, ['alice']);

  // node-vault's own login command; the client switches to the new token.
  const client = nodeVault({ endpoint: d.addr });
  const login = await client.userpassLogin({ username: 'alice', password: 's3cret-pass' });
  assert.deepEqual(login.auth.policies, ['default', 'ops']);
  assert.equal(login.auth.lease_duration, 1800);
  assert.equal(login.auth.renewable, true);
  assert.equal(login.auth.metadata.username, 'alice');
  assert.equal(login.auth.token_type, 'service');
  assert.equal(client.token, login.auth.client_token);
  await client.write('secret/data/ops/db', { data: { password: 'p' } });
  assert.equal((await client.read('secret/data/ops/db')).data.data.password, 'p');
  await assert.rejects(client.read('secret/data/other'), (err) => err.response.statusCode === 403);
  const self = await client.tokenLookupSelf();
  assert.equal(self.data.display_name, 'userpass-alice');
  assert.equal(self.data.path, 'auth/userpass/login/alice');

  // Wrong password and unknown user: one answer.
  for (const [name, pw] of [['alice', 'wrong'], ['mallory', 'whatever']]) {
    const r = await api(d, '', 'POST', `auth/userpass/login/${name}`, { password: pw });
    assert.equal(r.status, 400);
    assert.deepEqual(r.body.errors, ['invalid username or password']);
  }
  const fresh = nodeVault({ endpoint: d.addr });
  await assert.rejects(fresh.userpassLogin({ username: 'alice', password: 'nope' }),
    (err) => err.response.statusCode === 400 && /invalid username or password/.test(err.message));
  // Oversized passwords are refused before hashing.
  const big = await api(d, ROOT, 'POST', 'auth/userpass/users/bob', { password: 'x'.repeat(2000) });
  assert.equal(big.status, 400);
  // Auth methods never hand out root.
  const rooted = await api(d, ROOT, 'POST', 'auth/userpass/users/bob',
    { password: 'p', token_policies: 'root' });
  assert.equal(rooted.status, 400);

  // Password update: the old one stops working.
  await root.write('auth/userpass/users/alice/password', { password: 'n3w-pass' });
  assert.equal((await api(d, '', 'POST', 'auth/userpass/login/alice', { password: 's3cret-pass' })).status, 400);
  assert.equal((await api(d, '', 'POST', 'auth/userpass/login/alice', { password: 'n3w-pass' })).status, 200);
  await root.write('auth/userpass/users/alice/policies', { token_policies: 'ops,extra' });
  const again = await api(d, '', 'POST', 'auth/userpass/login/ALICE', { password: 'n3w-pass' });
  assert.deepEqual(again.body.auth.token_policies, ['default', 'extra', 'ops']);

  // The CLI: `strongroom login -method=userpass username=...`, the password on stdin, the token
  // stored by the token helper and used by the next command.
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'strongroom-userpass-home-'));
  t.after(() => fs.rmSync(home, { recursive: true, force: true }));
  const env = { PATH: process.env.PATH, HOME: home, VAULT_ADDR: d.addr };
  const cli = (args, input) => spawnSync(CLI, args, { env, input, encoding: 'utf8', timeout: 30000 });
  let r = cli(['login', '-method=userpass', '-format=json', 'username=alice'], 'n3w-pass\n');
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.match(out.auth.client_token, /^hvs\./);
  assert.deepEqual(out.auth.policies, ['default', 'extra', 'ops']);
  r = cli(['token', 'lookup', '-format=json']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).data.display_name, 'userpass-alice');
  r = cli(['kv', 'get', '-format=json', 'secret/ops/db']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).data.data.password, 'p');
  r = cli(['login', '-method=userpass', 'username=alice', 'password=wrong']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /invalid username or password/);

  // Disabling the method revokes what it issued.
  await root.disableAuth({ mount_point: 'userpass' });
  await assert.rejects(client.tokenLookupSelf(), (err) => err.response.statusCode === 403);
});
