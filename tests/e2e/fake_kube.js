// A fake Kubernetes API server for the Kubernetes auth method (Vault API §5.2): it answers
// POST /apis/authentication.k8s.io/v1/tokenreviews over TLS the way kube-apiserver does on the wire
// (401/403/400/404/405/415 Status objects, 201 TokenReview), and validates the reviewed service
// account JWT itself like the apiserver's service account authenticator: signature (RS256/ES256
// with the keys it was given, picked by kid), issuer, audiences, exp/nbf with the apiserver's
// 60 s leeway, and a revocation set standing in for deleted service accounts. Given a signing key
// it also answers TokenRequest (POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token, what
// the CSI provider calls when the driver passes no token): a projected token for that service
// account, its audiences and expiry, bound to the pod of boundObjectRef.
// Only node built-ins; the CA and server certificate are made with the openssl command.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const https = require('node:https');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

// kube-apiserver's default --api-audiences and --service-account-issuer (kubeadm, kind, k3s).
const DEFAULT_AUDIENCE = 'https://kubernetes.default.svc.cluster.local';
const DEFAULT_ISSUER = 'https://kubernetes.default.svc.cluster.local';
const LEGACY_ISSUER = 'kubernetes/serviceaccount';
const TOKENREVIEW_PATH = '/apis/authentication.k8s.io/v1/tokenreviews';
const TOKENREQUEST_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/serviceaccounts\/([^/]+)\/token$/;
const LEEWAY_SECONDS = 60; // go-jose's jwt.DefaultLeeway, applied to exp, nbf and iat
const MAX_BODY = 3 * 1024 * 1024; // the apiserver's request body limit

// --- keys and tokens ---------------------------------------------------------------------------

function b64url(data) {
  return Buffer.from(data).toString('base64url');
}

// 'RS256' (RSA 2048) or 'ES256' (P-256). Returns KeyObjects and the public key as PEM.
function makeKeyPair(alg = 'RS256') {
  let pair;
  if (alg === 'RS256') pair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  else if (alg === 'ES256') pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  else throw new Error(`makeKeyPair: unsupported alg ${alg}`);
  return {
    alg,
    privateKey: pair.privateKey,
    publicKey: pair.publicKey,
    publicKeyPem: pair.publicKey.export({ type: 'spki', format: 'pem' }),
  };
}

function toPublicKey(key) {
  if (key instanceof crypto.KeyObject) return key.type === 'private' ? crypto.createPublicKey(key) : key;
  return crypto.createPublicKey(key);
}

// kube-apiserver's kid: base64url(sha256(DER SubjectPublicKeyInfo)).
function keyId(key) {
  const der = toPublicKey(key).export({ type: 'spki', format: 'der' });
  return b64url(crypto.createHash('sha256').update(der).digest());
}

function algForKey(key) {
  const pub = toPublicKey(key);
  if (pub.asymmetricKeyType === 'rsa') return 'RS256';
  if (pub.asymmetricKeyType === 'ec' && pub.asymmetricKeyDetails.namedCurve === 'prime256v1') return 'ES256';
  throw new Error('fake_kube: only RSA and P-256 keys are supported');
}

// A service account token as kube-apiserver issues it. Projected (default): iss DEFAULT_ISSUER,
// aud, exp/iat/nbf, sub and the "kubernetes.io" claim (with pod when given). legacy: the old
// secret-based token with "kubernetes.io/serviceaccount/..." claims, no aud and no exp.
// alg 'none' gives an unsigned token (empty signature); kid is derived from the key unless
// kid: null. Times are in seconds: expSeconds relative to now, nbf and iat absolute.
function signServiceAccountJwt({
  privateKey, alg = 'RS256', namespace = 'default', name = 'default', uid = crypto.randomUUID(),
  audiences = [DEFAULT_AUDIENCE], issuer, expSeconds = 3600, nbf, iat, pod, secretName,
  legacy = false, kid, extraHeader = {}, extraClaims = {},
} = {}) {
  const now = Math.floor(Date.now() / 1000);
  const header = { alg };
  if (alg !== 'none' && kid !== null) header.kid = kid === undefined ? keyId(privateKey) : kid;
  Object.assign(header, extraHeader);
  const sub = `system:serviceaccount:${namespace}:${name}`;
  let claims;
  if (legacy) {
    claims = {
      iss: issuer || LEGACY_ISSUER,
      'kubernetes.io/serviceaccount/namespace': namespace,
      'kubernetes.io/serviceaccount/secret.name': secretName || `${name}-token-${crypto.randomBytes(3).toString('hex')}`,
      'kubernetes.io/serviceaccount/service-account.name': name,
      'kubernetes.io/serviceaccount/service-account.uid': uid,
      sub,
    };
  } else {
    const k8s = { namespace, serviceaccount: { name, uid } };
    if (pod) k8s.pod = { name: pod.name, uid: pod.uid };
    claims = {
      aud: audiences,
      exp: now + expSeconds,
      iat: iat === undefined ? now : iat,
      iss: issuer || DEFAULT_ISSUER,
      'kubernetes.io': k8s,
      nbf: nbf === undefined ? now : nbf,
      sub,
    };
  }
  Object.assign(claims, extraClaims);
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  if (alg === 'none') return `${input}.`;
  let sig;
  if (alg === 'RS256') sig = crypto.sign('sha256', Buffer.from(input), privateKey);
  else if (alg === 'ES256') sig = crypto.sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  else throw new Error(`signServiceAccountJwt: unsupported alg ${alg}`);
  return `${input}.${b64url(sig)}`;
}

// Header and claims of a compact JWT, unverified; null when it is not one.
function decodeJwt(token) {
  if (typeof token !== 'string' || token.trim().startsWith('{')) return null;
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
    const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    if (!header || typeof header !== 'object' || !claims || typeof claims !== 'object') return null;
    return { header, claims, input: `${parts[0]}.${parts[1]}`, signature: Buffer.from(parts[2], 'base64url') };
  } catch {
    return null;
  }
}

// --- TLS material ------------------------------------------------------------------------------

function openssl(dir, args) {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

// A fresh CA and a server certificate for subjectAltNames (none when empty) and commonName, in
// dir. Returns PEM strings and paths.
function makeTlsMaterial(dir, subjectAltNames = ['IP:127.0.0.1', 'DNS:localhost'], commonName = 'kube-apiserver') {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(dir, ['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2',
    '-subj', '/CN=fake-kube-ca', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  openssl(dir, ['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', `/CN=${commonName}`]);
  fs.writeFileSync(path.join(dir, 'server.ext'), [
    ...(subjectAltNames.length ? [`subjectAltName=${subjectAltNames.join(',')}`] : []),
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
    '',
  ].join('\n'));
  openssl(dir, ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key',
    '-set_serial', `0x${crypto.randomBytes(8).toString('hex')}`, '-days', '1', '-out', 'server.crt',
    '-extfile', 'server.ext']);
  const read = (f) => fs.readFileSync(path.join(dir, f), 'utf8');
  return {
    caPem: read('ca.crt'), caPath: path.join(dir, 'ca.crt'),
    certPem: read('server.crt'), keyPem: read('server.key'),
  };
}

// --- the server --------------------------------------------------------------------------------

function statusObject(code, reason, message, details) {
  const s = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason };
  if (details) s.details = details;
  s.code = code;
  return s;
}

const UNAUTHORIZED = statusObject(401, 'Unauthorized', 'Unauthorized');

// Go's %q of a []string: ["a" "b"].
function goQuoteList(list) {
  return `[${list.map((s) => JSON.stringify(s)).join(' ')}]`;
}

// options:
//   publicKey: KeyObject/PEM, or an array of them: the service account signing keys
//   reviewerToken: a static bearer token allowed to create TokenReviews
//   issuers: accepted "iss" values (default [DEFAULT_ISSUER, LEGACY_ISSUER])
//   apiAudiences: the apiserver's audiences (default [DEFAULT_AUDIENCE])
//   authorize(username): RBAC for service account bearers (system:auth-delegator); default all
//   subjectAltNames, commonName: the server certificate's SANs (none when []) and subject CN
//   host, pathPrefix: listen address, URL prefix
//   signingKey: a private key among publicKey's (RS256); with it the fake answers TokenRequest
//     for bearers that `authorize` lets through, and mintToken() signs tokens
async function startFakeKube({
  publicKey, reviewerToken, issuers = [DEFAULT_ISSUER, LEGACY_ISSUER], apiAudiences = [DEFAULT_AUDIENCE],
  authorize = () => true, subjectAltNames, commonName, host = '127.0.0.1', pathPrefix = '',
  signingKey,
} = {}) {
  const keys = (Array.isArray(publicKey) ? publicKey : [publicKey]).filter(Boolean).map((k) => {
    const pub = toPublicKey(k);
    return { key: pub, kid: keyId(pub), alg: algForKey(pub) };
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-kube-'));
  const tls = makeTlsMaterial(dir, subjectAltNames, commonName);
  const revoked = new Set();
  const requests = [];
  const overrides = [];
  const accountUids = new Map(); // "<ns>/<name>" -> the service account's uid (stable)
  const accountUid = (namespace, name) => {
    const key = `${namespace}/${name}`;
    if (!accountUids.has(key)) accountUids.set(key, crypto.randomUUID());
    return accountUids.get(key);
  };
  // A projected token for a service account, as TokenRequest issues it.
  function mintToken({ namespace, name, audiences = apiAudiences, pod, expSeconds = 3600 }) {
    if (!signingKey) throw new Error('fake_kube: no signingKey');
    return signServiceAccountJwt({
      privateKey: signingKey, namespace, name, uid: accountUid(namespace, name), audiences, pod, expSeconds,
    });
  }

  // The service account authenticator: { user, audiences } or { error } (error '' = not ours).
  function authenticate(token, requested) {
    const invalid = (reason) => ({ error: reason ? `[invalid bearer token, ${reason}]` : 'invalid bearer token' });
    const jwt = decodeJwt(token);
    if (!jwt || !issuers.includes(jwt.claims.iss)) return invalid();
    if (typeof jwt.header.alg !== 'string' || jwt.header.alg === 'none') return invalid();
    const candidates = jwt.header.kid ? keys.filter((k) => k.kid === jwt.header.kid) : keys;
    if (candidates.length === 0) return invalid('invalid signature, no keys found');
    const verified = candidates.some((k) => {
      if (k.alg !== jwt.header.alg) return false;
      const key = k.alg === 'ES256' ? { key: k.key, dsaEncoding: 'ieee-p1363' } : k.key;
      return crypto.verify('sha256', Buffer.from(jwt.input), key, jwt.signature);
    });
    if (!verified) return invalid('go-jose/go-jose: error in cryptographic primitive');

    const c = jwt.claims;
    const legacy = c.iss === LEGACY_ISSUER;
    let tokenAudiences = c.aud === undefined ? [] : [].concat(c.aud);
    if (tokenAudiences.length === 0) tokenAudiences = apiAudiences; // legacy tokens: implicit
    const wanted = requested && requested.length ? requested : apiAudiences;
    const audiences = tokenAudiences.filter((a) => wanted.includes(a));
    if (audiences.length === 0) {
      return invalid(`token audiences ${goQuoteList(tokenAudiences)} is invalid for the target audiences ${goQuoteList(wanted)}`);
    }

    let namespace, name, uid, pod;
    if (legacy) {
      namespace = c['kubernetes.io/serviceaccount/namespace'];
      name = c['kubernetes.io/serviceaccount/service-account.name'];
      uid = c['kubernetes.io/serviceaccount/service-account.uid'];
      if (!namespace || !name || !uid || !c['kubernetes.io/serviceaccount/secret.name']) {
        return invalid('service account token claims could not be validated');
      }
    } else {
      const now = Math.floor(Date.now() / 1000);
      if (typeof c.exp === 'number' && now > c.exp + LEEWAY_SECONDS) return invalid('service account token has expired');
      if (typeof c.nbf === 'number' && now + LEEWAY_SECONDS < c.nbf) return invalid('service account token is not valid yet');
      if (typeof c.iat === 'number' && now + LEEWAY_SECONDS < c.iat) {
        return invalid('service account token claims could not be validated due to unexpected validation error');
      }
      const k8s = c['kubernetes.io'] || {};
      namespace = k8s.namespace;
      name = k8s.serviceaccount && k8s.serviceaccount.name;
      uid = k8s.serviceaccount && k8s.serviceaccount.uid;
      pod = k8s.pod;
      if (!namespace || !name || !uid) return invalid('service account token claims could not be validated');
    }
    if (revoked.has(uid)) return invalid('service account token has been invalidated');

    const user = {
      username: `system:serviceaccount:${namespace}:${name}`,
      uid,
      groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
    };
    const extra = {};
    if (pod && pod.name) extra['authentication.kubernetes.io/pod-name'] = [pod.name];
    if (pod && pod.uid) extra['authentication.kubernetes.io/pod-uid'] = [pod.uid];
    if (typeof c.jti === 'string') extra['authentication.kubernetes.io/credential-id'] = [`JTI=${c.jti}`];
    if (Object.keys(extra).length) user.extra = extra;
    return { user, audiences };
  }

  function send(res, code, obj) {
    const body = JSON.stringify(obj);
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }

  function handle(req, res, body) {
    const entry = {
      method: req.method, url: req.url, headers: req.headers, body,
      servername: req.socket.servername || null,
    };
    requests.push(entry);

    // Authentication: the static reviewer token, or any valid service account token.
    const m = /^Bearer (.+)$/.exec(req.headers.authorization || '');
    if (!m) return send(res, 401, UNAUTHORIZED);
    let username;
    if (reviewerToken !== undefined && m[1] === reviewerToken) {
      username = 'reviewer';
    } else {
      const who = authenticate(m[1], null);
      if (!who.user) return send(res, 401, UNAUTHORIZED);
      username = who.user.username;
    }
    if (overrides.length) {
      const o = overrides.shift();
      res.writeHead(o.status, { 'Content-Type': 'application/json', ...(o.headers || {}) });
      return res.end(o.body);
    }

    const url = new URL(req.url, 'https://fake-kube');
    const tokenRequest = signingKey && url.pathname.startsWith(pathPrefix)
      ? TOKENREQUEST_PATH.exec(url.pathname.slice(pathPrefix.length)) : null;
    if (tokenRequest) return handleTokenRequest(req, res, body, username, tokenRequest[1], tokenRequest[2], entry);
    if (url.pathname !== pathPrefix + TOKENREVIEW_PATH) {
      return send(res, 404, statusObject(404, 'NotFound', 'the server could not find the requested resource', {}));
    }
    if (req.method !== 'POST') {
      return send(res, 405, statusObject(405, 'MethodNotAllowed',
        'the server does not allow this method on the requested resource', {}));
    }
    if (username !== 'reviewer' && !authorize(username)) {
      return send(res, 403, statusObject(403, 'Forbidden',
        `tokenreviews.authentication.k8s.io is forbidden: User ${JSON.stringify(username)} cannot create resource `
        + '"tokenreviews" in API group "authentication.k8s.io" at the cluster scope',
        { group: 'authentication.k8s.io', kind: 'tokenreviews' }));
    }
    const type = (req.headers['content-type'] || '').split(';')[0].trim();
    if (type !== 'application/json') {
      return send(res, 415, statusObject(415, 'UnsupportedMediaType',
        'the body of the request was in an unknown format - accepted media types include: '
        + 'application/json, application/yaml, application/vnd.kubernetes.protobuf', {}));
    }
    let review;
    try {
      review = JSON.parse(body);
    } catch (err) {
      return send(res, 400, statusObject(400, 'BadRequest', `couldn't get version/kind; json parse error: ${err.message}`, {}));
    }
    if (!review || typeof review !== 'object' || Array.isArray(review)) {
      return send(res, 400, statusObject(400, 'BadRequest', "couldn't get version/kind; json parse error: not an object", {}));
    }
    if ((review.kind !== undefined && review.kind !== 'TokenReview') ||
        (review.apiVersion !== undefined && review.apiVersion !== 'authentication.k8s.io/v1')) {
      return send(res, 400, statusObject(400, 'BadRequest',
        `the API version in the data (${review.apiVersion}) does not match the expected API version `
        + '(authentication.k8s.io/v1)', {}));
    }
    const spec = review.spec && typeof review.spec === 'object' ? review.spec : {};
    if (typeof spec.token !== 'string' || spec.token === '') {
      return send(res, 400, statusObject(400, 'BadRequest', 'token is required for TokenReview in authentication', {}));
    }
    const echo = { token: spec.token };
    if (Array.isArray(spec.audiences) && spec.audiences.length) echo.audiences = spec.audiences;
    const result = authenticate(spec.token, echo.audiences);
    const status = result.user
      ? { authenticated: true, user: result.user, audiences: result.audiences }
      : { user: {}, error: result.error };
    entry.review = status;
    return send(res, 201, {
      kind: 'TokenReview', apiVersion: 'authentication.k8s.io/v1', metadata: { creationTimestamp: null },
      spec: echo, status,
    });
  }

  // TokenRequest (authentication.k8s.io/v1) as kube-apiserver answers it: RBAC create on
  // serviceaccounts/token, expirationSeconds of at least 10 minutes (default 1 hour), the API
  // audiences when none are asked for, a Pod boundObjectRef (name and uid) as the pod claim.
  function handleTokenRequest(req, res, body, username, namespace, name, entry) {
    if (req.method !== 'POST') {
      return send(res, 405, statusObject(405, 'MethodNotAllowed',
        'the server does not allow this method on the requested resource', {}));
    }
    if (username !== 'reviewer' && !authorize(username)) {
      return send(res, 403, statusObject(403, 'Forbidden',
        `serviceaccounts ${JSON.stringify(name)} is forbidden: User ${JSON.stringify(username)} cannot create `
        + `resource "serviceaccounts/token" in API group "" in the namespace ${JSON.stringify(namespace)}`,
        { name, kind: 'serviceaccounts' }));
    }
    let tr;
    try {
      tr = JSON.parse(body);
    } catch (err) {
      return send(res, 400, statusObject(400, 'BadRequest', `couldn't get version/kind; json parse error: ${err.message}`, {}));
    }
    if (!tr || typeof tr !== 'object' || tr.kind !== 'TokenRequest' || tr.apiVersion !== 'authentication.k8s.io/v1') {
      return send(res, 400, statusObject(400, 'BadRequest', 'the body is not an authentication.k8s.io/v1 TokenRequest', {}));
    }
    const spec = tr.spec && typeof tr.spec === 'object' ? tr.spec : {};
    const expSeconds = spec.expirationSeconds === undefined ? 3600 : spec.expirationSeconds;
    if (!Number.isInteger(expSeconds) || expSeconds < 600) {
      return send(res, 422, statusObject(422, 'Invalid',
        'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: '
        + `${expSeconds}: may not specify a duration less than 10 minutes`, {}));
    }
    const audiences = Array.isArray(spec.audiences) && spec.audiences.length ? spec.audiences : apiAudiences;
    let pod;
    const ref = spec.boundObjectRef;
    if (ref) {
      if (ref.kind !== 'Pod' || !ref.name || !ref.uid) {
        return send(res, 422, statusObject(422, 'Invalid', 'spec.boundObjectRef: a Pod with a name and a uid is required here', {}));
      }
      pod = { name: ref.name, uid: ref.uid };
    }
    const token = mintToken({ namespace, name, audiences, pod, expSeconds });
    entry.tokenRequest = { namespace, name, audiences, pod: pod || null, expirationSeconds: expSeconds };
    return send(res, 201, {
      kind: 'TokenRequest', apiVersion: 'authentication.k8s.io/v1',
      metadata: { name, namespace, creationTimestamp: null },
      spec: { audiences, expirationSeconds: expSeconds, boundObjectRef: ref || null },
      status: { token, expirationTimestamp: new Date(Date.now() + expSeconds * 1000).toISOString().replace(/\.\d+Z$/, 'Z') },
    });
  }

  const server = https.createServer({ key: tls.keyPem, cert: tls.certPem, minVersion: 'TLSv1.2' }, (req, res) => {
    const chunks = [];
    let size = 0;
    req.on('data', (d) => {
      size += d.length;
      if (size <= MAX_BODY) chunks.push(d);
    });
    req.on('end', () => {
      if (size > MAX_BODY) {
        return send(res, 413, statusObject(413, 'RequestEntityTooLarge', 'limit is 3145728', {}));
      }
      handle(req, res, Buffer.concat(chunks).toString('utf8'));
    });
  });
  const sockets = new Set();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const { port } = server.address();
  const hostPart = host.includes(':') ? `[${host}]` : host;
  return {
    url: `https://${hostPart}:${port}${pathPrefix}`,
    port,
    caPem: tls.caPem,
    caPath: tls.caPath,
    requests,
    mintToken,
    accountUid,
    revoke(uid) { revoked.add(uid); },
    unrevoke(uid) { revoked.delete(uid); },
    // The next authenticated request gets this answer instead ({ status, body, headers }).
    respondNext(answer) { overrides.push(answer); },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => {
        fs.rmSync(dir, { recursive: true, force: true });
        resolve();
      }));
    },
  };
}

module.exports = {
  DEFAULT_AUDIENCE, DEFAULT_ISSUER, LEGACY_ISSUER, TOKENREVIEW_PATH, TOKENREQUEST_PATH,
  makeKeyPair, keyId, signServiceAccountJwt, decodeJwt, makeTlsMaterial, startFakeKube,
};
