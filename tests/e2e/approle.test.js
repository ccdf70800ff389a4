// End-to-end: the AppRole auth method through node-vault's own commands (enableAuth,
// addApproleRole, getApproleRoleId, getApproleRoleSecret, approleLogin), and the token it issues.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const nodeVault = require('node-vault');
const { Daemon, waitDevReady } = require('./harness');

test('approle: enable, role, role-id, secret-id, login, scoped token', async (t) => {
  const d = new Daemon();
  t.after(() => d.destroy());
  await d.startDev('approle-e2e-root');
  const root = nodeVault({ endpoint: d.addr, token: 'approle-e2e-root' });
  await waitDevReady(root);

  await root.enableAuth({ mount_point: 'approle', type: 'approle', description: 'services' });
  const auths = await root.auths();
  assert.equal(auths.data['approle/'].type, 'approle');
  assert.equal(auths.data['approle/'].description, 'services');

  await root.addPolicy({ name: 'svc', rules: 'path "secret/data/svc/*" { capabilities = ["create", "read", "update"] }' });
  await root.addApproleRole({ role_name: 'svc', policies: 'svc', token_ttl: 1800, token_max_ttl: 3600 });
  const roleId = (await root.getApproleRoleId({ role_name: 'svc' })).data.role_id;
  const secretId = (await root.getApproleRoleSecret({ role_name: 'svc' })).data.secret_id;
  assert.match(roleId, /^[0-9a-f-]{36}$/);

  const client = nodeVault({ endpoint: d.addr });
  const login = await client.approleLogin({ role_id: roleId, secret_id: secretId });
  assert.deepEqual(login.auth.policies, ['default', 'svc']);
  assert.equal(login.auth.lease_duration, 1800);
  assert.equal(login.auth.metadata.role_name, 'svc');
  assert.equal(client.token, login.auth.client_token); // node-vault switched to the new token

  await client.write('secret/data/svc/db', { data: { password: 'p' } });
  assert.equal((await client.read('secret/data/svc/db')).data.data.password, 'p');
  await assert.rejects(client.read('secret/data/other'), (err) => err.response.statusCode === 403);

  const bad = nodeVault({ endpoint: d.addr });
  await assert.rejects(bad.approleLogin({ role_id: roleId, secret_id: 'wrong' }),
    (err) => err.response.statusCode === 400 && /invalid role or secret ID/.test(err.message));
});
