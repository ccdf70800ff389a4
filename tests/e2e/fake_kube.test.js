// The fake Kubernetes API server itself, through node's own https client: its CA verifies the
// connection, and TokenReview answers like kube-apiserver's (Vault API §5.2, login step 4).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const https = require('node:https');
const tls = require('node:tls');
const {
  DEFAULT_AUDIENCE, TOKENREVIEW_PATH, makeKeyPair, signServiceAccountJwt, startFakeKube,
} = require('./fake_kube');

// POST (by default) to the fake; resolves { status, headers, body (parsed when JSON), text }.
function request(fake, {
  path = TOKENREVIEW_PATH, method = 'POST', bearer, body, contentType = 'application/json', ca = fake.caPem, host,
}) {
  const url = new URL(fake.url);
  const headers = { Accept: 'application/json' };
  if (bearer !== undefined && bearer !== null) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['Content-Type'] = contentType;
  return new Promise((resolve, reject) => {
    const req = https.request({
      // Always the address the fake listens on; a name is checked as the TLS server name (where
      // "localhost" resolves to ::1 first, as on a stock Debian, connecting by name would miss).
      host: url.hostname, port: url.port, path: url.pathname.replace(/\/$/, '') + path, method, headers, ca,
      servername: host && host !== '127.0.0.1' ? host : undefined,
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let parsed = null;
        try { parsed = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, body: parsed, text });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(typeof body === 'string' ? body : JSON.stringify(body));
    req.end();
  });
}

// The body Vault sends (a Go-marshalled TokenReview with empty TypeMeta).
function vaultBody(token, audiences) {
  const spec = { token };
  if (audiences && audiences.length) spec.audiences = audiences;
  return JSON.stringify({ metadata: { creationTimestamp: null }, spec, status: { user: {} } });
}

test('fake kube: TokenReview like kube-apiserver', async (t) => {
  const rsa = makeKeyPair('RS256');
  const ec = makeKeyPair('ES256');
  const other = makeKeyPair('RS256');
  const fake = await startFakeKube({
    publicKey: [rsa.publicKey, ec.publicKeyPem], reviewerToken: 'reviewer-secret',
    authorize: (user) => user !== 'system:serviceaccount:default:no-rbac',
  });
  t.after(() => fake.close());
  const uid = '6a7b2c1e-0000-4000-8000-000000000001';
  const good = signServiceAccountJwt({
    privateKey: rsa.privateKey, namespace: 'apps', name: 'web', uid, audiences: ['vault'],
    pod: { name: 'web-0', uid: 'pod-uid-1' },
  });
  const review = (token, audiences, bearer = 'reviewer-secret') =>
    request(fake, { bearer, body: vaultBody(token, audiences) });

  await t.test('the returned CA verifies the connection; another CA does not', async () => {
    assert.match(fake.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const r = await request(fake, { bearer: 'reviewer-secret', body: vaultBody(good, ['vault']), host: 'localhost' });
    assert.equal(r.status, 201);
    const otherFake = await startFakeKube({ publicKey: rsa.publicKey, reviewerToken: 'x' });
    try {
      await assert.rejects(request(fake, { bearer: 'reviewer-secret', body: '{}', ca: otherFake.caPem }),
        (err) => err.code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || err.code === 'SELF_SIGNED_CERT_IN_CHAIN');
    } finally {
      await otherFake.close();
    }
    // TLS 1.1 and older are refused.
    await assert.rejects(new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: fake.port, ca: fake.caPem, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }, resolve);
      s.on('error', reject);
    }));
  });

  await t.test('401 without or with a wrong bearer, as a Status object', async () => {
    const expected = {
      kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401,
    };
    for (const bearer of [null, 'wrong', '']) {
      const r = await review(good, ['vault'], bearer);
      assert.equal(r.status, 401);
      assert.equal(r.text, JSON.stringify(expected));
    }
  });

  await t.test('201 authenticated for a good token, with the request recorded', async () => {
    const before = fake.requests.length;
    const r = await review(good, ['vault']);
    assert.equal(r.status, 201);
    assert.match(r.headers['content-type'], /^application\/json/);
    assert.deepEqual(r.body, {
      kind: 'TokenReview', apiVersion: 'authentication.k8s.io/v1', metadata: { creationTimestamp: null },
      spec: { token: good, audiences: ['vault'] },
      status: {
        authenticated: true,
        user: {
          username: 'system:serviceaccount:apps:web', uid,
          groups: ['system:serviceaccounts', 'system:serviceaccounts:apps', 'system:authenticated'],
          extra: { 'authentication.kubernetes.io/pod-name': ['web-0'], 'authentication.kubernetes.io/pod-uid': ['pod-uid-1'] },
        },
        audiences: ['vault'],
      },
    });
    assert.equal(fake.requests.length, before + 1);
    const rec = fake.requests[before];
    assert.equal(rec.method, 'POST');
    assert.equal(rec.url, TOKENREVIEW_PATH);
    assert.equal(rec.headers.authorization, 'Bearer reviewer-secret');
    assert.equal(rec.body, vaultBody(good, ['vault']));
  });

  await t.test('ES256, legacy and default-audience tokens', async () => {
    const es = signServiceAccountJwt({ privateKey: ec.privateKey, alg: 'ES256', namespace: 'ns', name: 'sa', uid: 'u-es' });
    let r = await review(es, []); // no spec.audiences: the apiserver's own
    assert.equal(r.body.status.authenticated, true);
    assert.deepEqual(r.body.status.audiences, [DEFAULT_AUDIENCE]);
    assert.deepEqual(r.body.spec, { token: es });
    const legacy = signServiceAccountJwt({ privateKey: rsa.privateKey, legacy: true, namespace: 'ns', name: 'old', uid: 'u-old' });
    r = await review(legacy, []);
    assert.equal(r.body.status.authenticated, true);
    assert.equal(r.body.status.user.username, 'system:serviceaccount:ns:old');
    assert.equal(r.body.status.user.extra, undefined);
    // A legacy token has only the implicit audiences.
    r = await review(legacy, ['vault']);
    assert.equal(r.body.status.authenticated, undefined);
    assert.match(r.body.status.error, /token audiences \[".*"\] is invalid for the target audiences \["vault"\]/);
  });

  await t.test('status.error for expired, not yet valid, wrong audience, revoked, wrong key, unsigned', async () => {
    const base = { privateKey: rsa.privateKey, namespace: 'apps', name: 'web', uid: 'u-bad', audiences: ['vault'] };
    const now = Math.floor(Date.now() / 1000);
    const cases = [
      [signServiceAccountJwt({ ...base, expSeconds: -3600 }), ['vault'], '[invalid bearer token, service account token has expired]'],
      [signServiceAccountJwt({ ...base, nbf: now + 3600 }), ['vault'], '[invalid bearer token, service account token is not valid yet]'],
      [good, ['other'], '[invalid bearer token, token audiences ["vault"] is invalid for the target audiences ["other"]]'],
      [signServiceAccountJwt({ ...base, privateKey: other.privateKey }), ['vault'],
        '[invalid bearer token, invalid signature, no keys found]'],
      [signServiceAccountJwt({ ...base, privateKey: other.privateKey, kid: null }), ['vault'],
        '[invalid bearer token, go-jose/go-jose: error in cryptographic primitive]'],
      [signServiceAccountJwt({ ...base, alg: 'none' }), ['vault'], 'invalid bearer token'],
      [signServiceAccountJwt({ ...base, issuer: 'https://elsewhere' }), ['vault'], 'invalid bearer token'],
      ['not-a-jwt', ['vault'], 'invalid bearer token'],
    ];
    for (const [token, audiences, error] of cases) {
      const r = await review(token, audiences);
      assert.equal(r.status, 201);
      assert.deepEqual(r.body.status, { user: {}, error }, token);
    }
    // Within the apiserver's 60 s leeway a just-expired token is still good.
    const r = await review(signServiceAccountJwt({ ...base, expSeconds: -30 }), ['vault']);
    assert.equal(r.body.status.authenticated, true);

    fake.revoke(uid);
    const revoked = await review(good, ['vault']);
    assert.deepEqual(revoked.body.status, { user: {}, error: '[invalid bearer token, service account token has been invalidated]' });
    fake.unrevoke(uid);
    assert.equal((await review(good, ['vault'])).body.status.authenticated, true);
  });

  await t.test('a valid service account token is accepted as bearer; RBAC may forbid it', async () => {
    const r = await review(good, ['vault'], signServiceAccountJwt({ privateKey: rsa.privateKey, name: 'vault', uid: 'u-v' }));
    assert.equal(r.status, 201);
    assert.equal(r.body.status.authenticated, true);
    // Its audience must be the apiserver's, and it must verify.
    assert.equal((await review(good, ['vault'], good)).status, 401);
    const noRbac = signServiceAccountJwt({ privateKey: rsa.privateKey, name: 'no-rbac', uid: 'u-n' });
    const f = await review(good, ['vault'], noRbac);
    assert.equal(f.status, 403);
    assert.equal(f.body.reason, 'Forbidden');
    assert.equal(f.body.message, 'tokenreviews.authentication.k8s.io is forbidden: User "system:serviceaccount:default:no-rbac" '
      + 'cannot create resource "tokenreviews" in API group "authentication.k8s.io" at the cluster scope');
  });

  await t.test('400, 404, 405, 415 and respondNext', async () => {
    let r = await request(fake, { bearer: 'reviewer-secret', body: '{"spec":' });
    assert.equal(r.status, 400);
    assert.equal(r.body.kind, 'Status');
    assert.equal(r.body.reason, 'BadRequest');
    assert.match(r.body.message, /json parse error/);
    r = await request(fake, { bearer: 'reviewer-secret', body: vaultBody('') });
    assert.equal(r.status, 400);
    assert.equal(r.body.message, 'token is required for TokenReview in authentication');
    r = await request(fake, { bearer: 'reviewer-secret', body: vaultBody(good), path: '/api/v1/namespaces' });
    assert.equal(r.status, 404);
    r = await request(fake, { bearer: 'reviewer-secret', method: 'GET' });
    assert.equal(r.status, 405);
    r = await request(fake, { bearer: 'reviewer-secret', body: vaultBody(good), contentType: 'text/plain' });
    assert.equal(r.status, 415);
    fake.respondNext({ status: 500, body: 'boom' });
    r = await review(good, ['vault']);
    assert.equal(r.status, 500);
    assert.equal(r.text, 'boom');
    assert.equal((await review(good, ['vault'])).status, 201);
  });
});

test('fake kube: path prefix and custom subject alternative names', async (t) => {
  const rsa = makeKeyPair('RS256');
  const fake = await startFakeKube({
    publicKey: rsa.publicKey, reviewerToken: 'r', pathPrefix: '/k8s', subjectAltNames: ['DNS:localhost'],
  });
  t.after(() => fake.close());
  assert.match(fake.url, /^https:\/\/127\.0\.0\.1:\d+\/k8s$/);
  const token = signServiceAccountJwt({ privateKey: rsa.privateKey });
  const r = await request(fake, { bearer: 'r', body: vaultBody(token), host: 'localhost' });
  assert.equal(r.status, 201);
  assert.equal(fake.requests[0].url, `/k8s${TOKENREVIEW_PATH}`);
  assert.equal(fake.requests[0].servername, 'localhost');
  // The certificate names only localhost: node refuses the IP address.
  await assert.rejects(request(fake, { bearer: 'r', body: vaultBody(token) }), (err) => err.code === 'ERR_TLS_CERT_ALTNAME_INVALID');
});

test('fake kube: a certificate without SANs, named by its subject CN', async (t) => {
  const ec = makeKeyPair('ES256');
  const fake = await startFakeKube({ publicKey: ec.publicKey, reviewerToken: 'r', subjectAltNames: [], commonName: 'localhost' });
  t.after(() => fake.close());
  // node (like OpenSSL's X509_check_host) still accepts the CN when there is no SAN at all.
  const token = signServiceAccountJwt({ privateKey: ec.privateKey, alg: 'ES256' });
  const r = await request(fake, { bearer: 'r', body: vaultBody(token), host: 'localhost' });
  assert.equal(r.status, 201);
  assert.equal(r.body.status.authenticated, true);
});

test('fake kube: TokenRequest issues bound tokens its TokenReview accepts', async (t) => {
  const rsa = makeKeyPair('RS256');
  const fake = await startFakeKube({
    publicKey: rsa.publicKey, reviewerToken: 'reviewer-secret', signingKey: rsa.privateKey,
    authorize: (user) => user !== 'system:serviceaccount:default:no-rbac',
  });
  t.after(() => fake.close());
  const path = '/api/v1/namespaces/apps/serviceaccounts/web/token';
  const body = {
    apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
    spec: { audiences: ['vault'], expirationSeconds: 900, boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'web-0', uid: 'u-1' } },
  };
  const r = await request(fake, { path, bearer: 'reviewer-secret', body });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.body.kind, 'TokenRequest');
  assert.match(r.body.status.expirationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const token = r.body.status.token;
  const review = await request(fake, { bearer: 'reviewer-secret', body: vaultBody(token, ['vault']) });
  assert.equal(review.body.status.authenticated, true);
  assert.equal(review.body.status.user.username, 'system:serviceaccount:apps:web');
  assert.equal(review.body.status.user.uid, fake.accountUid('apps', 'web'));
  assert.deepEqual(review.body.status.user.extra['authentication.kubernetes.io/pod-name'], ['web-0']);
  assert.deepEqual(fake.requests.at(-2).tokenRequest,
    { namespace: 'apps', name: 'web', audiences: ['vault'], pod: { name: 'web-0', uid: 'u-1' }, expirationSeconds: 900 });

  // No audiences: the API's own; too short an expiry and a forbidden bearer are refused.
  const plain = await request(fake, { path, bearer: 'reviewer-secret', body: { ...body, spec: { expirationSeconds: 600 } } });
  assert.equal(plain.status, 201, plain.text);
  const claims = JSON.parse(Buffer.from(plain.body.status.token.split('.')[1], 'base64url').toString());
  assert.deepEqual(claims.aud, [DEFAULT_AUDIENCE]);
  assert.equal((await request(fake, { path, bearer: 'reviewer-secret', body: { ...body, spec: { expirationSeconds: 60 } } })).status, 422);
  const noRbac = signServiceAccountJwt({ privateKey: rsa.privateKey, name: 'no-rbac' });
  const forbidden = await request(fake, { path, bearer: noRbac, body });
  assert.equal(forbidden.status, 403);
  assert.match(forbidden.body.message, /cannot create resource "serviceaccounts\/token"/);
  assert.equal((await request(fake, { path, method: 'GET', bearer: 'reviewer-secret' })).status, 405);

  // Without a signing key the path does not exist.
  const plainFake = await startFakeKube({ publicKey: rsa.publicKey, reviewerToken: 'r' });
  t.after(() => plainFake.close());
  assert.equal((await request(plainFake, { path, bearer: 'r', body })).status, 404);
});
