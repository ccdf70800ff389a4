// End-to-end: file audit devices — the Vault API driven by node-vault and plain HTTP, and the
// hash-chained, HSM-signed log they write checked by the offline verifier (strongroom-audit).
// Vault API sections: sys/audit, sys/audit-hash; strongroom's sys/audit/public-key and
// sys/audit/checkpoint/:path; docs/audit-verification.md for the verifier.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const nodeVault = require('node-vault');
const { Daemon, waitDevReady, api } = require('./harness');

const BIN = process.env.STRONGROOM_BIN || path.resolve(__dirname, '../../build/appliance');
const AUDIT_BIN = process.env.STRONGROOM_AUDIT_BIN || path.resolve(BIN, '../audit/strongroom-audit');

const random = (prefix) => `${prefix}${crypto.randomBytes(12).toString('hex')}`;
const HMAC = /^hmac-sha256:[0-9a-f]{64}$/;

// strongroom-audit <args>: exit status, stdout, stderr and (with --json) the parsed report.
function auditTool(args) {
  const r = spawnSync(AUDIT_BIN, args, { encoding: 'utf8' });
  if (r.error) throw r.error;
  let report = null;
  if (args.includes('--json')) {
    try { report = JSON.parse(r.stdout); } catch { /* not JSON: left null, the status tells */ }
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, report };
}

function readLines(file) {
  const text = fs.readFileSync(file, 'utf8');
  assert.ok(text.endsWith('\n'), 'the audit file ends with a newline');
  return text.slice(0, -1).split('\n');
}

test('node-vault: audit devices round trip; the log hides secrets and verifies offline', async (t) => {
  const d = new Daemon();
  t.after(() => d.destroy());
  const rootToken = random('root-');
  await d.startDev(rootToken);
  const vault = nodeVault({ endpoint: d.addr, token: rootToken });
  await waitDevReady(vault);
  const logFile = path.join(d.dir, 'audit.log');
  const spareFile = path.join(d.dir, 'spare.log');

  // enableAudit sends its whole argument as the body ({name, type, options}), as Vault accepts.
  await vault.enableAudit({ name: 'file', type: 'file', description: 'e2e', options: { file_path: logFile } });
  await vault.enableAudit({ name: 'spare', type: 'file', options: { file_path: spareFile, hmac_accessor: 'true' } });
  let audits = await vault.audits();
  assert.deepEqual(Object.keys(audits.data).sort(), ['file/', 'spare/']);
  assert.equal(audits.data['file/'].type, 'file');
  assert.equal(audits.data['file/'].description, 'e2e');
  assert.equal(audits.data['file/'].path, 'file/');
  assert.equal(audits.data['file/'].local, false);
  assert.deepEqual(audits.data['file/'].options, { file_path: logFile });
  assert.deepEqual(audits['file/'], audits.data['file/']);  // the top-level copy, as Vault
  await vault.disableAudit({ name: 'spare' });
  audits = await vault.audits();
  assert.deepEqual(Object.keys(audits.data), ['file/']);

  // Disabling ends the device's file with a checkpoint: a closed, fully signed log.
  const pub = await vault.read('sys/audit/public-key');
  assert.equal(pub.data.algorithm, 'ecdsa-p256');
  assert.match(pub.data.public_key, /^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n?$/);
  const pemFile = path.join(d.dir, 'audit.pem');
  fs.writeFileSync(pemFile, pub.data.public_key);
  const spare = auditTool(['verify', '--pubkey', pemFile, '--require-signed-tail', spareFile]);
  assert.equal(spare.status, 0, spare.stdout + spare.stderr);

  // node-vault 0.12.0 has no audit-hash command; its generic write is how a client calls it.
  const secretA = random('pw-');
  const secretB = random('key-');
  const secretC = random('pw2-');
  const hashed = await vault.write('sys/audit-hash/file', { input: secretA });
  assert.match(hashed.hash, HMAC);
  assert.equal(hashed.data.hash, hashed.hash);
  assert.equal((await vault.write('sys/audit-hash/file', { input: secretA })).hash, hashed.hash);
  assert.notEqual((await vault.write('sys/audit-hash/file', { input: secretB })).hash, hashed.hash);
  const rootDigest = (await vault.write('sys/audit-hash/file', { input: rootToken })).hash;

  await vault.write('secret/data/app/db', { data: { password: secretA, nested: { api_key: secretB } } });
  await vault.write('secret/data/app/db', { data: { password: secretC } });
  const v1 = await vault.read('secret/data/app/db?version=1');
  assert.deepEqual(v1.data.data, { password: secretA, nested: { api_key: secretB } });
  assert.equal((await vault.read('secret/data/app/db')).data.data.password, secretC);

  assert.equal(await d.stop(), 0);

  const text = fs.readFileSync(logFile, 'utf8');
  for (const clear of [secretA, secretB, secretC, rootToken]) {
    assert.ok(!text.includes(clear), `the audit log holds ${clear} in the clear`);
  }
  const records = readLines(logFile).map((line) => JSON.parse(line));
  records.forEach((r, i) => assert.equal(r.seq, i + 1));
  assert.equal(records[0].type, 'checkpoint');
  assert.equal(records[0].prev_hash, '0'.repeat(64));
  assert.equal(records[records.length - 1].type, 'checkpoint', 'clean shutdown ends the log with a checkpoint');

  // The KV write is there, its secret as the digest sys/audit-hash gave, its token digested too.
  const write = records.find((r) => r.type === 'request' && r.request.path === 'secret/data/app/db'
                                    && r.request.data && r.request.data.data.nested);
  assert.ok(write, 'the first KV write has a request record');
  assert.equal(write.request.data.data.password, hashed.hash);
  assert.match(write.request.data.data.nested.api_key, HMAC);
  assert.equal(write.request.client_token, rootDigest);
  assert.equal(write.auth.client_token, rootDigest);
  assert.match(write.auth.accessor, HMAC);
  const read = records.find((r) => r.type === 'response' && r.request.path === 'secret/data/app/db'
                                   && r.request.operation === 'read' && r.response.data
                                   && r.response.data.data.nested);
  assert.ok(read, 'the version 1 read has a response record');
  assert.equal(read.response.data.data.password, hashed.hash);
  assert.ok(text.includes(hashed.hash));

  const ok = auditTool(['verify', '--pubkey', pemFile, '--json', logFile]);
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  assert.equal(ok.report.ok, true);
  assert.equal(ok.report.break, null);
  assert.equal(ok.report.lines, records.length);
  assert.equal(ok.report.unsigned_lines, 0);
  assert.match(ok.report.origin, /^strongroom-audit\/file\//);
  assert.equal(auditTool(['verify', '--pubkey', pemFile, '--require-signed-tail', logFile]).status, 0);
});

test('bad audit requests are refused with Vault errors; enabling needs sudo', async (t) => {
  const d = new Daemon();
  t.after(() => d.destroy());
  const ROOT = 'audit-e2e-root';
  await d.startDev(ROOT);
  await waitDevReady(nodeVault({ endpoint: d.addr, token: ROOT }));
  const file = (name) => path.join(d.dir, name);
  const enable = (name, body, token = ROOT) => api(d, token, 'PUT', `sys/audit/${name}`, body);
  const refused = async (res, pattern) => {
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.match(res.body.errors[0], pattern);
  };

  await refused(await enable('a', { type: 'file', options: { file_path: file('a.log'), log_raw: 'true' } }),
                /log_raw is not supported/);
  await refused(await enable('a', { type: 'file', options: { file_path: file('a.log'), log_raw: true } }),
                /log_raw is not supported/);
  await refused(await enable('a', { type: 'file', options: { file_path: file('a.log'), prefix: 'x' } }),
                /prefix is not supported/);
  await refused(await enable('a', { type: 'file', options: { file_path: 'audit.log' } }),
                /file_path must be an absolute path/);
  await refused(await enable('a', { type: 'file', options: { file_path: 'stdout' } }),
                /file_path must be an absolute path/);
  await refused(await enable('a', { type: 'file', options: { file_path: file('a.log'), bogus: '1' } }),
                /unknown audit option "bogus"/);
  await refused(await enable('a', { type: 'syslog', options: {} }), /audit device type "syslog" is not supported/);
  await refused(await enable('a/b', { type: 'file', options: { file_path: file('ab.log') } }),
                /audit device path must be one segment/);
  const used = file('used.log');
  fs.writeFileSync(used, 'not an audit log\n', { mode: 0o600 });  // a mode the device accepts
  await refused(await enable('used', { type: 'file', options: { file_path: used } }),
                /is not empty; a new audit device starts a new hash chain/);
  assert.equal(fs.readFileSync(used, 'utf8'), 'not an audit log\n');
  assert.ok(!fs.existsSync(file('a.log')), 'a refused device creates no file');
  assert.ok(!fs.existsSync(file('ab.log')));
  const none = await api(d, ROOT, 'GET', 'sys/audit');
  assert.equal(none.status, 200);
  assert.deepEqual(none.body.data, {});

  const logFile = file('audit.log');
  assert.equal((await enable('file', { type: 'file', options: { file_path: logFile } })).status, 204);
  await refused(await enable('again', { type: 'file', options: { file_path: logFile } }), /file_path|not empty/);
  await refused(await api(d, ROOT, 'PUT', 'sys/audit-hash/file', { input: '' }), /^the "input" parameter is empty$/);
  await refused(await api(d, ROOT, 'PUT', 'sys/audit-hash/file', {}), /^the "input" parameter is empty$/);
  const h = await api(d, ROOT, 'PUT', 'sys/audit-hash/file', { input: 'x' });
  assert.equal(h.status, 200);
  assert.match(h.body.hash, HMAC);
  assert.equal(h.body.data.hash, h.body.hash);

  // sys/audit/* is root-protected: update and delete are not enough, sudo is needed on top.
  const policy = (name, rules) => api(d, ROOT, 'PUT', `sys/policies/acl/${name}`, { policy: rules });
  assert.equal((await policy('audit-nosudo', 'path "sys/audit/*" { capabilities = ["update", "delete"] }')).status, 204);
  assert.equal((await policy('audit-sudo', 'path "sys/audit/*" { capabilities = ["update", "delete", "sudo"] }')).status, 204);
  assert.equal((await policy('auditor', `
path "sys/audit/public-key" { capabilities = ["read"] }
path "sys/audit/checkpoint/*" { capabilities = ["read"] }
`)).status, 204);
  const tokenFor = async (p) => {
    const res = await api(d, ROOT, 'POST', 'auth/token/create', { policies: [p] });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.auth.client_token;
  };
  const noSudo = await tokenFor('audit-nosudo');
  const denied = await enable('second', { type: 'file', options: { file_path: file('second.log') } }, noSudo);
  assert.equal(denied.status, 403, JSON.stringify(denied.body));
  // Vault's own text for an ACL denial: "1 error occurred:\n\t* permission denied\n\n".
  assert.match(denied.body.errors[0], /permission denied/);
  assert.equal((await api(d, noSudo, 'DELETE', 'sys/audit/file')).status, 403);
  assert.ok(!fs.existsSync(file('second.log')));
  const withSudo = await tokenFor('audit-sudo');
  assert.equal((await enable('second', { type: 'file', options: { file_path: file('second.log') } }, withSudo)).status, 204);
  assert.equal((await api(d, withSudo, 'DELETE', 'sys/audit/second')).status, 204);

  // An auditor reads the public key and checkpoints without sudo, and nothing else.
  const auditor = await tokenFor('auditor');
  const pub = await api(d, auditor, 'GET', 'sys/audit/public-key');
  assert.equal(pub.status, 200);
  assert.equal(pub.body.data.algorithm, 'ecdsa-p256');
  const cp = await api(d, auditor, 'GET', 'sys/audit/checkpoint/file');
  assert.equal(cp.status, 200);
  assert.match(cp.body.data.checkpoint, /^strongroom-audit\/file\//);
  assert.equal((await api(d, auditor, 'GET', 'sys/audit')).status, 403);
  assert.equal((await api(d, auditor, 'PUT', 'sys/audit-hash/file', { input: 'x' })).status, 403);

  // The refused enable is itself in the log, with its error and without the token in clear.
  assert.equal(await d.stop(), 0);
  const text = fs.readFileSync(logFile, 'utf8');
  assert.ok(!text.includes(noSudo) && !text.includes(withSudo) && !text.includes(auditor) && !text.includes(ROOT));
  const records = readLines(logFile).map((line) => JSON.parse(line));
  // As in Vault, a denied request leaves a request record carrying the error (and no response).
  const deniedRecords = records.filter((r) => (r.type === 'request' || r.type === 'response') && r.request.path === 'sys/audit/second'
                                              && r.auth.policies.includes('audit-nosudo'));
  assert.equal(deniedRecords.length, 1, 'the denied enable is audited once');
  assert.equal(deniedRecords[0].type, 'request');
  assert.match(deniedRecords[0].error, /permission denied/);
  assert.match(deniedRecords[0].auth.client_token, HMAC);
});

test('a checkpoint fetched from the live daemon catches a truncated log', async (t) => {
  const d = new Daemon();
  t.after(() => d.destroy());
  const ROOT = 'audit-cp-root';
  await d.startDev(ROOT);
  const vault = nodeVault({ endpoint: d.addr, token: ROOT });
  await waitDevReady(vault);
  const logFile = path.join(d.dir, 'audit.log');
  // No checkpoints of their own in between: only the fetched one, the first and the last.
  await vault.enableAudit({
    name: 'file', type: 'file',
    options: { file_path: logFile, checkpoint_entries: '100000', checkpoint_interval: '1h' },
  });
  const pemFile = path.join(d.dir, 'audit.pem');
  fs.writeFileSync(pemFile, (await vault.read('sys/audit/public-key')).data.public_key);
  for (let i = 0; i < 3; i += 1) await vault.write(`secret/data/before/${i}`, { data: { i } });

  const fetched = await api(d, ROOT, 'GET', 'sys/audit/checkpoint/file');
  assert.equal(fetched.status, 200);
  const note = fetched.body.data.checkpoint;
  const m = /^(strongroom-audit\/file\/[A-Za-z0-9._-]+)\n(\d+)\n[A-Za-z0-9+/]{43}=\nhead (\d+) [0-9a-f]{64}\ntime \S+\n\n— \1 \S+\n$/
    .exec(note);
  assert.ok(m, `a signed checkpoint note: ${note}`);
  const treeSize = Number(m[2]);
  const headSeq = Number(m[3]);
  assert.ok(treeSize >= 7, `the checkpoint covers the requests so far (${treeSize})`);
  const cpFile = path.join(d.dir, 'checkpoint.txt');
  fs.writeFileSync(cpFile, note);

  for (let i = 0; i < 3; i += 1) await vault.write(`secret/data/after/${i}`, { data: { i } });
  assert.equal(await d.stop(), 0);

  const lines = readLines(logFile);
  const cpLine = JSON.parse(lines[headSeq]);  // the line after the head, seq headSeq + 1
  assert.equal(cpLine.type, 'checkpoint');
  assert.equal(cpLine.checkpoint, note, 'the fetched note is the one written to the log');
  assert.ok(lines.length > headSeq + 2);

  const full = auditTool(['verify', '--pubkey', pemFile, '--checkpoint', cpFile, '--json', logFile]);
  assert.equal(full.status, 0, full.stdout + full.stderr);
  assert.equal(full.report.ok, true);
  assert.equal(full.report.trusted_checkpoint_matched, true);
  assert.equal(full.report.checkpoints, 3);

  // Cut back to the first two lines: alone this looks like an older, shorter log and passes,
  // but it does not contain what the trusted checkpoint covers.
  const cut = path.join(d.dir, 'cut.log');
  fs.writeFileSync(cut, `${lines.slice(0, 2).join('\n')}\n`);
  assert.equal(auditTool(['verify', '--pubkey', pemFile, cut]).status, 0);
  const caught = auditTool(['verify', '--pubkey', pemFile, '--checkpoint', cpFile, '--json', cut]);
  assert.equal(caught.status, 1, caught.stdout + caught.stderr);
  assert.equal(caught.report.ok, false);
  assert.equal(caught.report.break.kind, 'tamper');

  // The boundary is exact: a log ending at the checkpoint's head line holds everything it
  // covers and passes; one line shorter fails.
  const atHead = path.join(d.dir, 'at-head.log');
  fs.writeFileSync(atHead, `${lines.slice(0, headSeq).join('\n')}\n`);
  const boundary = auditTool(['verify', '--pubkey', pemFile, '--checkpoint', cpFile, '--json', atHead]);
  assert.equal(boundary.status, 0, boundary.stdout + boundary.stderr);
  assert.equal(boundary.report.trusted_checkpoint_matched, true);
  const short = path.join(d.dir, 'short.log');
  fs.writeFileSync(short, `${lines.slice(0, headSeq - 1).join('\n')}\n`);
  assert.equal(auditTool(['verify', '--pubkey', pemFile, short]).status, 0);
  assert.equal(auditTool(['verify', '--pubkey', pemFile, '--checkpoint', cpFile, short]).status, 1);

  // An edited entry breaks the chain, checkpoint or not.
  const edited = path.join(d.dir, 'edited.log');
  const target = lines.findIndex((l) => l.includes('"path":"secret/data/after/1"'));
  assert.ok(target > 0);
  const copy = lines.slice();
  copy[target] = copy[target].replace('secret/data/after/1', 'secret/data/after/9');
  fs.writeFileSync(edited, `${copy.join('\n')}\n`);
  const tampered = auditTool(['verify', '--pubkey', pemFile, '--json', edited]);
  assert.equal(tampered.status, 1, tampered.stdout + tampered.stderr);
  assert.equal(tampered.report.break.line, target + 1);
});
