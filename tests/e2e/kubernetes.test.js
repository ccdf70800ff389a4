// End-to-end: the Kubernetes auth method. TokenReview goes over TLS to a fake API server
// (fake_kube.js) that answers as kube-apiserver does; local-only validation uses pem_keys.
// Every kind of bad JWT is refused with a clear error and the attempt is in the daemon's log.
// (node-vault's addKubernetesRole sends no body: its request schema lacks "properties"; roles
// are written with write(), as the Vault CLI does.)
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const nodeVault = require('node-vault');
const { waitFor, startDevClient, api } = require('./harness');
const {
  DEFAULT_AUDIENCE, DEFAULT_ISSUER, makeKeyPair, signServiceAccountJwt, startFakeKube,
} = require('./fake_kube');

const ROOT = 'k8s-e2e-root';

async function devWithKubernetes(t) {
  const { d, root } = await startDevClient(t, ROOT);
  await root.enableAuth({ mount_point: 'kubernetes', type: 'kubernetes' });
  return { d, root };
}

// The daemon's log (read from its pipe, so possibly after the answer) gets `re` after `before`.
function logged(d, before, re, what) {
  return waitFor(() => re.test(d.log.slice(before)), 5000, `a log line for ${what}`);
}

// Logs in with raw HTTP; returns { status, body }.
function login(d, role, jwt) {
  return api(d, null, 'POST', 'auth/kubernetes/login', { role, jwt });
}

test('kubernetes: config and role API', async (t) => {
  const { d } = await devWithKubernetes(t);
  const kube = await startFakeKube({ publicKey: makeKeyPair('RS256').publicKey, reviewerToken: 'r' });
  t.after(() => kube.close());

  let r = await api(d, ROOT, 'GET', 'auth/kubernetes/config');
  assert.equal(r.status, 404);
  r = await api(d, ROOT, 'POST', 'auth/kubernetes/config', { issuer: 'x' });
  assert.equal(r.status, 400);
  assert.match(r.body.errors[0], /no host provided/);
  r = await api(d, ROOT, 'POST', 'auth/kubernetes/config', { kubernetes_host: 'http://127.0.0.1:1' });
  assert.equal(r.status, 400);
  assert.match(r.body.errors[0], /https/);
  r = await api(d, ROOT, 'POST', 'auth/kubernetes/config',
    { kubernetes_host: kube.url, kubernetes_ca_cert: 'not a certificate' });
  assert.equal(r.status, 400);
  r = await api(d, ROOT, 'POST', 'auth/kubernetes/config', { pem_keys: ['-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n'] });
  assert.equal(r.status, 400);
  assert.match(r.body.errors[0], /pem_keys/);
  r = await api(d, ROOT, 'POST', 'auth/kubernetes/config',
    { kubernetes_host: kube.url, kubernetes_ca_cert: kube.caPem, token_reviewer_jwt: 'r' });
  assert.equal(r.status, 204);
  r = await api(d, ROOT, 'GET', 'auth/kubernetes/config');
  assert.equal(r.body.data.kubernetes_host, kube.url);
  assert.equal(r.body.data.token_reviewer_jwt_set, true);
  assert.equal(r.body.data.token_reviewer_jwt, undefined); // never read back
  assert.equal(r.body.data.disable_iss_validation, true);

  r = await api(d, ROOT, 'POST', 'auth/kubernetes/role/demo', { bound_service_account_names: ['app'] });
  assert.equal(r.status, 400);
  assert.match(r.body.errors[0], /bound_service_account_namespaces/);
  r = await api(d, ROOT, 'POST', 'auth/kubernetes/role/demo',
    { bound_service_account_names: ['*', 'app'], bound_service_account_namespaces: ['x'] });
  assert.equal(r.status, 400);
  r = await api(d, ROOT, 'POST', 'auth/kubernetes/role/demo',
    { bound_service_account_names: 'app', bound_service_account_namespaces: 'x', ttl: '1h', max_ttl: '30m' });
  assert.equal(r.status, 400);
  r = await api(d, ROOT, 'POST', 'auth/kubernetes/role/demo',
    { bound_service_account_names: 'app', bound_service_account_namespaces: 'x', alias_name_source: 'pod' });
  assert.equal(r.status, 400);
  r = await api(d, ROOT, 'POST', 'auth/kubernetes/role/demo', {
    bound_service_account_names: 'app,worker', bound_service_account_namespaces: ['apps-*'],
    policies: ['Demo'], ttl: '1h', max_ttl: '4h', audience: 'vault',
  });
  assert.equal(r.status, 204);
  r = await api(d, ROOT, 'GET', 'auth/kubernetes/role/demo');
  assert.deepEqual(r.body.data.bound_service_account_names, ['app', 'worker']);
  assert.deepEqual(r.body.data.bound_service_account_namespaces, ['apps-*']);
  assert.deepEqual(r.body.data.token_policies, ['demo']);
  assert.equal(r.body.data.token_ttl, 3600);
  assert.equal(r.body.data.token_max_ttl, 14400);
  assert.equal(r.body.data.audience, 'vault');
  assert.equal(r.body.data.alias_name_source, 'serviceaccount_uid');
  r = await api(d, ROOT, 'LIST', 'auth/kubernetes/role');
  assert.deepEqual(r.body.data.keys, ['demo']);
  r = await login(d, 'nope', 'x.y.z');
  assert.equal(r.status, 400);
  assert.equal(r.body.errors[0], 'invalid role name "nope"');
  r = await login(d, 'demo', '');
  assert.equal(r.status, 400);
  assert.equal(r.body.errors[0], 'missing jwt');
  r = await login(d, '', 'x');
  assert.equal(r.status, 400);
  assert.equal(r.body.errors[0], 'missing role');
});

test('kubernetes: TokenReview login, and every kind of bad JWT refused and logged', async (t) => {
  const { d, root } = await devWithKubernetes(t);
  const cluster = makeKeyPair('RS256');
  const kube = await startFakeKube({ publicKey: cluster.publicKey, reviewerToken: 'reviewer-token' });
  t.after(() => kube.close());
  await root.write('auth/kubernetes/config',
    { kubernetes_host: kube.url, kubernetes_ca_cert: kube.caPem, token_reviewer_jwt: 'reviewer-token' });
  await root.addPolicy({ name: 'demo', rules: 'path "secret/data/demo" { capabilities = ["read"] }' });
  await root.write('auth/kubernetes/role/demo', { bound_service_account_names: 'app', bound_service_account_namespaces: 'apps-*',
    policies: 'demo', ttl: '1h',
  });
  await root.write('auth/kubernetes/role/aud', { bound_service_account_names: 'app', bound_service_account_namespaces: 'apps-*',
    audience: 'vault',
  });
  await root.write('secret/data/demo', { data: { v: 1 } });
  const sa = { privateKey: cluster.privateKey, namespace: 'apps-blue', name: 'app', uid: '5b6c7d8e-0000-4000-8000-000000000001' };

  // A good token: Vault's auth block, and the review went out exactly as Vault sends it.
  const client = nodeVault({ endpoint: d.addr });
  const good = await client.kubernetesLogin({ mount_point: 'kubernetes', role: 'demo', jwt: signServiceAccountJwt(sa) });
  assert.deepEqual(good.auth.policies, ['default', 'demo']);
  assert.deepEqual(good.auth.metadata, {
    role: 'demo', service_account_name: 'app', service_account_namespace: 'apps-blue',
    service_account_secret_name: '', service_account_uid: sa.uid,
  });
  assert.equal(good.auth.lease_duration, 3600);
  assert.equal(good.auth.renewable, true);
  assert.equal(good.auth.orphan, true);
  assert.match(good.auth.entity_id, /^[0-9a-f-]{36}$/);
  assert.equal((await client.read('secret/data/demo')).data.data.v, 1);
  const self = await client.tokenLookupSelf();
  assert.equal(self.data.display_name, 'kubernetes-apps-blue-app');
  assert.equal(self.data.path, 'auth/kubernetes/login');
  const review = kube.requests.at(-1);
  assert.equal(review.method, 'POST');
  assert.equal(review.url, '/apis/authentication.k8s.io/v1/tokenreviews');
  assert.equal(review.headers.authorization, 'Bearer reviewer-token');
  const body = JSON.parse(review.body);
  assert.deepEqual(Object.keys(body), ['metadata', 'spec', 'status']);
  assert.deepEqual(body.spec.audiences, [DEFAULT_AUDIENCE]); // the JWT's own aud
  // The entity's alias is the service account UID (the default alias_name_source).
  const entity = await root.read(`identity/entity/id/${good.auth.entity_id}`);
  assert.equal(entity.data.aliases[0].name, sa.uid);
  assert.equal(entity.data.aliases[0].metadata.service_account_name, 'app');
  // A legacy (secret-based) token is accepted through TokenReview too.
  let r = await login(d, 'demo', signServiceAccountJwt({ ...sa, legacy: true }));
  assert.equal(r.status, 200);

  const other = makeKeyPair('RS256');
  const cases = [
    ['expired', signServiceAccountJwt({ ...sa, expSeconds: -3600 }), 403],
    ['not yet valid', signServiceAccountJwt({ ...sa, nbf: Math.floor(Date.now() / 1000) + 3600 }), 403],
    ['wrong issuer', signServiceAccountJwt({ ...sa, issuer: 'https://evil.example' }), 403],
    ['unsigned (alg none)', signServiceAccountJwt({ ...sa, alg: 'none' }), 403],
    ['wrongly signed', signServiceAccountJwt({ ...sa, privateKey: other.privateKey, kid: null }), 403],
    ['unbound name', signServiceAccountJwt({ ...sa, name: 'intruder' }), 403],
    ['unbound namespace', signServiceAccountJwt({ ...sa, namespace: 'kube-system' }), 403],
    ['malformed', 'definitely.not-a.jwt', 400],
    ['malformed', 'nodots-not-a-jwt-e2e', 400],
  ];
  for (const [what, jwt, status] of cases) {
    const before = d.log.length;
    r = await login(d, 'demo', jwt);
    assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
    assert.ok(r.body.errors[0].length > 0, what);
    await logged(d, before, /kubernetes login refused at auth\/kubernetes\/ for role demo/, what);
    assert.ok(!d.log.includes(jwt), `${what}: the JWT must not be logged`);
  }
  r = await login(d, 'demo', signServiceAccountJwt({ ...sa, name: 'intruder' }));
  assert.equal(r.body.errors[0], 'service account name not authorized');
  r = await login(d, 'demo', signServiceAccountJwt({ ...sa, namespace: 'kube-system' }));
  assert.equal(r.body.errors[0], 'namespace not authorized');
  // Wrong audience: a role with `audience` refuses tokens issued for anything else (checked
  // locally, then asked of the API server). A role without one accepts the bound accounts'
  // tokens whatever their audience, as in Vault (the review asks for the token's own aud).
  const before = d.log.length;
  r = await login(d, 'aud', signServiceAccountJwt(sa));
  assert.equal(r.status, 403);
  await logged(d, before, /kubernetes login refused .*JWT audience does not match/, 'audience');
  r = await login(d, 'aud', signServiceAccountJwt({ ...sa, audiences: ['vault'] }));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(JSON.parse(kube.requests.at(-1).body).spec.audiences, ['vault']);

  // A deleted service account: the API server says no.
  kube.revoke(sa.uid);
  r = await login(d, 'demo', signServiceAccountJwt(sa));
  assert.equal(r.status, 403);
  kube.unrevoke(sa.uid);
  // A reviewer token the API server does not accept: Vault's message for a 401.
  // (A config write replaces the whole configuration, as in Vault.)
  await root.write('auth/kubernetes/config',
    { kubernetes_host: kube.url, kubernetes_ca_cert: kube.caPem, token_reviewer_jwt: 'wrong-reviewer' });
  r = await login(d, 'demo', signServiceAccountJwt(sa));
  assert.equal(r.status, 403);
  assert.match(r.body.errors[0], /lookup failed: service account unauthorized/);
  // A CA that did not sign the server's certificate: no login.
  await root.write('auth/kubernetes/config',
    { kubernetes_host: kube.url, token_reviewer_jwt: 'reviewer-token', kubernetes_ca_cert: makeOtherCa(kube) });
  r = await login(d, 'demo', signServiceAccountJwt(sa));
  assert.equal(r.status, 403);
  await logged(d, 0, /TokenReview: /, 'the TLS failure');
});

// The server certificate as a CA: a certificate that is valid PEM but not the issuer.
function makeOtherCa(kube) {
  const { makeTlsMaterial } = require('./fake_kube');
  const fs = require('node:fs');
  const os = require('node:os');
  const path = require('node:path');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'other-ca-'));
  const pem = makeTlsMaterial(dir).caPem;
  fs.rmSync(dir, { recursive: true, force: true });
  assert.notEqual(pem, kube.caPem);
  return pem;
}

test('kubernetes: local-only validation with pem_keys (no TokenReview)', async (t) => {
  const { d, root } = await devWithKubernetes(t);
  const cluster = makeKeyPair('ES256');
  await root.write('auth/kubernetes/config',
    { pem_keys: [cluster.publicKeyPem], issuer: DEFAULT_ISSUER, disable_iss_validation: false });
  await root.write('auth/kubernetes/role/local', { bound_service_account_names: 'app', bound_service_account_namespaces: 'apps',
    audience: DEFAULT_AUDIENCE,
  });
  const sa = { privateKey: cluster.privateKey, alg: 'ES256', namespace: 'apps', name: 'app', uid: 'u-1' };
  let r = await login(d, 'local', signServiceAccountJwt(sa));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.auth.metadata.service_account_uid, 'u-1');

  const other = makeKeyPair('ES256');
  const rsa = makeKeyPair('RS256');
  const cases = [
    ['expired', signServiceAccountJwt({ ...sa, expSeconds: -3600 }), 403],
    ['wrong audience', signServiceAccountJwt({ ...sa, audiences: ['other'] }), 403],
    ['wrong issuer', signServiceAccountJwt({ ...sa, issuer: 'https://evil.example' }), 403],
    ['unsigned (alg none)', signServiceAccountJwt({ ...sa, alg: 'none' }), 403],
    ['wrongly signed', signServiceAccountJwt({ ...sa, privateKey: other.privateKey }), 403],
    ['RSA key not configured', signServiceAccountJwt({ ...sa, alg: 'RS256', privateKey: rsa.privateKey }), 403],
    ['legacy token without expiry', signServiceAccountJwt({ ...sa, legacy: true, issuer: DEFAULT_ISSUER }), 403],
    ['unbound name', signServiceAccountJwt({ ...sa, name: 'x' }), 403],
    ['malformed', 'a.b', 400],
  ];
  for (const [what, jwt, status] of cases) {
    const before = d.log.length;
    r = await login(d, 'local', jwt);
    assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
    await logged(d, before, /kubernetes login refused/, what);
  }
  // A tampered payload (the signature no longer matches).
  const [h, p, s] = signServiceAccountJwt(sa).split('.');
  const claims = JSON.parse(Buffer.from(p, 'base64url'));
  claims['kubernetes.io'].serviceaccount.name = 'app';
  claims['kubernetes.io'].namespace = 'apps';
  claims.sub = 'system:serviceaccount:apps:app';
  claims.exp += 1;
  r = await login(d, 'local', `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`);
  assert.equal(r.status, 403);
});
