// End-to-end: the `strongroom` CLI's admin and operator commands (secrets, auth, policy, audit,
// operator ...) against real appliances: a dev server, a fresh server that `operator init`
// initialises, and a two-node Raft cluster. Output is compared with golden files in
// golden/cli/ (volatile values — accessors, uuids, ports — normalised to placeholders of the
// same width, so column layout is still checked); exit codes are vault's: 0, 1 for local errors
// (bad flags, usage, unreadable files), 2 for the server's errors.
// UPDATE_GOLDEN=1 rewrites the golden files.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Daemon, startDevClient, api, portPair, CLI } = require('./harness');

const ROOT = 'cli-admin-e2e-root';
const GOLDEN = path.join(__dirname, 'golden', 'cli');

function tmpdir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strongroom-cli-admin-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// Runs the CLI with only the environment given (no VAULT_FORMAT or token helper of the user).
function makeCli(addr, token, home) {
  return (args, { env = {}, input } = {}) => {
    const r = spawnSync(CLI, args, {
      env: { PATH: process.env.PATH, HOME: home, VAULT_ADDR: addr, ...(token ? { VAULT_TOKEN: token } : {}), ...env },
      input, encoding: 'utf8', timeout: 60000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
}

function normalise(text) {
  return text
    .replace(/\b([a-z_]+)_[0-9a-f]{8}\b/g, '$1_00000000')
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '00000000-0000-0000-0000-000000000000')
    .replace(/127\.0\.0\.1:\d{5}\b/g, '127.0.0.1:PPPPP');
}

function golden(name, actual) {
  const file = path.join(GOLDEN, name);
  const text = normalise(actual);
  if (process.env.UPDATE_GOLDEN) {
    fs.mkdirSync(GOLDEN, { recursive: true });
    fs.writeFileSync(file, text);
    return;
  }
  assert.equal(text, fs.readFileSync(file, 'utf8'), `golden ${name}`);
}

function ok(r, what) {
  assert.equal(r.code, 0, `${what}: ${r.stderr}${r.stdout}`);
  return r;
}

function fails(r, code, pattern, what) {
  assert.equal(r.code, code, `${what}: expected exit ${code}, got ${r.code}: ${r.stderr}${r.stdout}`);
  if (pattern) assert.match(r.stderr, pattern, what);
  return r;
}

test('cli: secrets enable|list|tune|move|disable', async (t) => {
  const { d } = await startDevClient(t, ROOT);
  const cli = makeCli(d.addr, ROOT, tmpdir(t));

  const en = ok(cli(['secrets', 'enable', '-path=team-kv', '-version=2', '-description=team secrets',
    '-default-lease-ttl=30m', '-max-lease-ttl=2h', 'kv']), 'enable');
  assert.equal(en.stdout, 'Success! Enabled the kv secrets engine at: team-kv/\n');
  ok(cli(['secrets', 'enable', '-options=version=1', 'kv']), 'enable at the type name');
  const mounts = (await api(d, ROOT, 'GET', 'sys/mounts')).body.data;
  assert.equal(mounts['team-kv/'].type, 'kv');
  assert.deepEqual(mounts['team-kv/'].options, { version: '2' });
  assert.equal(mounts['team-kv/'].config.default_lease_ttl, 1800);
  assert.equal(mounts['team-kv/'].config.max_lease_ttl, 7200);
  assert.deepEqual(mounts['kv/'].options, { version: '1' });
  // kv-v2 is vault's alias for kv with version 2.
  ok(cli(['secrets', 'enable', '-path=v2', 'kv-v2']), 'kv-v2');
  assert.deepEqual((await api(d, ROOT, 'GET', 'sys/mounts')).body.data['v2/'].options, { version: '2' });

  golden('secrets_list.txt', ok(cli(['secrets', 'list']), 'list').stdout);
  golden('secrets_list_detailed.txt', ok(cli(['secrets', 'list', '-detailed']), 'list -detailed').stdout);
  const json = ok(cli(['secrets', 'list', '-format=json']), 'list json').stdout;
  assert.deepEqual(Object.keys(JSON.parse(json)).sort(), ['cubbyhole/', 'identity/', 'kv/', 'secret/', 'sys/', 'team-kv/', 'v2/']);
  golden('secrets_list.json', json);
  assert.equal(JSON.parse(ok(cli(['secrets', 'list'], { env: { VAULT_FORMAT: 'json' } }), 'VAULT_FORMAT').stdout)['team-kv/'].type, 'kv');

  const tune = ok(cli(['secrets', 'tune', '-default-lease-ttl=1h', '-description=retuned', 'team-kv']), 'tune');
  assert.equal(tune.stdout, 'Success! Tuned the secrets engine at: team-kv/\n');
  const tuned = (await api(d, ROOT, 'GET', 'sys/mounts/team-kv/tune')).body.data;
  assert.equal(tuned.default_lease_ttl, 3600);
  assert.equal(tuned.max_lease_ttl, 7200, 'a tune changes only what it names');
  assert.equal(tuned.description, 'retuned');
  fails(cli(['secrets', 'tune', '-default-lease-ttl=3h', 'team-kv']), 2, /Error tuning secrets engine team-kv\/: .*Code: 400/s, 'default above max');
  fails(cli(['secrets', 'tune', '-max-lease-ttl=1h', 'nope']), 2, /Error tuning secrets engine nope\//, 'tune a missing mount');

  // sys/remount: the engine and its data move; the old path is gone.
  ok(cli(['kv', 'put', 'team-kv/app', 'k=v']), 'a secret to move');
  const moved = ok(cli(['secrets', 'move', 'team-kv', 'other-kv']), 'move').stdout;
  assert.match(moved, /^Started moving secrets engine team-kv\/ to other-kv\/, with migration ID [0-9a-f-]{36}\nSuccess! Finished moving secrets engine team-kv\/ to other-kv\/, with migration ID [0-9a-f-]{36}\n$/);
  assert.equal(ok(cli(['kv', 'get', '-field=k', 'other-kv/app']), 'moved data').stdout, 'v');
  const after = (await api(d, ROOT, 'GET', 'sys/mounts')).body.data;
  assert.equal(after['team-kv/'], undefined);
  assert.equal(after['other-kv/'].description, 'retuned', 'the entry moves whole');
  fails(cli(['secrets', 'move', 'other-kv', 'secret']), 2, /path already in use at secret\//, 'move onto a mount');
  fails(cli(['secrets', 'move', 'other-kv', 'sys/x']), 2, /cannot mount at reserved path "sys\/"/, 'move into sys/');
  fails(cli(['secrets', 'move', 'nope', 'elsewhere']), 2, /no matching mount at "nope\/"/, 'move a missing mount');
  fails(cli(['secrets', 'move', 'auth/token', 'tok']), 2, /moving auth methods is not supported/, 'move an auth method');
  fails(cli(['secrets', 'move', 'other-kv', 'a/./b']), 2, /invalid mount path "a\/\.\/b\/"/, 'a dot segment');

  const dis = ok(cli(['secrets', 'disable', 'other-kv/']), 'disable');
  assert.equal(dis.stdout, 'Success! Disabled the secrets engine (if it existed) at: other-kv/\n');
  assert.equal((await api(d, ROOT, 'GET', 'sys/mounts')).body.data['other-kv/'], undefined);

  // Usage and server errors.
  fails(cli(['secrets', 'enable']), 1, /^Not enough arguments \(expected 1, got 0\)/, 'no type');
  fails(cli(['secrets', 'enable', 'kv', 'extra']), 1, /^Too many arguments \(expected 1, got 2\)/, 'two types');
  fails(cli(['secrets', 'enable', '-nope', 'kv']), 1, /^flag provided but not defined: -nope/, 'bad flag');
  fails(cli(['secrets', 'enable', '-default-lease-ttl=soon', 'kv']), 1, /invalid value "soon" for flag -default-lease-ttl/, 'bad duration');
  fails(cli(['secrets', 'enable', '-version=x', 'kv']), 1, /invalid value "x" for flag -version/, 'bad int');
  fails(cli(['secrets', 'enable', '-path=secret', 'kv']), 2, /^Error enabling: Error making API request\./, 'path in use');
  fails(cli(['secrets', 'list', 'extra']), 1, /^Too many arguments/, 'list args');
  fails(cli(['secrets', 'list', '-format=xml']), 1, /Invalid output format/, 'bad format');
  fails(cli(['secrets', 'disable']), 1, /^Not enough arguments/, 'disable no path');
  fails(cli(['secrets', 'move', 'a']), 1, /^Not enough arguments \(expected 2, got 1\)/, 'move one arg');
  fails(cli(['secrets', 'list'], { env: { VAULT_TOKEN: 'hvs.bogus' } }), 2, /^Error listing secrets engines: .*Code: 403/s, 'bad token');
  fails(cli(['secrets', 'enable', 'kv'], { env: { VAULT_TOKEN: 'hvs.bogus' } }), 2, /permission denied/, 'bad token enable');
  // A group name alone prints its subcommands (exit 1).
  const group = fails(cli(['secrets']), 1, /Usage: strongroom secrets <subcommand>/, 'group');
  for (const sub of ['enable', 'disable', 'list', 'tune', 'move']) assert.match(group.stderr, new RegExp(`\\n    ${sub} `));
  assert.match(ok(cli(['secrets', 'enable', '-help']), 'help').stdout,
               /^Usage: strongroom secrets enable \[options\] TYPE\n\nHTTP options/);

  // -output-curl-string: nothing is sent; the printed command does the same request.
  const curl = ok(cli(['secrets', 'list', '-output-curl-string']), 'curl').stdout.trim();
  assert.match(curl, /^curl .*\/v1\/sys\/mounts$/);
  const viaCurl = JSON.parse(execFileSync('bash', ['-c', curl], {
    env: { PATH: `${path.dirname(CLI)}:${process.env.PATH}`, HOME: os.tmpdir(), VAULT_TOKEN: ROOT },
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'],
  }));
  assert.equal(viaCurl.data['kv/'].type, 'kv');
  const curlEnable = ok(cli(['secrets', 'enable', '-path=never', '-output-curl-string', 'kv']), 'curl enable').stdout;
  assert.match(curlEnable, /^curl -X POST .*-d '\{.*"type":"kv".*\}' .*\/v1\/sys\/mounts\/never\n$/);
  assert.equal((await api(d, ROOT, 'GET', 'sys/mounts')).body.data['never/'], undefined, 'not sent');
});

test('cli: auth enable|list|tune|disable', async (t) => {
  const { d } = await startDevClient(t, ROOT);
  const cli = makeCli(d.addr, ROOT, tmpdir(t));

  const en = ok(cli(['auth', 'enable', '-path=apps', '-description=machine logins', 'approle']), 'enable');
  assert.equal(en.stdout, 'Success! Enabled approle auth method at: apps/\n');
  ok(cli(['auth', 'enable', 'kubernetes']), 'enable kubernetes');
  const auths = (await api(d, ROOT, 'GET', 'sys/auth')).body.data;
  assert.equal(auths['apps/'].type, 'approle');
  assert.equal(auths['apps/'].description, 'machine logins');

  golden('auth_list.txt', ok(cli(['auth', 'list']), 'list').stdout);
  golden('auth_list_detailed.txt', ok(cli(['auth', 'list', '-detailed']), 'list -detailed').stdout);
  const json = ok(cli(['auth', 'list', '-format=json']), 'list json').stdout;
  assert.deepEqual(Object.keys(JSON.parse(json)).sort(), ['apps/', 'kubernetes/', 'token/']);
  golden('auth_list.json', json);
  const yaml = ok(cli(['auth', 'list', '-format=yaml']), 'list yaml').stdout;
  assert.match(yaml, /^apps\/:\n  accessor: auth_approle_[0-9a-f]{8}\n/);

  const tune = ok(cli(['auth', 'tune', '-default-lease-ttl=20m', '-max-lease-ttl=1h', 'apps']), 'tune');
  assert.equal(tune.stdout, 'Success! Tuned the auth method at: apps/\n');
  const tuned = (await api(d, ROOT, 'GET', 'sys/auth/apps/tune')).body.data;
  assert.equal(tuned.default_lease_ttl, 1200);
  assert.equal(tuned.max_lease_ttl, 3600);
  const detailed = ok(cli(['auth', 'list', '-detailed']), 'detailed after tune').stdout;
  assert.match(detailed, /\napps\/\s+approle\s+auth_approle_[0-9a-f]{8}\s+n\/a\s+1200\s+3600\s+replicated\s+false\s+map\[\]\s+machine logins\n/);

  const dis = ok(cli(['auth', 'disable', 'apps']), 'disable');
  assert.equal(dis.stdout, 'Success! Disabled the auth method (if it existed) at: apps/\n');
  assert.equal((await api(d, ROOT, 'GET', 'sys/auth')).body.data['apps/'], undefined);

  fails(cli(['auth', 'enable', 'token']), 2, /^Error enabling token auth: .*token credential backend cannot be instantiated/s, 'token');
  fails(cli(['auth', 'disable', 'token']), 2, /^Error disabling auth method at token\/: .*cannot be disabled/s, 'disable token');
  fails(cli(['auth', 'enable']), 1, /^Not enough arguments/, 'no type');
  fails(cli(['auth', 'enable', '-local=maybe', 'approle']), 1, /invalid value "maybe" for flag -local/, 'bad bool');
  fails(cli(['auth', 'list', '-nope']), 1, /flag provided but not defined: -nope/, 'bad flag');
  fails(cli(['auth', 'tune', 'a', 'b']), 1, /^Too many arguments \(expected 1, got 2\)/, 'tune args');
  fails(cli(['auth', 'tune', '-max-lease-ttl=1h', 'nope']), 2, /^Error tuning auth method nope\//, 'tune missing');
  fails(cli(['auth', 'list'], { env: { VAULT_TOKEN: 'hvs.bogus' } }), 2, /^Error listing enabled authentications: /, 'bad token');
});

test('cli: policy write|list|read|delete|fmt', async (t) => {
  const { d } = await startDevClient(t, ROOT);
  const dir = tmpdir(t);
  const cli = makeCli(d.addr, ROOT, dir);
  const text = 'path "secret/data/app/*" {\n  capabilities = ["read", "list"]\n}\n';
  const file = path.join(dir, 'app.hcl');
  fs.writeFileSync(file, text);

  assert.equal(ok(cli(['policy', 'write', 'app-read', file]), 'write').stdout, 'Success! Uploaded policy: app-read\n');
  assert.equal(ok(cli(['policy', 'write', 'from-stdin', '-'], { input: 'path "x/*" { capabilities = ["deny"] }\n' }), 'stdin').stdout,
    'Success! Uploaded policy: from-stdin\n');
  assert.equal((await api(d, ROOT, 'GET', 'sys/policies/acl/app-read')).body.data.policy, text, 'stored verbatim');

  golden('policy_list.txt', ok(cli(['policy', 'list']), 'list').stdout);
  assert.deepEqual(JSON.parse(ok(cli(['policy', 'list', '-format=json']), 'list json').stdout),
    ['app-read', 'default', 'from-stdin', 'root']);
  assert.equal(ok(cli(['policy', 'read', 'app-read']), 'read').stdout, text);
  assert.deepEqual(JSON.parse(ok(cli(['policy', 'read', '-format=json', 'app-read']), 'read json').stdout), { policy: text });
  fails(cli(['policy', 'read', 'missing']), 2, /^No policy named: missing\n$/, 'read missing');
  fails(cli(['policy', 'read', 'root']), 2, /^Error reading policy named root: .*cannot read "root" policy/s, 'read root');

  // The server's checks, the file's.
  fs.writeFileSync(path.join(dir, 'bad.hcl'), 'path "a" { capabilities = ["reed"] }\n');
  fails(cli(['policy', 'write', 'bad', path.join(dir, 'bad.hcl')]), 2, /^Error uploading policy: .*Code: 400/s, 'bad policy');
  fails(cli(['policy', 'write', 'x', path.join(dir, 'absent.hcl')]), 1, /^Error opening policy file: error reading .*absent\.hcl: No such file/, 'no file');
  fails(cli(['policy', 'write', 'x']), 1, /^Not enough arguments \(expected 2, got 1\)/, 'write args');
  fails(cli(['policy', 'write', '-force', 'x', file]), 1, /flag provided but not defined: -force/, 'bad flag');

  assert.equal(ok(cli(['policy', 'delete', 'app-read']), 'delete').stdout, 'Success! Deleted policy: app-read\n');
  assert.equal((await api(d, ROOT, 'GET', 'sys/policies/acl/app-read')).status, 404);
  fails(cli(['policy', 'delete', 'root']), 2, /^Error deleting root: /, 'delete root');
  fails(cli(['policy', 'delete']), 1, /^Not enough arguments/, 'delete args');

  // fmt: in place, canonical, idempotent; comments and JSON refused with the file untouched.
  const messy = path.join(dir, 'messy.hcl');
  fs.copyFileSync(path.join(GOLDEN, 'policy_fmt_input.hcl'), messy);
  fs.chmodSync(messy, 0o640);
  assert.equal(ok(cli(['policy', 'fmt', messy]), 'fmt').stdout, `Success! Formatted policy: ${messy}\n`);
  golden('policy_fmt_output.hcl', fs.readFileSync(messy, 'utf8'));
  assert.equal(fs.statSync(messy).mode & 0o777, 0o640, 'mode kept');
  ok(cli(['policy', 'fmt', messy]), 'fmt again');
  golden('policy_fmt_output.hcl', fs.readFileSync(messy, 'utf8'));
  ok(cli(['policy', 'write', 'formatted', messy]), 'the formatted policy is accepted');
  const commented = path.join(dir, 'commented.hcl');
  const withComment = '# reads\npath "a" {capabilities=["read"]}\n';
  fs.writeFileSync(commented, withComment);
  fails(cli(['policy', 'fmt', commented]), 1, /has comments, which policy fmt cannot keep/, 'comments');
  assert.equal(fs.readFileSync(commented, 'utf8'), withComment);
  const hashInString = path.join(dir, 'hash.hcl');
  fs.writeFileSync(hashInString, 'path "a#b" {capabilities=["read"]}\n');
  ok(cli(['policy', 'fmt', hashInString]), 'a # inside a string is no comment');
  assert.equal(fs.readFileSync(hashInString, 'utf8'), 'path "a#b" {\n  capabilities = ["read"]\n}\n');
  const jsonPolicy = path.join(dir, 'p.json');
  fs.writeFileSync(jsonPolicy, '{"path": {"a": {"capabilities": ["read"]}}}');
  fails(cli(['policy', 'fmt', jsonPolicy]), 1, /policy is JSON/, 'json');
  fs.writeFileSync(path.join(dir, 'bad2.hcl'), 'path "a" { capabilities = ["reed"] }\n');
  fails(cli(['policy', 'fmt', path.join(dir, 'bad2.hcl')]), 1, /^failed to parse policy: line 1, column \d+: invalid capability "reed"/, 'invalid');
  fails(cli(['policy', 'fmt', path.join(dir, 'absent.hcl')]), 1, /^Error opening policy file/, 'missing');
  fails(cli(['policy', 'fmt', '-']), 1, /give its path/, 'stdin');
  fails(cli(['policy', 'fmt']), 1, /^Not enough arguments/, 'no args');
});

test('cli: audit list|enable|disable and audit verify (offline)', async (t) => {
  const { d } = await startDevClient(t, ROOT);
  const dir = tmpdir(t);
  const cli = makeCli(d.addr, ROOT, dir);

  assert.equal(ok(cli(['audit', 'list']), 'empty').stdout, 'No audit devices are enabled.\n');
  const logPath = path.join(dir, 'audit.log');
  const en = ok(cli(['audit', 'enable', '-description=the audit trail', 'file', `file_path=${logPath}`]), 'enable');
  assert.equal(en.stdout, 'Success! Enabled the file audit device at: file/\n');
  ok(cli(['audit', 'enable', '-path=second', 'file', `file_path=${path.join(dir, 'second.log')}`]), 'second');
  golden('audit_list.txt', ok(cli(['audit', 'list']), 'list').stdout);
  const detailed = ok(cli(['audit', 'list', '-detailed']), 'detailed').stdout;
  golden('audit_list_detailed.txt', detailed.split(dir).join('/DIR'));
  const json = JSON.parse(ok(cli(['audit', 'list', '-format=json']), 'json').stdout);
  assert.deepEqual(Object.keys(json).sort(), ['file/', 'second/']);
  assert.equal(json['file/'].options.file_path, logPath);
  assert.equal(ok(cli(['audit', 'disable', 'second']), 'disable').stdout,
    'Success! Disabled audit device (if it was enabled) at: second/\n');
  fails(cli(['audit', 'enable', 'file', 'file_path']), 1, /^Failed to parse K=V data: invalid key\/value pair "file_path"/, 'bad K=V');
  fails(cli(['audit', 'enable', 'nosuchtype']), 2, /^Error enabling audit device: /, 'bad type');
  fails(cli(['audit', 'enable']), 1, /^Not enough arguments/, 'no type');
  fails(cli(['audit', 'list', '-detailed=2']), 1, /invalid value "2" for flag -detailed/, 'bad bool');
  fails(cli(['audit', 'disable']), 1, /^Not enough arguments/, 'disable args');

  // Traffic, then the offline verifier on the log with the public key from the server.
  ok(cli(['secrets', 'enable', '-path=plain', 'kv']), 'kv v1');
  for (let i = 0; i < 5; i++) ok(cli(['write', `plain/v${i}`, `n=${i}`]), 'traffic');
  const pem = (await api(d, ROOT, 'GET', 'sys/audit/public-key')).body.data.public_key;
  const pemFile = path.join(dir, 'audit.pem');
  fs.writeFileSync(pemFile, pem);
  const v = ok(cli(['audit', 'verify', '-pubkey', pemFile, logPath], { env: { VAULT_ADDR: 'http://127.0.0.1:1' } }), 'verify');
  assert.match(v.stdout, /^OK: audit log intact/);
  const vj = JSON.parse(ok(cli(['audit', 'verify', `--pubkey=${pemFile}`, '-format=json', '-threads=1', logPath]), 'verify json').stdout);
  assert.equal(vj.ok, true, JSON.stringify(vj));
  // A changed line breaks the chain: exit 2, the line named.
  const lines = fs.readFileSync(logPath, 'utf8').split('\n');
  const at = lines.findIndex((l) => l.includes('plain/v2'));
  assert.ok(at >= 0);
  lines[at] = lines[at].replace('plain/v2', 'plain/v9');
  const tampered = path.join(dir, 'tampered.log');
  fs.writeFileSync(tampered, lines.join('\n'));
  const broken = fails(cli(['audit', 'verify', '-pubkey', pemFile, tampered]), 2, null, 'tampered');
  assert.match(broken.stdout, new RegExp(`tampered\\.log:${at + 1}: `));
  fails(cli(['audit', 'verify', logPath]), 1, /^-pubkey is required/, 'no key');
  fails(cli(['audit', 'verify', '-pubkey', pemFile]), 1, /^Not enough arguments/, 'no files');
  fails(cli(['audit', 'verify', '-pubkey', path.join(dir, 'none.pem'), logPath]), 1, /none\.pem/, 'missing key');
  fails(cli(['audit', 'verify', '-pubkey', logPath, logPath]), 1, null, 'not a key');
  fails(cli(['audit', 'verify', '-pubkey', pemFile, '-threads=0', logPath]), 1, /-threads/, 'threads');
  fails(cli(['audit', 'verify', '-pubkey', pemFile, '-format=yaml', logPath]), 1, /Invalid output format/, 'format');
  fails(cli(['audit', 'verify', '-pubkey', pemFile, path.join(dir, 'none.log')]), 1, null, 'missing log');
});

test('cli: operator init|seal|members|step-down on a fresh server', async (t) => {
  const d = new Daemon();
  t.after(() => d.destroy());
  await d.startConfig();
  const dir = tmpdir(t);
  const cli = makeCli(d.addr, null, dir);

  fails(cli(['operator', 'init', '-status']), 2, null, 'not initialised');
  fails(cli(['operator', 'init', '-key-shares=3', '-recovery-shares=1', '-recovery-threshold=1']), 2,
    /^Error initializing: .*secret_shares not applicable to seal type pkcs11/s, 'unseal keys');
  fails(cli(['operator', 'init', '-recovery-shares=2', '-recovery-threshold=3']), 1, /-recovery-threshold/, 'threshold > shares');
  fails(cli(['operator', 'init', '-recovery-shares=x']), 1, /invalid value "x" for flag -recovery-shares/, 'bad flag');
  const init = ok(cli(['operator', 'init', '-recovery-shares=3', '-recovery-threshold=2']), 'init');
  const m = /^Recovery Key 1: (\S+)\nRecovery Key 2: \S+\nRecovery Key 3: \S+\n\nInitial Root Token: (\S+)\n\nSuccess! Vault is initialized\n\nRecovery key initialized with 3 key shares and a key threshold of 2\. Please\nsecurely distribute the key shares printed above\.\n$/.exec(init.stdout);
  assert.ok(m, init.stdout);
  assert.ok(Buffer.from(m[1], 'base64').length > 0);
  const root = m[2];
  assert.equal(ok(cli(['operator', 'init', '-status']), 'initialised').stdout, 'Vault is initialized\n');
  fails(cli(['operator', 'init', '-format=json']), 2, /already initialized/, 'twice');
  const status = JSON.parse(ok(cli(['status', '-format=json'], { env: { VAULT_TOKEN: root } }), 'status').stdout);
  assert.equal(status.initialized, true);
  assert.equal(status.n, 3);
  assert.equal(status.t, 2);

  const authed = makeCli(d.addr, root, dir);
  const members = ok(authed(['operator', 'members']), 'members').stdout;
  assert.match(members, /^Host Name\s+API Address\s+Cluster Address\s+Active Node\s+Version\s+Upgrade Version\s+Redundancy Zone\s+Last Echo\n-{9}\s+-{11}\s+-{15}\s+-{11}\s+-{7}\s+-{15}\s+-{15}\s+-{9}\n\S+\s+\S+\s+\S+\s+true\s+\S+\s+n\/a\s+n\/a\s+n\/a\n$/);
  const mj = JSON.parse(ok(authed(['operator', 'members', '-format=json']), 'members json').stdout);
  assert.equal(mj.nodes.length, 1);
  assert.equal(mj.nodes[0].active_node, true);
  fails(authed(['operator', 'members', 'x']), 1, /^Too many arguments/, 'members args');
  assert.equal(ok(authed(['operator', 'step-down']), 'step-down').stdout, `Success! Stepped down: ${d.addr}\n`);
  fails(authed(['operator', 'step-down', '-nope']), 1, /flag provided but not defined/, 'bad flag');
  // Without Raft storage.
  fails(authed(['operator', 'raft', 'list-peers']), 2, /^Error reading the raft cluster configuration: .*raft storage is not in use/s, 'no raft');
  fails(authed(['operator', 'raft', 'join', d.addr]), 2, /^Error joining the node to the Raft cluster: /, 'join');

  fails(cli(['operator', 'seal']), 2, /^Error sealing: .*Code: 40[03]/s, 'seal without a token');
  assert.equal(ok(authed(['operator', 'seal']), 'seal').stdout, 'Success! Vault is sealed.\n');
  fails(authed(['status']), 2, null, 'sealed');
});

test('cli: operator raft join|list-peers|remove-peer|snapshot on a two-node cluster', async (t) => {
  const pki = tmpdir(t);
  const certsScript = path.join(__dirname, '..', '..', 'packaging', 'cluster-certs.sh');
  execFileSync(certsScript, ['ca', pki], { stdio: 'ignore' });
  const add = async (node) => {
    execFileSync(certsScript, ['node', pki, node, '127.0.0.1'], { stdio: 'ignore' });
    const apiPort = await portPair();
    const d = new Daemon();
    t.after(() => d.destroy());
    d.makeToken({ raft: { node, apiPort, clusterPort: apiPort + 1,
      certs: { ca: path.join(pki, 'ca.pem'), cert: path.join(pki, `${node}.pem`), key: path.join(pki, `${node}.key`) } } });
    await d.startConfig();
    return d;
  };
  const n1 = await add('n1');
  const dir = tmpdir(t);
  const init = JSON.parse(ok(makeCli(n1.addr, null, dir)(['operator', 'init', '-format=json', '-recovery-shares=1', '-recovery-threshold=1']), 'init').stdout);
  assert.deepEqual(Object.keys(init), ['unseal_keys_b64', 'unseal_keys_hex', 'unseal_shares', 'unseal_threshold',
    'recovery_keys_b64', 'recovery_keys_hex', 'recovery_keys_shares', 'recovery_keys_threshold', 'root_token']);
  assert.equal(init.recovery_keys_b64.length, 1);
  const root = init.root_token;
  const c1 = makeCli(n1.addr, root, dir);
  golden('raft_list_peers_one.txt', ok(c1(['operator', 'raft', 'list-peers']), 'peers').stdout);

  // n2 joins with a one-time token, read from stdin (never on the command line).
  const n2 = await add('n2');
  const c2 = makeCli(n2.addr, null, dir);
  fails(c2(['operator', 'raft', 'join', '-join-token-file', path.join(dir, 'absent'), n1.addr]), 1, /^Failed to read the join token/, 'no token file');
  fails(c2(['operator', 'raft', 'join']), 1, /^Not enough arguments/, 'join args');
  const minted = await api(n1, root, 'POST', 'sys/storage/raft/join-token', { node_id: 'n2' });
  assert.equal(minted.status, 200, JSON.stringify(minted.body));
  const joined = ok(c2(['operator', 'raft', 'join', '-join-token-file=-', n1.addr], { input: `${minted.body.data.join_token}\n` }), 'join');
  assert.equal(joined.stdout, 'Key       Value\n---       -----\nJoined    true\n');
  const peers = ok(c1(['operator', 'raft', 'list-peers']), 'two peers').stdout;
  golden('raft_list_peers_two.txt', peers);
  const pj = JSON.parse(ok(c1(['operator', 'raft', 'list-peers', '-format=json']), 'peers json').stdout);
  assert.deepEqual(pj.data.config.servers.map((s) => s.node_id).sort(), ['n1', 'n2']);

  // Snapshot save and restore (binary bodies) through the leader.
  ok(c1(['write', 'sys/mounts/kv', 'type=kv']), 'mount');
  ok(c1(['write', 'kv/x', 'v=before']), 'write');
  const snap = path.join(dir, 'snap.bin');
  assert.equal(ok(c1(['operator', 'raft', 'snapshot', 'save', snap]), 'save').stdout, '');
  assert.ok(fs.statSync(snap).size > 0);
  assert.equal(fs.statSync(snap).mode & 0o777, 0o600);
  ok(c1(['write', 'kv/x', 'v=after']), 'overwrite');
  assert.equal(ok(c1(['operator', 'raft', 'snapshot', 'restore', snap]), 'restore').stdout, '');
  let value;
  for (let i = 0; i < 100; i++) {
    const r = c1(['read', '-field=v', 'kv/x']);
    value = r.stdout;
    if (r.code === 0 && value === 'before') break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(value, 'before', 'the snapshot was restored');
  fs.writeFileSync(path.join(dir, 'junk.bin'), 'not a snapshot');
  fails(c1(['operator', 'raft', 'snapshot', 'restore', path.join(dir, 'junk.bin')]), 2, /^Error installing the snapshot: /, 'junk');
  fails(c1(['operator', 'raft', 'snapshot', 'restore', path.join(dir, 'absent.bin')]), 1, /^Error opening the snapshot file/, 'absent');
  fails(c1(['operator', 'raft', 'snapshot', 'save']), 1, /^Not enough arguments/, 'save args');
  const curl = ok(c1(['operator', 'raft', 'snapshot', 'restore', '-output-curl-string', snap]), 'curl').stdout;
  assert.match(curl, /^curl -X POST .*--data-binary @- .*\/v1\/sys\/storage\/raft\/snapshot\n$/);

  assert.equal(ok(c1(['operator', 'raft', 'remove-peer', 'n2']), 'remove').stdout, 'Peer removed successfully!\n');
  golden('raft_list_peers_one.txt', ok(c1(['operator', 'raft', 'list-peers']), 'after removal').stdout);
  fails(c1(['operator', 'raft', 'remove-peer']), 1, /^Not enough arguments/, 'remove args');
  fails(c1(['operator', 'raft', 'list-peers', '-bogus']), 1, /flag provided but not defined: -bogus/, 'bad flag');
});
