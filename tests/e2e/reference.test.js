// End-to-end: the reference set-up of the lobstack platform, verbatim (docs/reference-setup.md).
// The API pod and agent pods log in with service-account JWTs checked through TokenReview (a fake
// API server that answers as kube-apiserver does); the API provisions each agent by creating its
// entity (metadata agent_id) and the alias that ties the agent's service account to it, so that
// `{{identity.entity.metadata.agent_id}}` resolves to the agent's own id.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const nodeVault = require('node-vault');
const { startDevClient, api } = require('./harness');
const { makeKeyPair, signServiceAccountJwt, startFakeKube } = require('./fake_kube');

const ROOT = 'reference-e2e-root';

// The two policies exactly as the platform wrote them.
const AGENT_POLICY = `path "secret/data/lobstack/agent/{{identity.entity.metadata.agent_id}}" { capabilities = ["read"] }
path "transit/encrypt/agent-data" { capabilities = ["update"] }
path "transit/decrypt/agent-data" { capabilities = ["update"] }
`;
const API_POLICY = `path "secret/data/lobstack/api-keys" { capabilities = ["read"] }
path "secret/data/lobstack/agent/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "transit/encrypt/lobstack" { capabilities = ["update"] }
path "transit/decrypt/lobstack" { capabilities = ["update"] }
`;
// What the API needs besides: provisioning agents' identities (entities may get a name and
// metadata only, never policies; aliases may be created, not moved), and listing agent keys,
// which KV v2 serves under metadata/ (a "list" on data/ grants nothing, in Vault as here).
const PROVISIONER_POLICY = `path "identity/entity" {
  capabilities = ["create"]
  allowed_parameters = { "name" = [] "metadata" = [] }
}
path "identity/entity-alias" {
  capabilities = ["create"]
  allowed_parameters = { "name" = [] "canonical_id" = [] "mount_accessor" = [] }
}
path "sys/auth" { capabilities = ["read"] }
path "secret/metadata/lobstack/agent/*" { capabilities = ["list"] }
`;

async function referenceSetup(t, { ttl = '1h', maxTtl = '4h' } = {}) {
  const { d, root } = await startDevClient(t, ROOT);
  const cluster = makeKeyPair('RS256');
  const kube = await startFakeKube({ publicKey: cluster.publicKey, reviewerToken: 'vault-reviewer' });
  t.after(() => kube.close());

  await root.mount({ mount_point: 'transit', type: 'transit' });
  await root.write('transit/keys/lobstack', {});
  await root.write('transit/keys/agent-data', {});
  await root.addPolicy({ name: 'lobstack-agent', rules: AGENT_POLICY });
  await root.addPolicy({ name: 'lobstack-api', rules: API_POLICY });
  await root.addPolicy({ name: 'lobstack-provisioner', rules: PROVISIONER_POLICY });
  await root.enableAuth({ mount_point: 'kubernetes', type: 'kubernetes' });
  await root.write('auth/kubernetes/config',
    { kubernetes_host: kube.url, kubernetes_ca_cert: kube.caPem, token_reviewer_jwt: 'vault-reviewer' });
  await root.write('auth/kubernetes/role/lobstack-api', { bound_service_account_names: 'lobstack-api',
    bound_service_account_namespaces: 'lobstack-control-plane',
    policies: 'lobstack-api,lobstack-provisioner', ttl, max_ttl: maxTtl,
  });
  await root.write('auth/kubernetes/role/lobstack-agent', { bound_service_account_names: 'agent-*',
    bound_service_account_namespaces: 'lobstack-agents', alias_name_source: 'serviceaccount_name',
    policies: 'lobstack-agent', ttl, max_ttl: maxTtl,
  });
  const jwtFor = (namespace, name) => signServiceAccountJwt({
    privateKey: cluster.privateKey, namespace, name, uid: `uid-${namespace}-${name}`,
  });
  const podLogin = async (role, namespace, name) => {
    const c = nodeVault({ endpoint: d.addr });
    const res = await c.kubernetesLogin({ mount_point: 'kubernetes', role, jwt: jwtFor(namespace, name) });
    return { c, auth: res.auth };
  };
  return { d, root, podLogin };
}

// What the API does when it creates agent `id`: the entity, then the alias that ties the agent's
// service account (lobstack-agents/agent-<id>) to it on the Kubernetes mount.
async function provisionAgent(apiClient, id) {
  const accessor = (await apiClient.read('sys/auth')).data['kubernetes/'].accessor;
  const entity = await apiClient.write('identity/entity', { name: `agent-${id}`, metadata: { agent_id: id } });
  await apiClient.write('identity/entity-alias', {
    name: `lobstack-agents/agent-${id}`, canonical_id: entity.data.id, mount_accessor: accessor,
  });
  return entity.data.id;
}

const forbidden = (p) => (err) => {
  assert.equal(err.response.statusCode, 403, `${p}: ${err.message}`);
  return true;
};

test('reference set-up: agents reach only their own secrets, the API reaches all agents', async (t) => {
  const { root, podLogin } = await referenceSetup(t);
  await root.write('secret/data/lobstack/api-keys', { data: { openai: 'sk-live-1' } });

  const { c: apiPod, auth: apiAuth } = await podLogin('lobstack-api', 'lobstack-control-plane', 'lobstack-api');
  assert.deepEqual(apiAuth.policies, ['default', 'lobstack-api', 'lobstack-provisioner']);
  assert.equal(apiAuth.lease_duration, 3600);

  // The API: read api-keys, and create / read / update / list / delete agent paths.
  assert.equal((await apiPod.read('secret/data/lobstack/api-keys')).data.data.openai, 'sk-live-1');
  await apiPod.write('secret/data/lobstack/agent/a', { data: { token: 'agent-a-secret' } });
  await apiPod.write('secret/data/lobstack/agent/b', { data: { token: 'agent-b-secret' } });
  await apiPod.write('secret/data/lobstack/agent/a', { data: { token: 'agent-a-secret-2' } });
  assert.equal((await apiPod.read('secret/data/lobstack/agent/a')).data.data.token, 'agent-a-secret-2');
  await apiPod.write('secret/data/lobstack/agent/tmp', { data: { x: 1 } });
  assert.deepEqual((await apiPod.list('secret/metadata/lobstack/agent/')).data.keys, ['a', 'b', 'tmp']);
  await apiPod.delete('secret/data/lobstack/agent/tmp');
  await assert.rejects(apiPod.read('secret/data/lobstack/agent/tmp'), (err) => err.response.statusCode === 404);
  const enc = await apiPod.write('transit/encrypt/lobstack', { plaintext: Buffer.from('api').toString('base64') });
  assert.match(enc.data.ciphertext, /^vault:v1:/);
  await assert.rejects(apiPod.write('transit/encrypt/agent-data', { plaintext: 'YQ==' }), forbidden('agent-data'));
  await assert.rejects(apiPod.read('secret/data/lobstack/other'), forbidden('other'));

  // Provisioning is narrow: no policies on entities, no updates of existing ones.
  await assert.rejects(apiPod.write('identity/entity', { name: 'evil', policies: ['lobstack-api'] }),
    forbidden('entity policies'));
  await assert.rejects(apiPod.write('identity/entity', { id: 'x', metadata: { agent_id: 'b' } }),
    forbidden('entity update'));
  await provisionAgent(apiPod, 'a');
  await provisionAgent(apiPod, 'b');

  // Agent A's pod logs in with its own service account and gets its own agent id.
  const { c: agentA, auth: aAuth } = await podLogin('lobstack-agent', 'lobstack-agents', 'agent-a');
  assert.deepEqual(aAuth.policies, ['default', 'lobstack-agent']);
  const entityA = await agentA.read(`identity/entity/id/${aAuth.entity_id}`); // the default policy
  assert.equal(entityA.data.metadata.agent_id, 'a');
  assert.equal((await agentA.read('secret/data/lobstack/agent/a')).data.data.token, 'agent-a-secret-2');
  await assert.rejects(agentA.read('secret/data/lobstack/agent/b'), forbidden('agent b'));
  await assert.rejects(agentA.read('secret/data/lobstack/api-keys'), forbidden('api-keys'));
  await assert.rejects(agentA.write('transit/encrypt/lobstack', { plaintext: 'YQ==' }), forbidden('transit lobstack'));
  await assert.rejects(agentA.write('secret/data/lobstack/agent/a', { data: { x: 1 } }), forbidden('write own'));
  await assert.rejects(agentA.list('secret/metadata/lobstack/agent/'), forbidden('list'));
  const plaintext = Buffer.from('agent a data').toString('base64');
  const ct = await agentA.write('transit/encrypt/agent-data', { plaintext });
  assert.equal((await agentA.write('transit/decrypt/agent-data', { ciphertext: ct.data.ciphertext })).data.plaintext, plaintext);

  // Agent B reads only b.
  const { c: agentB } = await podLogin('lobstack-agent', 'lobstack-agents', 'agent-b');
  assert.equal((await agentB.read('secret/data/lobstack/agent/b')).data.data.token, 'agent-b-secret');
  await assert.rejects(agentB.read('secret/data/lobstack/agent/a'), forbidden('agent a from b'));

  // An agent pod that was never provisioned gets an entity of its own, without agent_id: the
  // templated path is dropped, so it reads no agent's secrets.
  const { c: stray, auth: strayAuth } = await podLogin('lobstack-agent', 'lobstack-agents', 'agent-c');
  assert.notEqual(strayAuth.entity_id, aAuth.entity_id);
  await assert.rejects(stray.read('secret/data/lobstack/agent/a'), forbidden('stray'));
  await assert.rejects(stray.read('secret/data/lobstack/agent/'), forbidden('stray dir'));
  // Pods outside the bindings cannot log in with either role.
  await assert.rejects(podLogin('lobstack-agent', 'lobstack-control-plane', 'agent-a'), forbidden('ns'));
  await assert.rejects(podLogin('lobstack-api', 'lobstack-agents', 'agent-a'), forbidden('name'));
});

test('reference set-up: tokens live 1 h, renew up to 4 h and no further', async (t) => {
  const { podLogin } = await referenceSetup(t);
  const { c, auth } = await podLogin('lobstack-api', 'lobstack-control-plane', 'lobstack-api');
  assert.equal(auth.lease_duration, 3600);
  assert.equal(auth.renewable, true);
  const self = await c.tokenLookupSelf();
  const issued = Date.parse(self.data.issue_time);
  assert.ok(Math.abs(Date.parse(self.data.expire_time) - issued - 3600e3) < 5000);
  // Asking for 10 h gets at most what is left of the 4 h maximum.
  const renewed = await c.tokenRenewSelf({ increment: '10h' });
  assert.ok(renewed.auth.lease_duration <= 4 * 3600 && renewed.auth.lease_duration > 4 * 3600 - 60,
    `lease_duration ${renewed.auth.lease_duration}`);
  const after = await c.tokenLookupSelf();
  assert.ok(Date.parse(after.data.expire_time) - issued <= 4 * 3600e3 + 1000);
});

test('reference set-up, scaled down: tokens really expire at ttl and at max_ttl', async (t) => {
  // The same roles with ttl 2 s and max_ttl 5 s, to watch the limits act in real time.
  const { podLogin } = await referenceSetup(t, { ttl: '2s', maxTtl: '5s' });
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const { c: expiring } = await podLogin('lobstack-agent', 'lobstack-agents', 'agent-a');
  await expiring.tokenLookupSelf();
  await sleep(3000);
  await assert.rejects(expiring.tokenLookupSelf(), forbidden('expired at ttl'));

  const { c: renewing } = await podLogin('lobstack-agent', 'lobstack-agents', 'agent-a');
  const started = Date.now();
  let lastGrant = 2;
  while (Date.now() - started < 7000) {
    try {
      lastGrant = (await renewing.tokenRenewSelf({ increment: '2s' })).auth.lease_duration;
    } catch (err) {
      assert.equal(err.response.statusCode, 403);
      break;
    }
    await sleep(500);
  }
  assert.ok(lastGrant < 2, `renewals shrink to the max_ttl: last grant ${lastGrant}`);
  await sleep(2500);
  await assert.rejects(renewing.tokenLookupSelf(), forbidden('expired at max_ttl'));
});
