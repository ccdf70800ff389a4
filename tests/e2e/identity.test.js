// End-to-end: the identity store (entities, aliases, lookups), logins that create and link
// entities, and ACL templates rendered from the token's entity at every request.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const nodeVault = require('node-vault');
const { waitFor, startDevClient, api } = require('./harness');

const ROOT = 'identity-e2e-root';

test('identity: entity and alias API with Vault shapes and errors', async (t) => {
  const { d, root } = await startDevClient(t, ROOT);
  await root.enableAuth({ mount_point: 'approle', type: 'approle' });
  const accessor = (await root.auths()).data['approle/'].accessor;
  assert.match(accessor, /^auth_approle_[0-9a-f]{8}$/);

  let r = await api(d, ROOT, 'POST', 'identity/entity',
    { name: 'billing', metadata: { team: 'pay' }, policies: ['Billing'] });
  assert.equal(r.status, 200);
  const id = r.body.data.id;
  assert.match(id, /^[0-9a-f-]{36}$/);
  assert.equal(r.body.data.name, 'billing');
  assert.equal(r.body.data.aliases, null);

  const byName = await root.read('identity/entity/name/billing');
  assert.equal(byName.data.id, id);
  assert.deepEqual(byName.data.metadata, { team: 'pay' });
  assert.deepEqual(byName.data.policies, ['billing']);
  assert.equal(byName.data.disabled, false);
  assert.equal(byName.data.namespace_id, 'root');
  assert.deepEqual(byName.data.aliases, []);

  // Update by id (204), metadata in the CLI's key=value form; unset fields are kept.
  r = await api(d, ROOT, 'POST', `identity/entity/id/${id}`, { metadata: ['team=payments', 'tier=1'] });
  assert.equal(r.status, 204);
  const byId = await root.read(`identity/entity/id/${id}`);
  assert.deepEqual(byId.data.metadata, { team: 'payments', tier: '1' });
  assert.deepEqual(byId.data.policies, ['billing']);

  // Errors: a taken name, the root policy, a bad metadata shape, an unknown mount accessor.
  r = await api(d, ROOT, 'POST', 'identity/entity', { name: 'billing' });
  assert.equal(r.status, 400);
  assert.match(r.body.errors[0], /already in use/);
  r = await api(d, ROOT, 'POST', 'identity/entity', { name: 'x', policies: ['root'] });
  assert.equal(r.status, 400);
  r = await api(d, ROOT, 'POST', 'identity/entity', { name: 'y', metadata: 'nope' });
  assert.equal(r.status, 400);
  r = await api(d, ROOT, 'POST', 'identity/entity-alias',
    { name: 'a', canonical_id: id, mount_accessor: 'auth_nothing_00000000' });
  assert.equal(r.status, 400);
  assert.match(r.body.errors[0], /invalid mount accessor/);

  // An alias on the AppRole mount; one alias per (mount, name) and per mount on an entity.
  r = await api(d, ROOT, 'POST', 'identity/entity-alias',
    { name: 'role-123', canonical_id: id, mount_accessor: accessor, custom_metadata: { owner: 'ops' } });
  assert.equal(r.status, 200);
  const aliasId = r.body.data.id;
  assert.equal(r.body.data.canonical_id, id);
  r = await api(d, ROOT, 'POST', 'identity/entity-alias',
    { name: 'role-123', canonical_id: id, mount_accessor: accessor });
  assert.equal(r.status, 400);
  const alias = await root.read(`identity/entity-alias/id/${aliasId}`);
  assert.equal(alias.data.mount_path, 'auth/approle/');
  assert.equal(alias.data.mount_type, 'approle');
  assert.deepEqual(alias.data.custom_metadata, { owner: 'ops' });

  const lists = await root.list('identity/entity/id');
  assert.deepEqual(lists.data.keys, [id]);
  assert.equal(lists.data.key_info[id].name, 'billing');
  assert.deepEqual((await root.list('identity/entity/name')).data.keys, ['billing']);
  assert.deepEqual((await root.list('identity/entity-alias/id')).data.keys, [aliasId]);

  // Lookups: by name, by alias; nothing found is 204.
  r = await api(d, ROOT, 'POST', 'identity/lookup/entity', { alias_name: 'role-123', alias_mount_accessor: accessor });
  assert.equal(r.status, 200);
  assert.equal(r.body.data.id, id);
  r = await api(d, ROOT, 'POST', 'identity/lookup/entity', { name: 'nobody' });
  assert.equal(r.status, 204);
  r = await api(d, ROOT, 'POST', 'identity/lookup/entity', {});
  assert.equal(r.status, 400);

  // Deleting the entity deletes its aliases.
  r = await api(d, ROOT, 'DELETE', `identity/entity/id/${id}`);
  assert.equal(r.status, 204);
  r = await api(d, ROOT, 'GET', `identity/entity-alias/id/${aliasId}`);
  assert.equal(r.status, 404);
  r = await api(d, ROOT, 'GET', 'identity/entity/name/billing');
  assert.equal(r.status, 404);
  // identity/ cannot be unmounted or mounted over.
  r = await api(d, ROOT, 'DELETE', 'sys/mounts/identity');
  assert.equal(r.status, 400);
  r = await api(d, ROOT, 'POST', 'sys/mounts/identity', { type: 'kv' });
  assert.equal(r.status, 400);
});

test('identity: logins link entities; templates and entity policies apply at each request', async (t) => {
  const { d, root } = await startDevClient(t, ROOT);
  await root.enableAuth({ mount_point: 'approle', type: 'approle' });
  const accessor = (await root.auths()).data['approle/'].accessor;

  await root.addPolicy({
    name: 'tenant',
    rules: `
path "secret/data/tenants/{{identity.entity.metadata.tenant}}/*" { capabilities = ["create", "read", "update"] }
path "secret/data/roles/{{identity.entity.aliases.${accessor}.metadata.role_name}}" { capabilities = ["read"] }
`,
  });
  await root.addPolicy({ name: 'extra', rules: 'path "secret/data/extra" { capabilities = ["read"] }' });
  await root.addApproleRole({ role_name: 'worker', policies: 'tenant' });
  const roleId = (await root.getApproleRoleId({ role_name: 'worker' })).data.role_id;
  const login = async () => {
    const secretId = (await root.getApproleRoleSecret({ role_name: 'worker' })).data.secret_id;
    const c = nodeVault({ endpoint: d.addr });
    const res = await c.approleLogin({ role_id: roleId, secret_id: secretId });
    return { c, auth: res.auth };
  };

  await root.write('secret/data/tenants/acme/db', { data: { v: 'acme' } });
  await root.write('secret/data/tenants/globex/db', { data: { v: 'globex' } });
  await root.write('secret/data/roles/worker', { data: { v: 'role' } });
  await root.write('secret/data/extra', { data: { v: 'extra' } });

  const first = await login();
  assert.match(first.auth.entity_id, /^[0-9a-f-]{36}$/);
  const second = await login();
  assert.equal(second.auth.entity_id, first.auth.entity_id); // the same alias: the same entity
  const entityId = first.auth.entity_id;
  const entity = await root.read(`identity/entity/id/${entityId}`);
  assert.match(entity.data.name, /^entity_[0-9a-f]{8}$/);
  assert.equal(entity.data.aliases.length, 1);
  assert.equal(entity.data.aliases[0].name, roleId); // AppRole's alias name is the role ID
  assert.equal(entity.data.aliases[0].mount_accessor, accessor);
  assert.equal(entity.data.aliases[0].metadata.role_name, 'worker');

  const { c } = first;
  const denied = (p) => assert.rejects(c.read(p), (err) => err.response.statusCode === 403);
  // The alias template resolves from login metadata; the tenant one does not yet (no metadata).
  assert.equal((await c.read('secret/data/roles/worker')).data.data.v, 'role');
  await denied('secret/data/tenants/acme/db');

  // Metadata set by an operator (or a provisioner) applies to the token already issued.
  await root.write(`identity/entity/id/${entityId}`, { metadata: { tenant: 'acme' } });
  assert.equal((await c.read('secret/data/tenants/acme/db')).data.data.v, 'acme');
  await denied('secret/data/tenants/globex/db');
  await c.write('secret/data/tenants/acme/new', { data: { v: 1 } });

  // A value that would widen the path is never substituted: the block is dropped.
  await root.write(`identity/entity/id/${entityId}`, { metadata: { tenant: '*' } });
  await denied('secret/data/tenants/acme/db');
  await denied('secret/data/tenants/*/db');
  await root.write(`identity/entity/id/${entityId}`, { metadata: { tenant: 'acme' } });

  // Entity policies add to the token's, reported as identity_policies.
  await denied('secret/data/extra');
  await root.write(`identity/entity/id/${entityId}`, { policies: ['extra'] });
  assert.equal((await c.read('secret/data/extra')).data.data.v, 'extra');
  const self = await c.tokenLookupSelf();
  assert.deepEqual(self.data.identity_policies, ['extra']);
  assert.deepEqual(self.data.policies, ['default', 'tenant']);
  const third = await login();
  assert.deepEqual(third.auth.identity_policies, ['extra']);
  assert.deepEqual(third.auth.policies, ['default', 'extra', 'tenant']);
  assert.deepEqual(third.auth.token_policies, ['default', 'tenant']);

  // The default policy lets a token read its own entity, and only its own.
  assert.equal((await c.read(`identity/entity/id/${entityId}`)).data.id, entityId);
  const other = await api(d, ROOT, 'POST', 'identity/entity', { name: 'other' });
  await denied(`identity/entity/id/${other.body.data.id}`);
  const caps = await api(d, c.token, 'POST', 'sys/capabilities-self',
    { paths: ['secret/data/tenants/acme/x', 'secret/data/tenants/globex/x'] });
  assert.deepEqual(caps.body.data['secret/data/tenants/acme/x'], ['create', 'read', 'update']);
  assert.deepEqual(caps.body.data['secret/data/tenants/globex/x'], ['deny']);

  // A disabled entity: its tokens stop working and its logins are refused.
  await root.write(`identity/entity/id/${entityId}`, { disabled: true });
  await denied('secret/data/tenants/acme/db');
  await assert.rejects(login(), (err) => err.response.statusCode === 403);
  await waitFor(() => /entity .* is disabled/.test(d.log), 5000, 'the refusal in the log');
  await root.write(`identity/entity/id/${entityId}`, { disabled: false });
  assert.equal((await c.read('secret/data/tenants/acme/db')).data.data.v, 'acme');
});
