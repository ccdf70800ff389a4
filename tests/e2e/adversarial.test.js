// End-to-end: issue 15's escalation and race fixes as an application sees them through
// node-vault (the C++ suite in tests/adversarial/ drives the same holes with raw HTTP).
// Vault API sections: AppRole roles (auth/approle/role), auth/token/create (num_uses),
// renew-self, revoke-self, token roles.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const nodeVault = require('node-vault');
const { startDevClient } = require('./harness');

const ROOT = 'root-adversarial';

test('an AppRole role cannot carry root', async (t) => {
  const { root } = await startDevClient(t, ROOT);
  await root.enableAuth({ mount_point: 'approle', type: 'approle' });
  // node-vault's schema sends only the legacy `policies` of a role (it drops token_policies).
  await assert.rejects(root.addApproleRole({ role_name: 'evil', policies: 'root' }),
    (e) => e.response.statusCode === 400 && /auth methods cannot create root tokens/.test(e.message));
  await assert.rejects(root.addApproleRole({ role_name: 'evil', policies: 'default,ROOT' }),
    (e) => e.response.statusCode === 400);
});

test('a token role without policy lists keeps children within the parent', async (t) => {
  const { d, root } = await startDevClient(t, ROOT);
  await root.addPolicy({ name: 'creator', rules: 'path "auth/token/create/*" { capabilities = ["update"] }' });
  await root.addPolicy({ name: 'admin', rules: 'path "*" { capabilities = ["create", "read", "update", "delete", "list"] }' });
  await root.addTokenRole({ role_name: 'open' });
  const parent = (await root.tokenCreate({ policies: ['creator'] })).auth.client_token;
  const creator = nodeVault({ endpoint: d.addr, token: parent });
  await assert.rejects(creator.tokenCreateRole({ role_name: 'open', policies: ['admin'] }),
    (e) => e.response.statusCode === 400 && /child policies must be subset of parent/.test(e.message));
});

test('num_uses=2 admits exactly two of 16 parallel requests; revoke beats renew', async (t) => {
  const { d, root } = await startDevClient(t, ROOT);
  await root.addPolicy({ name: 'reader', rules: 'path "secret/*" { capabilities = ["read", "update"] }' });
  await root.write('secret/data/x', { data: { k: 'v' } });
  for (let trial = 0; trial < 5; ++trial) {
    const limited = (await root.tokenCreate({ policies: ['reader'], num_uses: 2 })).auth.client_token;
    root.token = ROOT;
    const client = nodeVault({ endpoint: d.addr, token: limited });
    const results = await Promise.allSettled(Array.from({ length: 16 }, () => client.read('secret/data/x')));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 2, `trial ${trial}`);
  }
  for (let trial = 0; trial < 5; ++trial) {
    const token = (await root.tokenCreate({ policies: ['reader'], ttl: '1h' })).auth.client_token;
    root.token = ROOT;
    const client = nodeVault({ endpoint: d.addr, token });
    const renews = Array.from({ length: 15 }, () => client.tokenRenewSelf({ increment: '1h' }).catch(() => null));
    await Promise.all([...renews, client.tokenRevokeSelf()]);
    await assert.rejects(client.tokenLookupSelf(), (e) => e.response.statusCode === 403, `trial ${trial}`);
  }
});
