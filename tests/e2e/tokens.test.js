// End-to-end: tokens and policies through node-vault's own commands.
// Vault API sections: auth/token/* (§5.1), sys/policy (§2.10).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const nodeVault = require('node-vault');
const { Daemon } = require('./harness');

test('tokens: create, lookup, renew, revoke; policies: add, get, list', async (t) => {
  const d = new Daemon();
  t.after(() => d.destroy());
  await d.startDev('root-e2e');
  const root = nodeVault({ endpoint: d.addr, token: 'root-e2e' });

  await root.addPolicy({ name: 'app', rules: 'path "secret/data/app/*" { capabilities = ["create", "read", "update"] }' });
  assert.match((await root.getPolicy({ name: 'app' })).rules, /secret\/data\/app/);
  assert.deepEqual((await root.policies()).policies, ['app', 'default', 'root']);

  const created = await root.tokenCreate({ policies: ['app'], ttl: '1h', meta: { team: 'a' } });
  assert.deepEqual(created.auth.policies, ['app', 'default']);
  // node-vault adopts the auth.client_token of tokenCreate (its "token source" commands).
  assert.equal(root.token, created.auth.client_token);
  root.token = 'root-e2e';
  assert.equal(created.auth.lease_duration, 3600);
  const app = nodeVault({ endpoint: d.addr, token: created.auth.client_token });

  const self = await app.tokenLookupSelf();
  assert.equal(self.data.id, created.auth.client_token);
  assert.deepEqual(self.data.meta, { team: 'a' });
  const byAccessor = await root.tokenLookupAccessor({ accessor: created.auth.accessor });
  assert.equal(byAccessor.data.id, '');

  await app.write('secret/data/app/db', { data: { password: 'pw' } });
  assert.equal((await app.read('secret/data/app/db')).data.data.password, 'pw');
  await assert.rejects(app.read('secret/data/other'), (e) => e.response.statusCode === 403);

  const renewed = await app.tokenRenewSelf({ increment: '30m' });
  assert.equal(renewed.auth.lease_duration, 1800);
  assert.equal(renewed.auth.client_token, created.auth.client_token);

  const child = await root.tokenCreate({ policies: ['app'] });
  root.token = 'root-e2e';
  await root.tokenRevoke({ token: child.auth.client_token });
  const revoked = nodeVault({ endpoint: d.addr, token: child.auth.client_token });
  await assert.rejects(revoked.tokenLookupSelf(), (e) => e.response.statusCode === 403 && /invalid token/.test(e.message));

  await app.tokenRevokeSelf();
  await assert.rejects(app.tokenLookupSelf(), (e) => e.response.statusCode === 403);
  // node-vault's schema sends allowed_policies as a comma-separated string, as Vault accepts.
  await root.addTokenRole({ role_name: 'ci', allowed_policies: 'app', orphan: true });
  assert.deepEqual((await root.getTokenRole({ role_name: 'ci' })).data.allowed_policies, ['app']);
  assert.deepEqual((await root.tokenRoles()).data.keys, ['ci']);
  const viaRole = await root.tokenCreateRole({ role_name: 'ci' });
  root.token = 'root-e2e';
  assert.equal(viaRole.auth.orphan, true);
  assert.deepEqual(viaRole.auth.policies, ['app', 'default']);

  await root.removePolicy({ name: 'app' });
  assert.deepEqual((await root.policies()).policies, ['default', 'root']);
});
