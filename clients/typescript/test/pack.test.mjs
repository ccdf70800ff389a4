// `npm pack` makes a package that a fresh project installs (offline, from the tarball alone: the
// package has no dependencies) and type-checks against with tsc (the client's own TypeScript),
// without @types/node; a misuse of the API is a type error; both entry points load at run time.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { tempDir } from './helpers.mjs';

const pkgDir = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const tsc = path.join(pkgDir, 'node_modules', 'typescript', 'bin', 'tsc');

const CONSUMER = `import { StrongroomClient, VaultError, type AuthMethod, type KvSecret } from '@strongroom/client';
import { getApiKeys, setAgentSecret, deleteAgentSecret, encrypt, decrypt } from '@strongroom/client/lobstack';

const auth: AuthMethod = { type: 'kubernetes', role: 'lobstack-api' };
const client = new StrongroomClient({ address: 'https://strongroom.example:8200', auth, maxRetries: 1 });

export async function demo(): Promise<string> {
  const secret: KvSecret<{ user: string }> = await client.kv('secret').get<{ user: string }>('db', { version: 2 });
  const ct: string = await client.transit().encrypt('k', secret.data.user);
  const bytes: Uint8Array = await client.transit().decrypt('k', ct);
  const keys = await getApiKeys();
  const anthropic: string | undefined = keys.anthropicApiKey;
  await setAgentSecret('agent-abc123', { ai_api_key: anthropic ?? '' });
  await deleteAgentSecret('agent-abc123');
  const plain: string = await decrypt(await encrypt('sensitive-data'));
  try {
    await client.read('secret/data/x');
  } catch (err) {
    if (err instanceof VaultError) return \`\${err.status} \${err.errors.join(',')}\`;
  }
  return plain + bytes.length;
}
`;

const MISUSE = `import { encrypt } from '@strongroom/client/lobstack';
import { StrongroomClient } from '@strongroom/client';
await encrypt(42);
new StrongroomClient({ auth: { type: 'kubernetes' } });
`;

test('npm pack: a fresh project installs the tarball offline and type-checks against it', (t) => {
  const dir = tempDir(t, 'strongroom-ts-pack-');
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: pkgDir, encoding: 'utf8' });
  const [info] = JSON.parse(out);
  assert.equal(info.name, '@strongroom/client');
  const files = info.files.map((f) => f.path).sort();
  for (const f of ['package.json', 'README.md', 'dist/src/index.js', 'dist/src/index.d.ts',
    'dist/examples/lobstack-vault.js', 'dist/examples/lobstack-vault.d.ts']) {
    assert.ok(files.includes(f), `${f} in the tarball: ${files.join(' ')}`);
  }
  assert.ok(!files.some((f) => f.startsWith('test/') || f.startsWith('node_modules/')), files.join(' '));
  const tarball = path.join(dir, info.filename);

  const project = path.join(dir, 'app');
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error', tarball], { cwd: project });
  const installed = JSON.parse(fs.readFileSync(path.join(project, 'node_modules/@strongroom/client/package.json'), 'utf8'));
  assert.deepEqual(installed.dependencies ?? {}, {}, 'no runtime dependencies');
  assert.deepEqual(fs.readdirSync(path.join(project, 'node_modules')).sort(), ['.package-lock.json', '@strongroom']);

  const tsconfig = (file) => JSON.stringify({
    compilerOptions: { target: 'ES2022', lib: ['ES2022'], module: 'NodeNext', moduleResolution: 'NodeNext',
      strict: true, noEmit: true, types: [], skipLibCheck: false },
    files: [file],
  });
  fs.writeFileSync(path.join(project, 'consumer.ts'), CONSUMER);
  fs.writeFileSync(path.join(project, 'tsconfig.json'), tsconfig('consumer.ts'));
  const ok = spawnSync(process.execPath, [tsc, '-p', project], { encoding: 'utf8' });
  assert.equal(ok.status, 0, `tsc: ${ok.stdout}${ok.stderr}`);

  fs.writeFileSync(path.join(project, 'misuse.ts'), MISUSE);
  fs.writeFileSync(path.join(project, 'tsconfig.misuse.json'), tsconfig('misuse.ts'));
  const bad = spawnSync(process.execPath, [tsc, '-p', path.join(project, 'tsconfig.misuse.json')], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stdout, /misuse\.ts\(3,\d+\): error TS2345/);
  assert.match(bad.stdout, /misuse\.ts\(4,\d+\): error TS2322/);

  // Both entry points load at run time from the installed package.
  const run = spawnSync(process.execPath, ['--input-type=module', '-e',
    "const c = await import('@strongroom/client'); const l = await import('@strongroom/client/lobstack');"
    + "console.log(typeof c.StrongroomClient, typeof c.VaultError, Object.keys(l).sort().join(','))"],
  { cwd: project, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout.trim(), 'function function decrypt,deleteAgentSecret,encrypt,getApiKeys,setAgentSecret');
});
