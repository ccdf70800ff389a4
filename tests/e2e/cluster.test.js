// A Raft cluster of three strongroomd processes (own SoftHSM2 tokens, own data) driven with
// node-vault and raw HTTP: init on one node, the others join (API join and retry_join), every
// node answers clients (standbys forward to the active node), the cluster survives the death
// of its leader, and node-vault's stepDown hands the active role to another node.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const nodeVault = require('node-vault');
const { Daemon, api, portPair } = require('./harness');
const { scrape, families, value } = require('./prometheus');

// The cluster CA in `dir` (packaging/cluster-certs.sh); certsFor(node) issues node `node`'s own
// certificate (naming it and 127.0.0.1), as an operator does for each node.
const certsScript = path.join(__dirname, '..', '..', 'packaging', 'cluster-certs.sh');
function clusterCa(dir) {
  execFileSync(certsScript, ['ca', dir], { stdio: 'ignore' });
  return (node) => {
    execFileSync(certsScript, ['node', dir, node, '127.0.0.1'], { stdio: 'ignore' });
    return { ca: path.join(dir, 'ca.pem'), cert: path.join(dir, `${node}.pem`), key: path.join(dir, `${node}.key`) };
  };
}

async function health(d) {
  try {
    const res = await fetch(`${d.addr}/v1/sys/health`);
    return res.status;
  } catch {
    return 0;
  }
}

test('a three-node cluster serves node-vault clients through any node, survives its leader and steps down', async (t) => {
  const pki = fs.mkdtempSync(path.join(os.tmpdir(), 'strongroom-e2e-pki-'));
  t.after(() => fs.rmSync(pki, { recursive: true, force: true }));
  const certsFor = clusterCa(pki);
  const nodes = [];
  const add = async (node, retryJoin, joinTokenFile, listenerExtra = '') => {
    const apiPort = await portPair();
    const d = new Daemon();
    t.after(() => d.destroy());
    d.makeToken({
      raft: {
        node,
        apiPort,
        clusterPort: apiPort + 1,
        certs: certsFor(node),
        retryJoin,
        joinTokenFile,
      },
      listenerExtra,
    });
    await d.startConfig();
    nodes.push(d);
    return d;
  };

  const n1 = await add('n1');
  const init = await api(n1, null, 'PUT', 'sys/init', { recovery_shares: 1, recovery_threshold: 1 });
  assert.equal(init.status, 200, JSON.stringify(init.body));
  const token = init.body.root_token;
  const v1 = nodeVault({ endpoint: n1.addr, token });
  await v1.mount({ mount_point: 'secret', type: 'kv', options: { version: '2' } });
  await v1.write('secret/data/payments', { data: { api_key: 'pk_live_123' } });

  // A join needs the operator's consent: a one-time credential minted for the node id.
  const mint = async (nodeId) => {
    const r = await api(n1, token, 'POST', 'sys/storage/raft/join-token', { node_id: nodeId });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.data.join_token;
  };
  const n2 = await add('n2');
  const refused = await api(n2, null, 'POST', 'sys/storage/raft/join', { leader_api_addr: n1.addr });
  assert.notEqual(refused.status, 200, JSON.stringify(refused.body));
  const joined = await api(n2, null, 'POST', 'sys/storage/raft/join',
                           { leader_api_addr: n1.addr, join_token: await mint('n2') });
  assert.equal(joined.status, 200, JSON.stringify(joined.body) + n2.log);
  assert.deepEqual(joined.body, { joined: true });
  const n3TokenFile = path.join(os.tmpdir(), `sr-e2e-join-${process.pid}-n3`);
  fs.writeFileSync(n3TokenFile, `${await mint('n3')}\n`, { mode: 0o600 });
  t.after(() => fs.rmSync(n3TokenFile, { force: true }));
  // n3 serves sys/metrics without a token (its listener's telemetry stanza).
  const n3 = await add('n3', n1.addr, n3TokenFile,
                       '  telemetry {\n    unauthenticated_metrics_access = true\n  }');
  const deadline = Date.now() + 60000;
  while ((await health(n3)) !== 429) {
    assert.ok(Date.now() < deadline, `n3 never became a standby:\n${n3.log}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  // node-vault against the standbys: reads and writes reach the active node.
  const v2 = nodeVault({ endpoint: n2.addr, token });
  const v3 = nodeVault({ endpoint: n3.addr, token });
  const read = await v2.read('secret/data/payments');
  assert.equal(read.data.data.api_key, 'pk_live_123');
  await v3.write('secret/data/agents', { data: { tenant: 'acme' } });
  assert.equal((await v1.read('secret/data/agents')).data.data.tenant, 'acme');
  const leader = await v2.leader();
  assert.equal(leader.ha_enabled, true);
  assert.equal(leader.is_self, false);
  assert.equal(leader.leader_address, n1.addr);
  const standby = await v2.health({ standbyok: true });
  assert.equal(standby.standby, true);
  const config = await v1.request({ path: '/sys/storage/raft/configuration', method: 'GET' });
  assert.deepEqual(config.data.config.servers.map((s) => s.node_id).sort(), ['n1', 'n2', 'n3']);

  // sys/metrics (parsed by prometheus_client): the leader's Raft view of its followers; with a
  // token a standby answers with the active node's metrics (the request goes there, as in
  // Vault); n3's unauthenticated listener answers with its own.
  const leaderMetrics = await families(n1, token);
  const gauge = (fams, name) => value(fams, name, name);
  assert.ok(gauge(leaderMetrics, 'vault_raft_storage_stats_term') >= 1);
  assert.equal(gauge(leaderMetrics, 'vault_raft_peers'), 3);
  assert.ok(gauge(leaderMetrics, 'vault_raft_storage_stats_applied_index') > 0);
  assert.ok(gauge(leaderMetrics, 'vault_raft_storage_stats_commit_index') >=
            gauge(leaderMetrics, 'vault_raft_storage_stats_applied_index') - 1);
  const contacts = leaderMetrics.get('vault_raft_storage_follower_last_heartbeat_ms').samples;
  assert.deepEqual(contacts.map((s) => s.labels.peer_id).sort(), ['n2', 'n3']);
  assert.equal(gauge(leaderMetrics, 'vault_core_active'), 1);
  const viaStandby = await families(n2, token);
  assert.equal(gauge(viaStandby, 'vault_core_active'), 1);
  assert.ok(viaStandby.has('vault_raft_storage_follower_last_heartbeat_ms'));
  assert.equal((await scrape(n2, null)).status, 403);
  const own = await families(n3, null);
  assert.equal(gauge(own, 'vault_core_active'), 0);
  assert.equal(gauge(own, 'vault_core_unsealed'), 1);
  assert.ok(gauge(own, 'vault_raft_storage_stats_term') >= 1);
  assert.ok(!own.has('vault_raft_storage_follower_last_heartbeat_ms'), 'only the leader reports followers');

  // The leader dies; a standby becomes active and node-vault carries on.
  await n1.kill();
  let active;
  const failover = Date.now() + 60000;
  for (;;) {
    for (const d of [n2, n3]) if ((await health(d)) === 200) active = d;
    if (active) break;
    assert.ok(Date.now() < failover, `no new leader:\n${n2.log}\n${n3.log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const va = nodeVault({ endpoint: active.addr, token });
  assert.equal((await va.read('secret/data/payments')).data.data.api_key, 'pk_live_123');
  await va.write('secret/data/after', { data: { ok: 'yes' } });
  const other = active === n2 ? v3 : v2;
  assert.equal((await other.read('secret/data/after')).data.data.ok, 'yes');

  // node-vault's stepDown (PUT sys/step-down) on the active node: the other live node takes
  // over, and the one that stepped down stays unsealed, as a standby that forwards.
  const next = active === n2 ? n3 : n2;
  await va.stepDown();
  const handover = Date.now() + 60000;
  while ((await health(next)) !== 200 || (await health(active)) !== 429) {
    assert.ok(Date.now() < handover, `no node took over after the step-down:\n${active.log}\n${next.log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal((await va.status()).sealed, false);
  await va.write('secret/data/after-step-down', { data: { ok: 'yes' } });
  assert.equal((await other.read('secret/data/after-step-down')).data.data.ok, 'yes');
  assert.equal((await va.leader()).leader_address, next.addr);
});
