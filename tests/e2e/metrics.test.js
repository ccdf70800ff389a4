// End-to-end: sys/metrics (Vault API: /sys/metrics; configuration: the telemetry stanza and the
// tcp listener's telemetry parameters). The Prometheus form is parsed by a real Prometheus
// parser: prometheus_client's text_string_to_metric_families (Debian's python3-prometheus-client),
// run in a Python child process; the JSON form is read through node-vault's generic read.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const nodeVault = require('node-vault');
const { Daemon, startDevClient, api } = require('./harness');
const { parsePrometheus, scrape, families, value } = require('./prometheus');

const requests = (fams, route, code) =>
  value(fams, 'vault_core_handle_request', 'vault_core_handle_request_count', { route, code });

// Every histogram's buckets are cumulative, end with le="+Inf" equal to _count, and come with
// _sum: what histogram_quantile() relies on.
function checkHistograms(fams) {
  let checked = 0;
  for (const f of fams.values()) {
    if (f.type !== 'histogram') continue;
    const series = new Map();
    for (const s of f.samples) {
      const { le, ...rest } = s.labels;
      const key = JSON.stringify(rest);
      if (!series.has(key)) series.set(key, { buckets: [], count: null, sum: null });
      const e = series.get(key);
      if (s.name.endsWith('_bucket')) e.buckets.push([le, s.value]);
      else if (s.name.endsWith('_count')) e.count = s.value;
      else if (s.name.endsWith('_sum')) e.sum = s.value;
    }
    for (const [key, e] of series) {
      assert.ok(e.buckets.length > 1, `${f.name}${key} has buckets`);
      for (let i = 1; i < e.buckets.length; i++) {
        assert.ok(e.buckets[i][1] >= e.buckets[i - 1][1], `${f.name}${key} buckets are cumulative`);
        if (e.buckets[i][0] !== '+Inf') {
          assert.ok(Number(e.buckets[i][0]) > Number(e.buckets[i - 1][0]), `${f.name} bounds increase`);
        }
      }
      assert.equal(e.buckets.at(-1)[0], '+Inf');
      assert.equal(e.buckets.at(-1)[1], e.count, `${f.name}${key}: +Inf bucket equals _count`);
      assert.equal(typeof e.sum, 'number', `${f.name}${key} has _sum`);
      checked++;
    }
  }
  assert.ok(checked > 0, 'there were histograms to check');
}

test('sys/metrics: Prometheus format parsed by prometheus_client; counts follow requests', async (t) => {
  const { d, root } = await startDevClient(t, 'metrics-root');

  // Authenticated by default (Vault: a token with read on sys/metrics).
  assert.equal((await scrape(d, null)).status, 403);
  assert.equal((await scrape(d, 'hvs.not-a-token')).status, 403);
  await root.addPolicy({ name: 'metrics-reader', rules: 'path "sys/metrics" { capabilities = ["read", "list"] }' });
  // (node-vault's tokenCreate makes the new token the client's own: plain HTTP here.)
  const create = async (policies) =>
    (await api(d, 'metrics-root', 'POST', 'auth/token/create', { policies })).body.auth.client_token;
  const reader = await create(['metrics-reader']);
  const other = await create(['default']);
  assert.equal((await scrape(d, other)).status, 403);
  assert.equal((await scrape(d, reader)).status, 200);

  // An audit device, so that audit records are written; a Transit key, for HSM operations.
  const logFile = path.join(d.dir, 'audit.log');
  await root.enableAudit({ name: 'file', type: 'file', options: { file_path: logFile } });
  await root.mount({ mount_point: 'transit', type: 'transit' });
  await root.write('transit/keys/m', {});

  const before = await families(d, reader);
  checkHistograms(before);
  const kvOk = 5;
  for (let i = 0; i < kvOk; i++) {
    if (i === 0) await root.write('secret/data/metrics', { data: { n: i } });
    else await root.read('secret/data/metrics');
  }
  await assert.rejects(root.read('secret/data/missing'), (e) => e.response.statusCode === 404);
  await assert.rejects(root.read('nowhere/x'), (e) => e.response.statusCode === 404);
  const encrypts = 3;
  for (let i = 0; i < encrypts; i++) {
    await root.write('transit/encrypt/m', { plaintext: Buffer.from(`m${i}`).toString('base64') });
  }
  const after = await families(d, reader);
  checkHistograms(after);

  // Requests by route class and status code: exactly the ones made in between.
  assert.equal(requests(after, 'kv', '200') - requests(before, 'kv', '200'), kvOk);
  assert.equal(requests(after, 'kv', '404') - requests(before, 'kv', '404'), 1);
  assert.equal(requests(after, 'transit', '200') - requests(before, 'transit', '200'), encrypts);
  // No mount: the route class says so, never the path.
  assert.equal(requests(after, 'none', '404') - requests(before, 'none', '404'), 1);
  // The first scrape is counted by the second (it is recorded once answered).
  assert.ok(requests(after, 'sys', '200') >= requests(before, 'sys', '200') + 1);
  for (const s of after.get('vault_core_handle_request').samples) {
    assert.ok(!JSON.stringify(s.labels).includes('secret/'), 'no path in a label');
  }
  const statusCodes = (f, code) => value(f, 'vault_core_response_status_code', 'vault_core_response_status_code_total', { code });
  assert.equal(statusCodes(after, '404') - statusCodes(before, '404'), 2);
  assert.equal(after.get('vault_core_response_status_code').type, 'counter');
  assert.equal(after.get('vault_core_handle_request').type, 'histogram');

  // HSM: each encryption is one AES-GCM operation in the token.
  const gcm = (f) => value(f, 'vault_hsm_operation', 'vault_hsm_operation_count', { operation: 'encrypt', mechanism: 'CKM_AES_GCM' });
  assert.equal(gcm(after) - gcm(before), encrypts);
  assert.equal(after.get('vault_hsm_sessions_in_use').type, 'gauge');
  assert.ok(value(after, 'vault_hsm_sessions_opened', 'vault_hsm_sessions_opened_total') >= 1);

  // Audit: every request and response between the scrapes was recorded, durably.
  const records = (f) => value(f, 'vault_audit_records', 'vault_audit_records_total');
  assert.ok(records(after) - records(before) >= 2 * (kvOk + 2 + encrypts), 'a request and a response record each');
  assert.ok(value(after, 'vault_audit_bytes', 'vault_audit_bytes_total') > value(before, 'vault_audit_bytes', 'vault_audit_bytes_total'));
  assert.ok(value(after, 'vault_audit_fsync', 'vault_audit_fsync_count') > value(before, 'vault_audit_fsync', 'vault_audit_fsync_count'));
  assert.equal(value(after, 'vault_audit_log_request_failure', 'vault_audit_log_request_failure_total'), 0);
  assert.ok(fs.statSync(logFile).size > 0);

  // Every metric the Grafana dashboard queries is one the appliance reports (the Raft ones only
  // with storage "raft": tests/e2e/cluster.test.js).
  const dashboard = fs.readFileSync(path.join(__dirname, '..', '..', 'deploy', 'grafana', 'strongroom-dashboard.json'), 'utf8');
  const raftOnly = new Set(['vault_raft_storage_stats_term', 'vault_raft_storage_stats_commit_index',
                            'vault_raft_storage_stats_applied_index', 'vault_raft_peers',
                            'vault_raft_storage_follower_last_heartbeat_ms']);
  const used = new Set([...dashboard.matchAll(/\bvault_[a-z0-9_]+/g)].map((m) => m[0]));
  assert.ok(used.size > 20);
  for (const name of used) {
    const histogram = name.replace(/_(bucket|count|sum)$/, '');
    const found = after.has(name) || raftOnly.has(name) || after.get(histogram)?.type === 'histogram';
    assert.ok(found, `the dashboard's ${name} is reported`);
  }

  // Seal, active, tokens, workers.
  assert.equal(value(after, 'vault_core_unsealed', 'vault_core_unsealed'), 1);
  assert.equal(value(after, 'vault_core_active', 'vault_core_active'), 1);
  assert.ok(value(after, 'vault_token_count', 'vault_token_count', { namespace: 'root' }) >= 3, 'root and the two tokens');
  assert.equal(value(after, 'vault_worker_running', 'vault_worker_running'), 2);
  assert.equal(value(after, 'vault_worker_restarts', 'vault_worker_restarts_total'), 0);

  // Prometheus' own Accept header asks for the text format without ?format=.
  const accepted = await scrape(d, reader, {
    query: '',
    headers: { Accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1' },
  });
  assert.equal(accepted.status, 200);
  assert.match(accepted.type, /^text\/plain; version=0\.0\.4/);
  assert.ok(parsePrometheus(accepted.text).has('vault_core_handle_request'));

  // As Vault: an unknown format is a 400 in plain text.
  const bogus = await scrape(d, reader, { query: '?format=bogus' });
  assert.equal(bogus.status, 400);
  assert.equal(bogus.text, 'metric response format "bogus" unknown');
});

test('sys/metrics: Vault JSON form through node-vault', async (t) => {
  const { d, root } = await startDevClient(t, 'metrics-json-root');
  await root.read('secret/data/none').catch(() => {});
  await root.write('secret/data/j', { data: { a: 1 } });
  const m = await root.read('sys/metrics');  // node-vault's generic read: the raw body
  assert.match(m.Timestamp, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d0 \+0000 UTC$/);
  for (const k of ['Gauges', 'Points', 'Counters', 'Samples']) assert.ok(Array.isArray(m[k]), k);
  const gauge = m.Gauges.find((g) => g.Name === 'vault.core.unsealed');
  assert.deepEqual(gauge, { Name: 'vault.core.unsealed', Value: 1, Labels: {} });
  const kv = m.Samples.find((s) => s.Name === 'vault.core.handle_request' && s.Labels.route === 'kv' && s.Labels.code === '200');
  assert.ok(kv, 'a sample for the KV write');
  assert.equal(kv.Count, 1);
  for (const k of ['Rate', 'Sum', 'Min', 'Max', 'Mean', 'Stddev']) assert.equal(typeof kv[k], 'number', k);
  assert.ok(kv.Sum > 0 && kv.Min <= kv.Mean && kv.Mean <= kv.Max);
  const codes = m.Counters.find((c) => c.Name === 'vault.core.response_status_code' && c.Labels.code === '404');
  assert.ok(codes && codes.Count >= 1 && codes.Sum === codes.Count);
  assert.equal((await api(d, null, 'GET', 'sys/metrics')).status, 403);
});

test('sys/metrics: the listener telemetry stanza allows unauthenticated access', async (t) => {
  const d = new Daemon();
  t.after(() => d.destroy());
  d.makeToken({
    listenerExtra: '  telemetry {\n    unauthenticated_metrics_access = true\n  }',
    extra: 'telemetry {\n  enable_hostname_label = true\n  prefix_filter = ["-vault.worker"]\n}',
  });
  await d.startConfig();
  // Before sys/init: sealed, and still answered (not audited, no token: as Vault).
  let fams = await families(d, null);
  assert.equal(value(fams, 'vault_core_unsealed', 'vault_core_unsealed'), 0);
  const unsealed = fams.get('vault_core_unsealed').samples[0];
  assert.equal(typeof unsealed.labels.host, 'string');
  assert.ok(unsealed.labels.host.length > 0, 'enable_hostname_label adds host');
  assert.ok(![...fams.keys()].some((n) => n.startsWith('vault_worker')), 'prefix_filter blocks vault.worker');
  const vault = nodeVault({ endpoint: d.addr });
  const init = await vault.request({ path: '/sys/init', method: 'PUT', json: { recovery_shares: 1, recovery_threshold: 1 } });
  fams = await families(d, null);
  assert.equal(value(fams, 'vault_core_unsealed', 'vault_core_unsealed'), 1);
  // A token is not needed, and one that would not pass is not looked at either.
  assert.equal((await scrape(d, 'hvs.bogus')).status, 200);
  const root = nodeVault({ endpoint: d.addr, token: init.root_token });
  assert.ok(Array.isArray((await root.read('sys/metrics')).Gauges));
});

test('sys/metrics: prometheus_retention_time = 0 turns the Prometheus format off', async (t) => {
  const d = new Daemon();
  t.after(() => d.destroy());
  d.makeToken({
    listenerExtra: '  telemetry {\n    unauthenticated_metrics_access = true\n  }',
    extra: 'telemetry {\n  prometheus_retention_time = 0\n}',
  });
  await d.startConfig();
  const off = await scrape(d, null);
  assert.equal(off.status, 400);
  assert.equal(off.text, 'prometheus is not enabled');
  const json = await api(d, null, 'GET', 'sys/metrics');
  assert.equal(json.status, 200);
  assert.ok(json.body.Gauges.some((g) => g.Name === 'vault.core.unsealed' && g.Value === 0));
});
