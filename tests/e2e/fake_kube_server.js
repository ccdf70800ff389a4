#!/usr/bin/env node
// Command-line wrapper around fake_kube.js for tests in other languages (the C++ TokenReview
// client test). Starts the fake with fresh RS256 and ES256 keys and prints one JSON line on
// stdout: the URL, its CA (path and PEM), an unrelated CA, the reviewer token and ready-made
// service account tokens. Then serves until stdin closes, answering one JSON line per command
// line on stdin:
//   requests              -> the recorded requests [{method,url,headers,body,servername,review}]
//   revoke <uid>          -> {"ok":true}; tokens of that service account become invalid
//   respond-next <json>   -> {"ok":true}; the next authenticated request gets {status,body,headers}
//   token <json>          -> {"token":"..."}: a projected token signed by the fake's RS256 key for
//                            {namespace, name, audiences, pod: {name, uid}, expSeconds}
// It answers TokenRequest too (fake_kube.js) for any bearer but the no-rbac account.
// Options: --san <SAN> (repeatable, e.g. DNS:localhost), --no-san, --cn <subject CN>,
// --prefix </path>, --host <address>.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { makeKeyPair, makeTlsMaterial, signServiceAccountJwt, startFakeKube } = require('./fake_kube');

function parseArgs(argv) {
  const opts = { sans: [], noSan: false, cn: undefined, prefix: '', host: '127.0.0.1' };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    if (argv[i] === '--no-san') { opts.noSan = true; continue; }
    if (argv[i] === '--san' && value) opts.sans.push(value);
    else if (argv[i] === '--cn' && value) opts.cn = value;
    else if (argv[i] === '--prefix' && value !== undefined) opts.prefix = value;
    else if (argv[i] === '--host' && value) opts.host = value;
    else throw new Error(`fake_kube_server: unknown argument ${argv[i]}`);
    i++;
  }
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const rsa = makeKeyPair('RS256');
  const ec = makeKeyPair('ES256');
  const stranger = makeKeyPair('RS256');
  const reviewerToken = `reviewer-${crypto.randomBytes(16).toString('hex')}`;
  const fake = await startFakeKube({
    publicKey: [rsa.publicKey, ec.publicKey], reviewerToken,
    authorize: (user) => user !== 'system:serviceaccount:default:no-rbac',
    subjectAltNames: opts.noSan ? [] : (opts.sans.length ? opts.sans : undefined), commonName: opts.cn,
    host: opts.host, pathPrefix: opts.prefix, signingKey: rsa.privateKey,
  });
  const otherDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-kube-other-'));
  const other = makeTlsMaterial(otherDir);

  const audience = 'vault';
  const sa = { namespace: 'apps', name: 'web', uid: crypto.randomUUID() };
  const token = (extra) => signServiceAccountJwt({ privateKey: rsa.privateKey, ...sa, audiences: [audience], ...extra });
  const info = {
    url: fake.url,
    caPath: fake.caPath,
    caPem: fake.caPem,
    otherCaPem: other.caPem,
    reviewerToken,
    audience,
    ...sa,
    good: token({ pod: { name: 'web-0', uid: crypto.randomUUID() } }),
    goodEs256: signServiceAccountJwt({ privateKey: ec.privateKey, alg: 'ES256', ...sa, audiences: [audience] }),
    expired: token({ expSeconds: -3600 }),
    wrongKey: token({ privateKey: stranger.privateKey }),
    unsigned: token({ alg: 'none' }),
    // Valid service account tokens for the apiserver's own audience, usable as bearers.
    saBearer: signServiceAccountJwt({ privateKey: rsa.privateKey, namespace: 'vault', name: 'vault', uid: crypto.randomUUID() }),
    forbiddenBearer: signServiceAccountJwt({ privateKey: rsa.privateKey, name: 'no-rbac', uid: crypto.randomUUID() }),
  };
  process.stdout.write(`${JSON.stringify(info)}\n`);

  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    const [command, ...rest] = line.trim().split(' ');
    const arg = rest.join(' ');
    let answer;
    try {
      if (command === 'requests') answer = fake.requests;
      else if (command === 'revoke') { fake.revoke(arg); answer = { ok: true }; }
      else if (command === 'respond-next') { fake.respondNext(JSON.parse(arg)); answer = { ok: true }; }
      else if (command === 'token') answer = { token: fake.mintToken(JSON.parse(arg)) };
      else answer = { error: `unknown command ${command}` };
    } catch (err) {
      answer = { error: err.message };
    }
    process.stdout.write(`${JSON.stringify(answer)}\n`);
  });
  rl.on('close', async () => {
    await fake.close();
    fs.rmSync(otherDir, { recursive: true, force: true });
    process.exit(0);
  });
}

main().catch((err) => {
  process.stderr.write(`fake_kube_server: ${err.stack || err}\n`);
  process.exit(1);
});
