// End-to-end: sys/host-info, sys/internal/counters/*, sys/internal/specs/openapi,
// sys/config/state/sanitized and sys/version-history through raw HTTP and node-vault's generic
// read/list; the OpenAPI document is validated by a real OpenAPI 3 validator and checked to name
// every path this test (and node-vault) used.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const SwaggerParser = require('@apidevtools/swagger-parser');
const { startDevClient, api } = require('./harness');

const ROOT = 'sysinfo-e2e-root';

// Whether an OpenAPI path template ("/secret/data/{path}") matches a request path; a parameter
// may take several segments, as Vault documents its ".+" captures.
function templateMatches(template, reqPath) {
  const re = new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&')
    .replace(/\{[^}/]+\}/g, '[^/].*?')}/?$`);
  return re.test(`/${reqPath}`);
}

test('sys information endpoints in Vault\'s shapes', async (t) => {
  const { d, root } = await startDevClient(t, ROOT);

  // host-info: sudo only.
  await root.addPolicy({ name: 'hi', rules: 'path "sys/host-info" { capabilities = ["read"] }' });
  // (Raw HTTP: node-vault's tokenCreate would switch `root` to the new token.)
  const weak = (await api(d, ROOT, 'POST', 'auth/token/create', { policies: ['hi'] })).body.auth.client_token;
  assert.equal((await api(d, weak, 'GET', 'sys/host-info')).status, 403);
  const host = await api(d, ROOT, 'GET', 'sys/host-info');
  assert.equal(host.status, 200);
  for (const k of ['cpu', 'cpu_times', 'disk', 'host', 'memory', 'timestamp']) {
    assert.ok(k in host.body.data, k);
  }
  assert.ok(host.body.data.cpu.length >= 1);
  assert.equal(typeof host.body.data.cpu[0].modelName, 'string');
  assert.ok(host.body.data.cpu_times[0].cpu.startsWith('cpu'));
  assert.ok(host.body.data.memory.total > 0);
  assert.ok(host.body.data.memory.available > 0);
  assert.equal(host.body.data.host.os, 'linux');
  assert.ok(host.body.data.host.bootTime > 0);
  assert.ok(Array.isArray(host.body.data.disk));
  assert.ok(!Number.isNaN(Date.parse(host.body.data.timestamp)));

  // Counters.
  const tokens = await root.read('sys/internal/counters/tokens');
  assert.ok(tokens.data.counters.service_tokens.total >= 2); // root and `weak`
  const entities = await root.read('sys/internal/counters/entities');
  assert.equal(entities.data.counters.entities.total, 0);
  const activity = await api(d, ROOT, 'GET', 'sys/internal/counters/activity');
  assert.equal(activity.status, 204); // no activity log: Vault's answer for a period without data
  const backwards = await api(d, ROOT, 'GET',
    'sys/internal/counters/activity?start_time=2024-02-01T00:00:00Z&end_time=2024-01-01T00:00:00Z');
  assert.equal(backwards.status, 400);
  assert.deepEqual(backwards.body.errors, ['start_time is later than end_time']);
  assert.equal((await root.read('sys/internal/counters/config')).data.enabled, 'disable');

  // Sanitized configuration: Vault's keys, no secrets.
  const config = await root.read('sys/config/state/sanitized');
  assert.equal(config.data.listeners[0].type, 'tcp');
  assert.equal(config.data.seals[0].type, 'pkcs11');
  assert.ok('storage' in config.data);
  assert.doesNotMatch(JSON.stringify(config.data), /pin|1234/i);

  // Version history (LIST).
  const versions = await root.list('sys/version-history');
  assert.deepEqual(versions.data.keys, ['1.19.0+strongroom']);
  const v = versions.data.key_info['1.19.0+strongroom'];
  assert.equal(v.previous_version, null);
  assert.ok(!Number.isNaN(Date.parse(v.timestamp_installed)));

  // OpenAPI: unauthenticated; with the root token, every mount's routes.
  await root.enableAuth({ mount_point: 'userpass', type: 'userpass' });
  await root.mount({ mount_point: 'transit', type: 'transit' });
  const res = await fetch(`${d.addr}/v1/sys/internal/specs/openapi`, {
    headers: { 'X-Vault-Token': ROOT },
  });
  assert.equal(res.status, 200);
  const doc = JSON.parse(await res.text()); // valid JSON
  assert.equal(doc.openapi, '3.0.2');
  assert.equal(doc.info.version, '1.19.0+strongroom');
  await SwaggerParser.validate(structuredClone(doc)); // a real OpenAPI 3 validator
  const used = [
    ['get', 'sys/host-info'], ['get', 'sys/internal/counters/tokens'],
    ['get', 'sys/internal/counters/activity'], ['get', 'sys/config/state/sanitized'],
    ['get', 'sys/version-history'], ['post', 'sys/policy/hi'], ['post', 'auth/token/create'],
    ['get', 'sys/mounts'], ['post', 'sys/auth/userpass'], ['post', 'sys/mounts/transit'],
    ['post', 'secret/data/app/one'], ['get', 'secret/metadata/app'], ['post', 'transit/encrypt/k'],
    ['post', 'auth/userpass/login/alice'], ['post', 'auth/userpass/users/alice'],
    ['get', 'sys/internal/specs/openapi'], ['get', 'sys/health'], ['post', 'sys/unseal'],
  ];
  for (const [verb, p] of used) {
    const hit = Object.entries(doc.paths).find(([tmpl, item]) => templateMatches(tmpl, p) && item[verb]);
    assert.ok(hit, `${verb} ${p} is not in the document`);
  }
  assert.equal(doc.paths['/sys/host-info']['x-vault-sudo'], true);
  assert.equal(doc.paths['/auth/userpass/login/{username}']['x-vault-unauthenticated'], true);
  // Without a token: only mounts tuned listing_visibility=unauth.
  const anon = await api(d, '', 'GET', 'sys/internal/specs/openapi');
  assert.equal(anon.status, 200);
  assert.deepEqual(Object.keys(anon.body.paths), []);
  const generic = await api(d, ROOT, 'GET', 'sys/internal/specs/openapi?generic_mount_paths=true');
  assert.ok('/auth/{userpass_mount_path}/users/{username}' in generic.body.paths);
  await SwaggerParser.validate(generic.body);

  // The router refuses what the document does not list, after the ACL.
  const unknown = await api(d, ROOT, 'GET', 'sys/no-such-endpoint');
  assert.equal(unknown.status, 404);
  assert.deepEqual(unknown.body.errors, ['unsupported path']);
  assert.equal((await api(d, ROOT, 'DELETE', 'sys/host-info')).status, 405);
});
