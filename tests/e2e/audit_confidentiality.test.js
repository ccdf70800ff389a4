// End-to-end (issue 23 item 7): secrets sent by node-vault, the client applications use, through
// every engine and auth method -- Kubernetes logins reviewed by a (fake) API server over TLS with
// a reviewer JWT -- appear in no audit file and not in the daemon's log in clear. Two file
// devices, one with hmac_accessor=false: token accessors are in clear there only, and only in
// the auth and client_token_accessor fields, as in Vault.
// Vault API sections: audit devices (file: hmac_accessor), KV v2, Transit, AppRole, Kubernetes
// auth (TokenReview, token_reviewer_jwt), auth/token, identity/entity, sys/policy.
// The C++ counterpart (tests/adversarial/audit_confidentiality_test.cc) covers number literals
// beyond what JavaScript can send, path forms, refused tokens and Transit's other outputs.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const nodeVault = require('node-vault');
const { startDevClient, api } = require('./harness');
const { makeKeyPair, signServiceAccountJwt, startFakeKube } = require('./fake_kube');

const ROOT = `audit-conf-root-${crypto.randomBytes(8).toString('hex')}`;
const ACCESSOR_FIELDS = new Set(['/auth/accessor', '/request/client_token_accessor', '/response/auth/accessor']);

test('node-vault: no secret in clear in any audit file or the daemon log', async (t) => {
  const { d, root } = await startDevClient(t, ROOT);
  const hashedLog = path.join(d.dir, 'audit-hashed.log');
  const clearLog = path.join(d.dir, 'audit-clear.log');
  await root.enableAudit({ name: 'hashed', type: 'file', options: { file_path: hashedLog } });
  await root.enableAudit({ name: 'clear', type: 'file', options: { file_path: clearLog, hmac_accessor: 'false' } });

  // label -> { forms: texts never to be in clear, accessor, number }
  const secrets = new Map();
  const add = (label, value, { accessor = false } = {}) => {
    const text = String(value);
    const forms = [text, Buffer.from(text).toString('base64'), Buffer.from(text).toString('base64url'),
      Buffer.from(text).toString('hex')].filter((f) => f.length >= 12);
    secrets.set(label, { forms, accessor, number: typeof value === 'number' ? value : null });
    return value;
  };
  const text = (label) => add(label, `${label}-${crypto.randomBytes(12).toString('hex')}`);
  const b64 = (label) => Buffer.from(text(label)).toString('base64');
  const digits = (n) => Array.from(crypto.randomBytes(n), (b) => b % 10).join('').replace(/^0/, '7');

  // Policy, KV v2 (every JSON type JavaScript sends), identity.
  const policyNote = text('policy-comment');
  await root.addPolicy({ name: 'reader', rules: `# contact: ${policyNote}\npath "secret/data/*" { capabilities = ["read"] }` });
  assert.match((await root.getPolicy({ name: 'reader' })).rules, new RegExp(policyNote));
  const data = {
    password: text('kv-password'),
    pin: add('kv-int', Number(`8${digits(14)}`)),
    ratio: add('kv-float', Number(`5${digits(4)}.${digits(7)}3`)),
    enabled: true,
    nested: { deep: { api_key: text('kv-nested') } },
    list: [text('kv-array-item'), add('kv-array-int', Number(`6${digits(13)}`)), { item: text('kv-array-object') }],
  };
  await root.write('secret/data/app', { data });
  assert.deepEqual((await root.read('secret/data/app')).data.data, data);
  const entity = await root.write('identity/entity', { name: 'conf', metadata: { owner: text('entity-metadata') } });
  await root.read(`identity/entity/id/${entity.data.id}`);

  // Transit through node-vault's own commands.
  await root.mount({ mount_point: 'transit', type: 'transit' });
  await root.transitCreateKey({ name: 'app' });
  const plaintext = b64('transit-plaintext');
  const { ciphertext } = (await root.encryptData({ name: 'app', plaintext })).data;
  add('transit-ciphertext', ciphertext);
  assert.equal((await root.decryptData({ name: 'app', ciphertext })).data.plaintext, plaintext);
  add('transit-rewrapped', (await root.rewrapData({ name: 'app', ciphertext })).data.ciphertext);
  const dataKey = (await root.write('transit/datakey/plaintext/app', {})).data;
  add('transit-datakey-plaintext', dataKey.plaintext);
  add('transit-datakey-ciphertext', dataKey.ciphertext);

  // AppRole.
  await root.enableAuth({ mount_point: 'approle', type: 'approle' });
  await root.addApproleRole({ role_name: 'app', policies: 'reader' });
  const roleId = add('approle-role-id', (await root.getApproleRoleId({ role_name: 'app' })).data.role_id);
  const sid = (await root.getApproleRoleSecret({ role_name: 'app' })).data;
  add('approle-secret-id', sid.secret_id);
  add('approle-secret-id-accessor', sid.secret_id_accessor);
  await root.approleSecretLookup({ role_name: 'app', secret_id: sid.secret_id });
  await root.approleSecretAccessorLookup({ role_name: 'app', secret_id_accessor: sid.secret_id_accessor });
  const appClient = nodeVault({ endpoint: d.addr });
  const appLogin = await appClient.approleLogin({ role_id: roleId, secret_id: sid.secret_id });
  add('approle-client-token', appLogin.auth.client_token);
  add('approle-accessor', appLogin.auth.accessor, { accessor: true });
  assert.equal((await appClient.read('secret/data/app')).data.data.password, data.password);
  await assert.rejects(nodeVault({ endpoint: d.addr }).approleLogin({ role_id: roleId, secret_id: text('approle-wrong-secret-id') }));

  // Kubernetes through TokenReview: the reviewer JWT and the service account's JWT.
  const cluster = makeKeyPair('RS256');
  const reviewer = text('kubernetes-reviewer-jwt');
  const kube = await startFakeKube({ publicKey: cluster.publicKey, reviewerToken: reviewer });
  t.after(() => kube.close());
  await root.enableAuth({ mount_point: 'kubernetes', type: 'kubernetes' });
  await root.write('auth/kubernetes/config', { kubernetes_host: kube.url, kubernetes_ca_cert: kube.caPem, token_reviewer_jwt: reviewer });
  await root.write('auth/kubernetes/role/web', { bound_service_account_names: 'web', bound_service_account_namespaces: 'apps', policies: 'reader' });
  const sa = { privateKey: cluster.privateKey, namespace: 'apps', name: 'web', uid: crypto.randomUUID() };
  const jwt = add('kubernetes-jwt', signServiceAccountJwt(sa));
  const kubeClient = nodeVault({ endpoint: d.addr });
  const kubeLogin = await kubeClient.kubernetesLogin({ mount_point: 'kubernetes', role: 'web', jwt });
  assert.equal(kube.requests.at(-1).headers.authorization, `Bearer ${reviewer}`);
  add('kubernetes-client-token', kubeLogin.auth.client_token);
  add('kubernetes-accessor', kubeLogin.auth.accessor, { accessor: true });
  kube.revoke(sa.uid);  // the API server no longer vouches for it
  const revoked = await api(d, null, 'POST', 'auth/kubernetes/login', { role: 'web', jwt: add('kubernetes-revoked-jwt', signServiceAccountJwt(sa)) });
  assert.equal(revoked.status, 403);

  // Tokens: created (node-vault adopts a created token, so a client of its own creates them),
  // then sent in headers and named in bodies.
  const creator = nodeVault({ endpoint: d.addr, token: ROOT });
  const made = async (label) => {
    const c = await creator.tokenCreate({ policies: ['reader'] });
    creator.token = ROOT;
    add(`${label}-token`, c.auth.client_token);
    add(`${label}-accessor`, c.auth.accessor, { accessor: true });
    return c.auth;
  };
  const t1 = await made('t1');
  const user = nodeVault({ endpoint: d.addr, token: t1.client_token });
  await user.tokenLookupSelf();
  const bearer = await fetch(`${d.addr}/v1/secret/data/app`, { headers: { Authorization: `Bearer ${t1.client_token}` } });
  assert.equal(bearer.status, 200);
  await root.tokenLookup({ token: t1.client_token });
  await root.tokenRenew({ token: t1.client_token });
  root.token = ROOT;  // node-vault adopts the renewed token too
  await root.tokenLookupAccessor({ accessor: t1.accessor });
  const t2 = await made('t2');
  await root.tokenRevoke({ token: t2.client_token });
  const t3 = await made('t3');
  await root.tokenRevokeAccessor({ accessor: t3.accessor });

  await root.disableAudit({ name: 'hashed' });  // ends each file signed; nothing more is written
  await root.disableAudit({ name: 'clear' });

  const leaks = [];
  const accessorsInClear = new Set();
  const scan = (file, clearAccessors) => {
    const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
    assert.ok(lines.length > 50, `${file}: ${lines.length} lines`);
    lines.forEach((line, i) => {
      const where = `${path.basename(file)}:${i + 1}`;
      const walk = (v, ptr) => {
        if (Array.isArray(v)) return v.forEach((item, k) => walk(item, `${ptr}/${k}`));
        if (v && typeof v === 'object') {
          for (const [k, item] of Object.entries(v)) { check(k, `${ptr}/${k} (key)`); walk(item, `${ptr}/${k}`); }
          return undefined;
        }
        if (typeof v === 'number') {
          for (const [label, s] of secrets) if (s.number !== null && Math.abs(v - s.number) <= Math.abs(s.number) * 1e-12) leaks.push(`${where}: ${label} (number) at ${ptr}`);
          return undefined;
        }
        if (typeof v === 'string') check(v, ptr);
        return undefined;
      };
      const check = (value, ptr) => {
        for (const [label, s] of secrets) {
          if (!s.forms.some((f) => value.includes(f))) continue;
          if (s.accessor && clearAccessors && s.forms[0] === value && ACCESSOR_FIELDS.has(ptr)) accessorsInClear.add(label);
          else leaks.push(`${where}: ${label} at ${ptr}`);
        }
      };
      walk(JSON.parse(line), '');
      for (const [label, s] of secrets) {
        if (s.accessor && clearAccessors) continue;
        if (s.forms.some((f) => line.includes(f))) leaks.push(`${where}: ${label} in the line's text`);
      }
    });
  };
  scan(hashedLog, false);
  assert.deepEqual([...accessorsInClear], [], 'accessors in clear on the hmac_accessor=true device');
  scan(clearLog, true);
  assert.deepEqual(leaks, [], `secrets in clear in the audit files:\n${leaks.join('\n')}`);
  const accessors = [...secrets].filter(([, s]) => s.accessor).map(([label]) => label).sort();
  assert.deepEqual([...accessorsInClear].sort(), accessors, 'every accessor in clear where hmac_accessor=false');

  // The daemon's own log (the dev banner prints the root token, as Vault's does: not searched).
  const logged = [];
  for (const [label, s] of secrets) {
    const line = d.log.split('\n').find((l) => s.forms.some((f) => l.includes(f)));
    if (line) logged.push(`${label}: ${line}`);
  }
  assert.deepEqual(logged, [], `secrets in the daemon's log:\n${logged.join('\n')}`);
});
