// End-to-end: batch tokens, response wrapping and the cubbyhole through real client libraries,
// unchanged: node-vault (token, wrapping and generic calls) and hashi-vault-js (token and sys
// calls), against a dev appliance. Kubernetes logins go to the fake API server (fake_kube.js).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const nodeVault = require('node-vault');
const { startDevClient, api } = require('./harness');
const { makeKeyPair, signServiceAccountJwt, startFakeKube } = require('./fake_kube');

const ROOT = 'batch-wrap-e2e-root';

// hashi-vault-js is an ES module.
async function hashiVault(d) {
  const { default: Vault } = await import('hashi-vault-js');
  return new Vault({ https: false, baseUrl: `${d.addr}/v1`, timeout: 5000, proxy: false });
}

// node-vault's errors carry Vault's first error message.
async function rejectsWith(promise, re) {
  await assert.rejects(promise, (err) => {
    assert.match(String(err.message), re);
    return true;
  });
}

test('node-vault: batch tokens are made, used, looked up and refused as Vault refuses them', async (t) => {
  const { d, root } = await startDevClient(t, ROOT);
  await root.addPolicy({ name: 'app', rules: 'path "secret/data/app" { capabilities = ["read"] }' });
  await root.write('secret/data/app', { data: { password: 's3cret' } });
  // node-vault's tokenCreate drops fields its schema lacks (`type` among them) and makes the new
  // token its own: batch tokens are made with its generic write, as Vault's CLI does.
  const created = await root.write('auth/token/create', { type: 'batch', policies: ['app'], ttl: '10m' });
  assert.equal(created.auth.token_type, 'batch');
  assert.equal(created.auth.accessor, '');
  assert.equal(created.auth.renewable, false);
  assert.match(created.auth.client_token, /^hvb\./);
  const batch = nodeVault({ endpoint: d.addr, token: created.auth.client_token });
  assert.equal((await batch.read('secret/data/app')).data.data.password, 's3cret');
  const self = await batch.tokenLookupSelf();
  assert.equal(self.data.type, 'batch');
  assert.equal(self.data.creation_ttl, 600);
  assert.deepEqual(self.data.policies, ['app', 'default']);
  await rejectsWith(batch.tokenRenewSelf(), /batch tokens cannot be renewed/);
  await rejectsWith(batch.tokenRevokeSelf(), /batch tokens cannot be revoked/);
  await rejectsWith(root.write('auth/token/create', { type: 'batch', num_uses: 2, policies: ['app'] }),
    /batch tokens cannot have "num_uses" set/);
  // Tampered: refused like any unknown token.
  const tok = created.auth.client_token;
  const tampered = tok.slice(0, 20) + (tok[20] === 'A' ? 'B' : 'A') + tok.slice(21);
  const r = await api(d, tampered, 'GET', 'secret/data/app');
  assert.equal(r.status, 403);
});

test('hashi-vault-js: token and sys calls work unchanged, batch tokens included', async (t) => {
  const { d, root } = await startDevClient(t, ROOT);
  await root.addPolicy({ name: 'app', rules: 'path "secret/data/app" { capabilities = ["read"] }' });
  const vault = await hashiVault(d);
  const health = await vault.healthCheck();
  assert.equal(health.sealed, false);
  assert.equal(health.initialized, true);
  const seal = await vault.sealStatus();
  assert.equal(seal.sealed, false);
  // Its createToken sends renewable: true and type: "service" by default, as Vault accepts.
  const service = await vault.createToken(ROOT, { policies: ['app'], ttl: '1h' });
  assert.equal(service.token_type, 'service');
  assert.match(service.client_token, /^hvs\./);
  const looked = await vault.lookupToken(ROOT, service.client_token);
  assert.equal(looked.type, 'service');
  const renewed = await vault.renewSelfToken(service.client_token, '30m');
  assert.equal(renewed.lease_duration, 1800);
  const byAccessor = await vault.lookupAccessor(ROOT, service.accessor);
  assert.equal(byAccessor.id, '');
  const batch = await vault.createToken(ROOT, { policies: ['app'], ttl: '5m', type: 'batch' });
  assert.equal(batch.token_type, 'batch');
  assert.equal(batch.renewable, false);
  const bself = await vault.lookupSelfToken(batch.client_token);
  assert.equal(bself.type, 'batch');
  await assert.rejects(vault.renewSelfToken(batch.client_token), (err) => {
    assert.equal(err.isVaultError, true);
    assert.equal(err.response.status, 400);
    assert.deepEqual(err.response.data.errors, ['batch tokens cannot be renewed']);
    return true;
  });
  const caps = await vault.sysCapabilitiesSelf(batch.client_token, ['secret/data/app']);
  assert.deepEqual(caps['secret/data/app'], ['read']);
  // Its sys calls beyond health: host-info, the token and entity counters, metrics in both forms.
  const host = await vault.sysHostInfo(ROOT);
  assert.equal(typeof host.host.hostname, 'string');
  assert.ok(host.memory.total > 0);
  const tokens = await vault.sysInternalCounters(ROOT, 'tokens');
  assert.ok(tokens.counters.service_tokens.total >= 2);
  const entities = await vault.sysInternalCounters(ROOT, 'entities');
  assert.equal(typeof entities.counters.entities.total, 'number');
  const metricsJson = await vault.sysMetrics(ROOT);
  assert.ok(Array.isArray(metricsJson.Gauges));
  const metricsText = await vault.sysMetrics(ROOT, 'prometheus');
  assert.match(String(metricsText), /# TYPE vault_core_unsealed gauge/);
  await vault.revokeSelfToken(service.client_token);
  const gone = await api(d, service.client_token, 'GET', 'auth/token/lookup-self');
  assert.equal(gone.status, 403);
});

test('kubernetes: a batch role gives batch tokens; login + read works and the token is unstored', async (t) => {
  const { d, root } = await startDevClient(t, ROOT);
  await root.enableAuth({ mount_point: 'kubernetes', type: 'kubernetes' });
  const cluster = makeKeyPair('RS256');
  const kube = await startFakeKube({ publicKey: cluster.publicKey, reviewerToken: 'reviewer' });
  t.after(() => kube.close());
  await root.write('auth/kubernetes/config',
    { kubernetes_host: kube.url, kubernetes_ca_cert: kube.caPem, token_reviewer_jwt: 'reviewer' });
  await root.addPolicy({ name: 'demo', rules: 'path "secret/data/demo" { capabilities = ["read"] }' });
  await root.write('auth/kubernetes/role/demo', {
    bound_service_account_names: 'app', bound_service_account_namespaces: 'apps',
    token_policies: 'demo', token_ttl: '15m', token_type: 'batch',
  });
  assert.equal((await root.read('auth/kubernetes/role/demo')).data.token_type, 'batch');
  await root.write('secret/data/demo', { data: { v: 1 } });
  const before = (await root.list('auth/token/accessors')).data.keys.length;
  const client = nodeVault({ endpoint: d.addr });
  const sa = { privateKey: cluster.privateKey, namespace: 'apps', name: 'app', uid: '5b6c7d8e-0000-4000-8000-00000000000b' };
  const login = await client.kubernetesLogin({ mount_point: 'kubernetes', role: 'demo', jwt: signServiceAccountJwt(sa) });
  assert.equal(login.auth.token_type, 'batch');
  assert.equal(login.auth.lease_duration, 900);
  assert.match(client.token, /^hvb\./);
  assert.equal((await client.read('secret/data/demo')).data.data.v, 1);
  const self = await client.tokenLookupSelf();
  assert.equal(self.data.path, 'auth/kubernetes/login');
  assert.equal(self.data.display_name, 'kubernetes-apps-app');
  assert.equal((await root.list('auth/token/accessors')).data.keys.length, before);
});

test('node-vault: a wrapped read is unwrapped once, by header or by body; lookup needs no token', async (t) => {
  const { d, root } = await startDevClient(t, ROOT);
  await root.write('secret/data/app', { data: { password: 's3cret' } });
  const wrapped = await root.read('secret/data/app', { headers: { 'X-Vault-Wrap-TTL': '5m' } });
  assert.equal(wrapped.data, null);
  const info = wrapped.wrap_info;
  assert.equal(info.ttl, 300);
  assert.equal(info.creation_path, 'secret/data/app');
  assert.match(info.token, /^hvs\./);
  const look = await api(d, null, 'POST', 'sys/wrapping/lookup', { token: info.token });
  assert.equal(look.status, 200);
  assert.equal(look.body.data.creation_path, 'secret/data/app');
  // As the Vault CLI does it: the wrapping token is the client's own token.
  const holder = nodeVault({ endpoint: d.addr, token: info.token });
  const out = await holder.unwrap();
  assert.equal(out.data.data.password, 's3cret');
  await rejectsWith(holder.unwrap(), /wrapping token is not valid or does not exist/);

  // In the body, with the caller's own token (node-vault's unwrap({ token })).
  const again = await root.read('secret/data/app', { headers: { 'X-Vault-Wrap-TTL': '1m' } });
  const out2 = await root.unwrap({ token: again.wrap_info.token });
  assert.equal(out2.data.data.password, 's3cret');
  await rejectsWith(root.unwrap({ token: again.wrap_info.token }), /not valid or does not exist/);

  // sys/wrapping/wrap and rewrap through node-vault's generic write.
  const w = await root.write('sys/wrapping/wrap', { a: 'b' }, { headers: { 'X-Vault-Wrap-TTL': '90s' } });
  assert.equal(w.wrap_info.creation_path, 'sys/wrapping/wrap');
  const rw = await root.write('sys/wrapping/rewrap', { token: w.wrap_info.token });
  assert.notEqual(rw.wrap_info.token, w.wrap_info.token);
  assert.deepEqual((await root.unwrap({ token: rw.wrap_info.token })).data, { a: 'b' });
});

test('node-vault: a wrapped token create, and the cubbyhole', async (t) => {
  const { d, root } = await startDevClient(t, ROOT);
  const wrapped = await root.tokenCreate({
    policies: ['default'], requestOptions: { headers: { 'X-Vault-Wrap-TTL': '2m' } },
  });
  assert.equal(root.token, ROOT); // a wrapped answer has no auth for tokenCreate to adopt
  assert.equal(wrapped.auth, null);
  const out = await root.unwrap({ token: wrapped.wrap_info.token });
  assert.equal(out.auth.accessor, wrapped.wrap_info.wrapped_accessor);
  const user = nodeVault({ endpoint: d.addr, token: out.auth.client_token });
  await user.write('cubbyhole/notes/one', { text: 'mine' });
  assert.equal((await user.read('cubbyhole/notes/one')).data.text, 'mine');
  assert.deepEqual((await user.list('cubbyhole/notes')).data.keys, ['one']);
  // Nobody else sees it, root included.
  const other = await api(d, ROOT, 'GET', 'cubbyhole/notes/one');
  assert.equal(other.status, 404);
  await user.tokenRevokeSelf();
  const gone = await api(d, out.auth.client_token, 'GET', 'cubbyhole/notes/one');
  assert.equal(gone.status, 403);
});
