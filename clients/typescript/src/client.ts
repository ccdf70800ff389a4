// StrongroomClient: the Vault HTTP API as strongroom serves it, with the token's whole life
// handled here: login (Kubernetes, AppRole, token or token file), renewal at 2/3 of the TTL,
// login again when renewal fails, when the grants shrink at max_ttl, or when a token that worked
// is refused; one login at a time however many requests wait for it.

import { X509Certificate } from 'node:crypto';
import { closeSync, constants as fsConstants, fstatSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';

import { ConnectionError, VaultError } from './errors.js';
import { KvV2 } from './kv.js';
import { Transit } from './transit.js';
import { Transport } from './transport.js';
import type {
  AuthInfo, AuthMethod, CallOptions, ClientOptions, Logger, SecretResponse, TokenLookup, WrapInfo, WrapLookup,
} from './types.js';

/** Where Kubernetes mounts a pod's service-account token. */
export const DEFAULT_KUBERNETES_TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/token';

const kMaxCredentialFileBytes = 64 * 1024;
const kMaxCaBundleBytes = 4 * 1024 * 1024;
const kMaxCaCertificates = 1000;
// Non-blocking open: a FIFO without a writer must not hang the open (fstat then refuses it).
const kOpenFlags = fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0);
const kMaxErrorStrings = 64;
const kMaxTimerMs = 2 ** 31 - 1;
// Retries after a failed renewal or login back off (1 s doubling to 60 s), but the last ones
// are pulled in before the token's planned end: no later than kEndMarginMs before it, and never
// sooner than kMinRetryMs after the failure.
const kEndMarginMs = 1000;
const kMinRetryMs = 500;
// A 403 "permission denied" from lookup-self alone does not prove a token dead (the token may
// simply lack lookup-self, e.g. no `default` policy): such a refusal leads to a login only when
// the token is at least this old and no such login happened within this long.
const kUncertainRecoveryMs = 30_000;
// Failures that happen before a request is written: safe to retry for GET and LIST.
const kConnectPhaseCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH']);
// Answers that mean "not done, try again" (a proxy or a node that cannot serve now). 500 is not
// among them: the server may have acted.
const kRetryStatuses = new Set([502, 503, 504]);

function isConnectPhase(err: unknown): boolean {
  return err instanceof ConnectionError && !err.requestSent && err.code !== undefined && kConnectPhaseCodes.has(err.code);
}

type Method = 'GET' | 'LIST' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';

/** @internal */
export interface RequestSpec {
  method: Method;
  path: string;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  contentType?: string;
  /** 'none' for logins; a string to use that token instead of the client's. */
  token?: 'client' | 'none' | { value: string };
  /** Sent as X-Vault-Wrap-TTL: the answer is response-wrapped. */
  wrapTtl?: string | number | undefined;
}

interface Plan {
  at: number;
  kind: 'renew' | 'login';
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// A path as given ("secret/data/a b") to the URL path below /v1/, each segment percent-encoded.
// "." and ".." segments are refused: URL parsing would resolve them to another path.
function encodePath(path: string): string {
  const trimmed = path.replace(/^\/+/, '');
  if (trimmed.length === 0) throw new TypeError('empty API path');
  if (trimmed.length > 4096) throw new TypeError('API path longer than 4096 characters');
  return trimmed.split('/').map((segment) => {
    if (segment === '.' || segment === '..') throw new TypeError(`API path "${path}" has a "${segment}" segment`);
    return encodeURIComponent(segment);
  }).join('/');
}

// A wrapping TTL as the header carries it: a duration ("5m", "1h30m", "300") or a whole number
// of seconds; nothing else reaches the header.
function wrapTtlHeader(ttl: string | number): string {
  if (typeof ttl === 'number') {
    if (!Number.isSafeInteger(ttl) || ttl <= 0) throw new TypeError(`wrapTtl ${ttl} is not a positive whole number of seconds`);
    return String(ttl);
  }
  if (!/^[0-9A-Za-z.]{1,32}$/.test(ttl)) throw new TypeError(`wrapTtl "${ttl}" is not a duration such as "5m"`);
  return ttl;
}

function isWrapInfo(value: unknown): value is WrapInfo {
  if (typeof value !== 'object' || value === null) return false;
  const w = value as Record<string, unknown>;
  return typeof w.token === 'string' && w.token.length > 0 && typeof w.ttl === 'number';
}

function cleanMount(mount: string): string {
  const m = mount.replace(/^\/+|\/+$/g, '');
  if (m.length === 0) throw new TypeError('empty mount path');
  return m;
}

// A credential file (a service-account token, a secret ID, a token sink): opened once, checked
// through the handle (a regular file of at most 64 KiB), then read from that handle, so the file
// read is the file checked. Symlinks are followed (the kubelet's projected token is one).
async function readCredentialFile(file: string, what: string): Promise<string> {
  const handle = await open(file, kOpenFlags);
  let text: string;
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new Error(`${what} ${file} is not a regular file`);
    if (info.size > kMaxCredentialFileBytes) throw new Error(`${what} ${file} is larger than ${kMaxCredentialFileBytes} bytes`);
    // Read to the end, but never more than the cap (the file may have grown since the fstat).
    const buf = Buffer.alloc(kMaxCredentialFileBytes + 1);
    let n = 0;
    while (n < buf.length) {
      const { bytesRead } = await handle.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    if (n > kMaxCredentialFileBytes) throw new Error(`${what} ${file} is larger than ${kMaxCredentialFileBytes} bytes`);
    text = buf.subarray(0, n).toString('utf8');
  } finally {
    await handle.close();
  }
  const value = text.trim();
  if (value.length === 0) throw new Error(`${what} ${file} is empty`);
  return value;
}

// The CA bundle file, the same way but synchronously (the constructor reads it).
function readCaFile(file: string): string {
  let fd: number;
  try {
    fd = openSync(file, kOpenFlags);
  } catch (err) {
    throw new Error(`cannot read the CA bundle ${file}: ${(err as Error).message}`);
  }
  try {
    const info = fstatSync(fd);
    if (!info.isFile()) throw new Error(`the CA bundle ${file} is not a regular file`);
    if (info.size > kMaxCaBundleBytes) throw new Error(`the CA bundle ${file} is larger than ${kMaxCaBundleBytes} bytes`);
    const buf = Buffer.alloc(kMaxCaBundleBytes + 1);
    let n = 0;
    while (n < buf.length) {
      const got = readSync(fd, buf, n, buf.length - n, n);
      if (got === 0) break;
      n += got;
    }
    if (n > kMaxCaBundleBytes) throw new Error(`the CA bundle ${file} is larger than ${kMaxCaBundleBytes} bytes`);
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

// A CA bundle must hold at least one certificate, and every certificate in it must parse: an empty
// or broken bundle is an error, never "trust the system roots" in disguise.
function checkCaBundle(pem: string, source: string): string {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error(`the CA bundle ${source} holds no PEM certificate`);
  if (blocks.length > kMaxCaCertificates) throw new Error(`the CA bundle ${source} holds more than ${kMaxCaCertificates} certificates`);
  blocks.forEach((block, i) => {
    try {
      new X509Certificate(block);
    } catch (err) {
      throw new Error(`the CA bundle ${source}: certificate ${i + 1} does not parse (${(err as Error).message})`);
    }
  });
  return pem;
}

// The messages in a 403's errors, multierror texts ("2 errors occurred:\n\t* a\n\t* b") split.
function errorMessages(err: VaultError): string[] {
  const out: string[] = [];
  for (const e of err.errors) {
    if (/^\d+ errors? occurred:/.test(e.trim())) {
      for (const line of e.split('\n')) {
        const m = /^\s*\*\s*(.*)$/.exec(line);
        if (m?.[1]) out.push(m[1].trim());
      }
    } else if (e.trim().length > 0) {
      out.push(e.trim());
    }
  }
  return out;
}

// lookup-self refused with more than "permission denied" (strongroom and Vault add "invalid
// token" for a revoked or expired token): the token itself is dead.
function saysTokenDead(err: VaultError): boolean {
  return errorMessages(err).some((m) => m !== 'permission denied');
}

function isAuthInfo(value: unknown): value is AuthInfo {
  if (typeof value !== 'object' || value === null) return false;
  const a = value as Record<string, unknown>;
  return typeof a.client_token === 'string' && a.client_token.length > 0 && typeof a.lease_duration === 'number';
}

export class StrongroomClient {
  readonly address: string;
  readonly namespace: string | undefined;
  readonly #transport: Transport;
  readonly #maxRetries: number;
  readonly #retryBaseMs: number;
  readonly #retryMaxMs: number;
  readonly #autoRenew: boolean;
  readonly #log: Logger;
  #auth: AuthMethod | undefined;
  #token: string | undefined;
  /** The token last seen accepted (a 2xx with it, or its login). */
  #provenToken: string | undefined;
  #plan: Plan | undefined;
  /** When the current token's TTL runs out (ms since the epoch), when it has one. */
  #expiresAt: number | undefined;
  /** Bumped by setToken() and revokeSelf(): a login or renewal begun before does not overwrite them. */
  #generation = 0;
  #lastGrant: number | undefined;
  /** When the current token came from a login. */
  #loggedInAt: number | undefined;
  /** When a login last followed a lookup-self refusal that did not say the token was dead. */
  #lastUncertainRecovery: number | undefined;
  #failures = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #loginInFlight: Promise<AuthInfo> | undefined;
  #refreshInFlight: Promise<void> | undefined;
  #checkInFlight: { token: string; result: Promise<boolean> } | undefined;
  #closed = false;

  constructor(options: ClientOptions = {}) {
    const env = options.env ?? process.env;
    const address = options.address ?? env.VAULT_ADDR ?? 'https://127.0.0.1:8200';
    let parsed: URL;
    try {
      parsed = new URL(address);
    } catch {
      throw new TypeError(`server address "${address}" is not a URL`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new TypeError(`server address "${address}" is neither http:// nor https://`);
    }
    this.address = parsed.href.replace(/\/+$/, '');
    this.namespace = options.namespace ?? (env.VAULT_NAMESPACE || undefined);
    // An unset or empty VAULT_CACERT means the system roots (as with Vault's tools); a bundle that
    // is given must be readable and hold certificates that parse.
    let ca: string | undefined;
    const caFile = options.caCertFile ?? (env.VAULT_CACERT || undefined);
    if (options.caCert !== undefined) ca = checkCaBundle(options.caCert, '(caCert option)');
    else if (caFile !== undefined) ca = checkCaBundle(readCaFile(caFile), caFile);
    this.#transport = new Transport({
      ca,
      timeoutMs: options.timeoutMs ?? 30_000,
      maxResponseBytes: options.maxResponseBytes ?? 32 * 1024 * 1024,
    });
    this.#maxRetries = Math.max(0, options.maxRetries ?? 3);
    this.#retryBaseMs = Math.max(1, options.retryBaseMs ?? 100);
    this.#retryMaxMs = Math.max(this.#retryBaseMs, options.retryMaxMs ?? 2000);
    this.#autoRenew = options.autoRenew ?? true;
    this.#log = options.logger ?? (() => {});
    this.#auth = options.auth;
    if (options.token !== undefined) this.#token = options.token;
    else if (options.auth === undefined && env.VAULT_TOKEN) this.#token = env.VAULT_TOKEN;
  }

  /**
   * A client configured from the environment: VAULT_ADDR, VAULT_CACERT, VAULT_NAMESPACE, and the
   * first of VAULT_TOKEN (a token), VAULT_TOKEN_FILE (a token file, e.g. an agent's sink),
   * STRONGROOM_KUBERNETES_ROLE or `defaults.kubernetesRole` (Kubernetes login; mount
   * STRONGROOM_KUBERNETES_MOUNT, token file STRONGROOM_KUBERNETES_TOKEN_PATH). With a token or
   * token file the client looks the token up, renews it and re-reads the file when it dies.
   */
  static fromEnv(defaults: Omit<ClientOptions, 'auth' | 'token'> & { kubernetesRole?: string } = {}): StrongroomClient {
    const { kubernetesRole, ...options } = defaults;
    const env = options.env ?? process.env;
    const auth = authFromEnv(env, kubernetesRole);
    return new StrongroomClient({ ...options, env, ...(auth ? { auth } : {}) });
  }

  /** The token in use (undefined before the first login). */
  get token(): string | undefined {
    return this.#token;
  }

  /** Use this token from now on, as is (no renewal until a login or renewSelf). */
  setToken(token: string): void {
    this.#generation++;
    this.#token = token;
    this.#provenToken = undefined;
    this.#loggedInAt = undefined;
    this.#plan = undefined;
    this.#expiresAt = undefined;
    this.#clearTimer();
  }

  /** Stops background renewal (the token stays valid until it expires). */
  close(): void {
    this.#closed = true;
    this.#clearTimer();
  }

  // --- logins and the token's life ----------------------------------------------------------------

  /**
   * Logs in with `method` (which then becomes the client's method for logging in again), or with
   * the configured one. Concurrent calls share one login.
   */
  login(method?: AuthMethod): Promise<AuthInfo> {
    if (method !== undefined) this.#auth = method;
    if (this.#auth === undefined) return Promise.reject(new Error('no auth method configured'));
    return this.#login();
  }

  #login(): Promise<AuthInfo> {
    if (this.#loginInFlight) return this.#loginInFlight;
    const auth = this.#auth;
    if (auth === undefined) return Promise.reject(new Error('no auth method configured to log in again'));
    const generation = this.#generation;
    const flight = (async () => {
      try {
        const info = await this.#doLogin(auth);
        if (this.#generation !== generation) {
          // setToken() or revokeSelf() came while this login ran: they win.
          this.#log('info', `logged in (${auth.type}), but the token was set or revoked meanwhile: not using the new token`);
          return info;
        }
        this.#failures = 0;
        this.#lastGrant = undefined;
        this.#loggedInAt = Date.now();
        this.#adopt(info);
        this.#log('info', `logged in (${auth.type}), token ttl ${info.lease_duration}s, renewable ${info.renewable}`);
        return info;
      } finally {
        this.#loginInFlight = undefined;
      }
    })();
    this.#loginInFlight = flight;
    return flight;
  }

  async #doLogin(auth: AuthMethod): Promise<AuthInfo> {
    if (auth.type === 'token') {
      const token = auth.token ?? (auth.tokenPath !== undefined ? await readCredentialFile(auth.tokenPath, 'token file') : undefined);
      if (token === undefined) throw new Error('token auth needs a token or a tokenPath');
      const res = await this.#send<TokenLookup>({ method: 'GET', path: 'auth/token/lookup-self', token: { value: token } });
      const data = res?.data;
      if (!data || typeof data.ttl !== 'number') throw new Error('auth/token/lookup-self answered without data.ttl');
      return {
        client_token: token, accessor: data.accessor, policies: data.policies, token_policies: data.policies,
        metadata: data.meta, lease_duration: data.ttl, renewable: data.renewable === true,
        entity_id: data.entity_id, token_type: typeof data.type === 'string' ? data.type : 'service', orphan: data.orphan === true,
      };
    }
    let path: string;
    let body: Record<string, string>;
    if (auth.type === 'kubernetes') {
      const jwt = auth.jwt ?? await readCredentialFile(auth.tokenPath ?? DEFAULT_KUBERNETES_TOKEN_PATH, 'service-account token');
      path = `auth/${cleanMount(auth.mount ?? 'kubernetes')}/login`;
      body = { role: auth.role, jwt };
    } else if (auth.type === 'approle') {
      const secretId = auth.secretId ??
        (auth.secretIdPath !== undefined ? await readCredentialFile(auth.secretIdPath, 'secret ID file') : undefined);
      path = `auth/${cleanMount(auth.mount ?? 'approle')}/login`;
      body = { role_id: auth.roleId, ...(secretId !== undefined ? { secret_id: secretId } : {}) };
    } else {
      throw new TypeError(`unknown auth method ${(auth as { type: unknown }).type}`);
    }
    const res = await this.#send({ method: 'POST', path, body, token: 'none' });
    if (!isAuthInfo(res?.auth)) throw new Error(`${path} answered without an auth block`);
    return res.auth;
  }

  // Takes `info` as the client's token and plans its next renewal or login at 2/3 of its TTL.
  #adopt(info: AuthInfo, renewal = false): void {
    this.#token = info.client_token;
    this.#provenToken = info.client_token;
    const ttl = info.lease_duration;
    this.#expiresAt = ttl > 0 ? Date.now() + ttl * 1000 : undefined;
    if (!(ttl > 0)) {
      // No expiry (a root token) or nothing to plan.
      this.#plan = undefined;
      this.#clearTimer();
      return;
    }
    // A renewal granting less than the previous grant has met max_ttl: the next step is a login.
    const capped = renewal && this.#lastGrant !== undefined && ttl < this.#lastGrant;
    this.#lastGrant = ttl;
    const canLogin = this.#auth !== undefined;
    let kind: Plan['kind'] = 'renew';
    if ((capped || !info.renewable) && canLogin) kind = 'login';
    if (!info.renewable && !canLogin) {
      this.#plan = undefined;
      this.#clearTimer();
      return;
    }
    this.#schedule({ at: Date.now() + (ttl * 1000 * 2) / 3, kind });
  }

  #schedule(plan: Plan): void {
    this.#plan = plan;
    this.#clearTimer();
    if (!this.#autoRenew || this.#closed) return;
    const delay = Math.min(kMaxTimerMs, Math.max(0, plan.at - Date.now()));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#refresh().catch((err: unknown) => this.#log('warn', `token refresh failed: ${(err as Error).message}`));
    }, delay);
    // Renewal must not keep a process alive that has nothing else to do.
    this.#timer.unref?.();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  // Renews (or logs in, as planned); a failed renewal falls back to a login. One at a time.
  // Nothing is done over a token that another path (a login, setToken(), revokeSelf()) replaced
  // meanwhile.
  #refresh(): Promise<void> {
    if (this.#refreshInFlight) return this.#refreshInFlight;
    const flight = (async () => {
      const plan = this.#plan;
      const token = this.#token;
      const generation = this.#generation;
      const replaced = () => this.#token !== token || this.#generation !== generation;
      try {
        if (plan?.kind === 'renew' && token !== undefined) {
          try {
            const res = await this.#send({ method: 'POST', path: 'auth/token/renew-self', body: {}, token: { value: token } });
            if (!isAuthInfo(res?.auth)) throw new Error('auth/token/renew-self answered without an auth block');
            if (!replaced()) this.#adopt(res.auth, true);
            this.#failures = 0;
            this.#log('debug', `token renewed, ttl ${res.auth.lease_duration}s`);
            return;
          } catch (err) {
            if (replaced()) return; // someone else already put another token in place
            if (this.#auth === undefined) throw err;
            this.#log('warn', `token renewal failed (${(err as Error).message.split('\n').pop()}); logging in again`);
          }
        }
        await this.#login();
      } catch (err) {
        // Try again later, backing off, but not after the token's planned end.
        if (!replaced()) {
          this.#failures++;
          const backoff = Math.min(60_000, 1000 * 2 ** Math.min(this.#failures - 1, 6));
          const now = Date.now();
          let at = now + backoff;
          const end = this.#expiresAt;
          if (end !== undefined && end > now) at = Math.min(at, Math.max(now + kMinRetryMs, end - kEndMarginMs));
          this.#schedule({ at, kind: this.#auth !== undefined ? 'login' : 'renew' });
        }
        throw err;
      } finally {
        this.#refreshInFlight = undefined;
      }
    })();
    this.#refreshInFlight = flight;
    return flight;
  }

  // The token for the next request: logs in first when there is none, renews when due.
  async #currentToken(): Promise<string | undefined> {
    if (this.#token === undefined) {
      if (this.#auth === undefined) return undefined;
      await this.#login();
      return this.#token;
    }
    if (this.#plan !== undefined && Date.now() >= this.#plan.at) {
      try {
        await this.#refresh();
      } catch (err) {
        // The old token may still be good until it expires; the request will tell.
        this.#log('warn', `token refresh failed: ${(err as Error).message}`);
      }
    }
    return this.#token;
  }

  // After a 403 on a token that worked before: is the token itself dead? (One lookup however many
  // requests were refused with it.) Dead means a login, and true: send again. lookup-self refused
  // with "invalid token" (or any reason besides "permission denied") proves it dead. "permission
  // denied" alone may just mean the token may not look itself up: then a login only for a token
  // older than 30 s and at most one such login per 30 s, so a role without lookup-self cannot turn
  // every refusal by policy into a login.
  #recover(token: string): Promise<boolean> {
    if (this.#checkInFlight?.token === token) return this.#checkInFlight.result;
    const result = (async () => {
      let certain: boolean;
      try {
        await this.#send({ method: 'GET', path: 'auth/token/lookup-self', token: { value: token } });
        return false; // the token lives: the refusal is the policy's
      } catch (err) {
        if (!(err instanceof VaultError && err.status === 403)) return false;
        certain = saysTokenDead(err);
      }
      if (this.#token !== token) return true; // someone logged in meanwhile
      if (!certain) {
        const now = Date.now();
        const young = this.#loggedInAt !== undefined && now - this.#loggedInAt < kUncertainRecoveryMs;
        const recent = this.#lastUncertainRecovery !== undefined && now - this.#lastUncertainRecovery < kUncertainRecoveryMs;
        if (young || recent) {
          this.#log('debug', 'lookup-self refused too ("permission denied" only): taking the refusal as the policy\'s');
          return false;
        }
        this.#lastUncertainRecovery = now;
      }
      this.#log('warn', `the token was refused (${certain ? 'revoked or expired' : 'lookup-self refused as well'}); logging in again`);
      await this.#login();
      return true;
    })();
    const entry = { token, result };
    this.#checkInFlight = entry;
    result.finally(() => {
      if (this.#checkInFlight === entry) this.#checkInFlight = undefined;
    }).catch(() => {});
    return result;
  }

  // --- requests -----------------------------------------------------------------------------------

  /** @internal One API call with the token's care: login, renewal, and login again once after a
   *  403 on a token that had worked. */
  async request<T = Record<string, unknown>>(spec: RequestSpec): Promise<SecretResponse<T> | null> {
    if ((spec.token ?? 'client') !== 'client') return this.#send<T>(spec);
    const token = await this.#currentToken();
    try {
      return await this.#send<T>({ ...spec, token: token === undefined ? 'none' : { value: token } });
    } catch (err) {
      if (!(err instanceof VaultError && err.isPermissionDenied) || token === undefined || this.#auth === undefined) throw err;
      if (this.#token !== undefined && this.#token !== token) {
        // Another request logged in meanwhile: the refusal may be the old token's.
        return this.#send<T>({ ...spec, token: { value: this.#token } });
      }
      if (this.#provenToken !== token) throw err;
      if (!(await this.#recover(token)) || this.#token === undefined) throw err;
      return this.#send<T>({ ...spec, token: { value: this.#token } });
    }
  }

  // One call. GET and LIST are retried after a failure before the request was written (refused,
  // unresolved, no connection in time) and after 502, 503 or 504; nothing else is.
  async #send<T>(spec: RequestSpec): Promise<SecretResponse<T> | null> {
    const list = spec.method === 'LIST';
    const method = list ? 'GET' : spec.method;
    const url = new URL(`${this.address}/v1/${encodePath(spec.path)}`);
    for (const [k, v] of Object.entries(spec.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    if (list) url.searchParams.set('list', 'true');
    const headers: Record<string, string> = { 'X-Vault-Request': 'true' };
    const token = typeof spec.token === 'object' ? spec.token.value : undefined;
    if (token !== undefined) headers['X-Vault-Token'] = token;
    if (this.namespace !== undefined) headers['X-Vault-Namespace'] = this.namespace;
    if (spec.wrapTtl !== undefined) headers['X-Vault-Wrap-TTL'] = wrapTtlHeader(spec.wrapTtl);
    let body: string | undefined;
    if (spec.body !== undefined) {
      body = JSON.stringify(spec.body);
      headers['Content-Type'] = spec.contentType ?? 'application/json';
    }
    const idempotent = method === 'GET';
    const shownMethod = list ? 'LIST' : method;
    for (let attempt = 0; ; attempt++) {
      const retry = idempotent && attempt < this.#maxRetries;
      let raw;
      try {
        raw = await this.#transport.send(method, url, headers, body);
      } catch (err) {
        if (!retry || !isConnectPhase(err)) throw err;
        this.#log('debug', `${shownMethod} ${url.pathname}: ${(err as Error).message}; retrying`);
        await sleep(this.#backoff(attempt));
        continue;
      }
      if (kRetryStatuses.has(raw.status) && retry) {
        this.#log('debug', `${shownMethod} ${url.pathname}: status ${raw.status}; retrying`);
        await sleep(this.#backoff(attempt));
        continue;
      }
      let parsed: unknown = null;
      let parseFailed = false;
      if (raw.body.trim().length > 0) {
        try {
          parsed = JSON.parse(raw.body);
        } catch {
          parseFailed = true;
        }
      }
      if (raw.status >= 200 && raw.status < 300) {
        if (parseFailed) throw new ConnectionError(`status ${raw.status} with a body that is not JSON`, shownMethod, raw.url);
        if (token !== undefined && token === this.#token) this.#provenToken = token;
        return parsed as SecretResponse<T> | null;
      }
      let errors: string[] = [];
      if (typeof parsed === 'object' && parsed !== null && Array.isArray((parsed as { errors?: unknown }).errors)) {
        errors = ((parsed as { errors: unknown[] }).errors)
          .slice(0, kMaxErrorStrings).map((e) => (typeof e === 'string' ? e : JSON.stringify(e)));
      }
      throw new VaultError(raw.status, errors, shownMethod, raw.url, parsed, parseFailed ? raw.body : undefined);
    }
  }

  #backoff(attempt: number): number {
    const ceiling = Math.min(this.#retryMaxMs, this.#retryBaseMs * 2 ** attempt);
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  // --- generic logical API ------------------------------------------------------------------------

  /**
   * GET /v1/<path>. A missing path is a VaultError with status 404. With `options.wrapTtl` the
   * answer is response-wrapped: its `wrap_info` holds the wrapping token (see unwrap()).
   */
  async read<T = Record<string, unknown>>(path: string, query?: Record<string, string | number | undefined>,
      options: CallOptions = {}): Promise<SecretResponse<T>> {
    const res = await this.request<T>({ method: 'GET', path, ...(query ? { query } : {}), wrapTtl: options.wrapTtl });
    if (res === null) throw new ConnectionError('empty answer to a read', 'GET', `${this.address}/v1/${path}`);
    return res;
  }

  /** PUT /v1/<path> with `data` as the JSON body; null when the server answers 204. `options` as read's. */
  write<T = Record<string, unknown>>(path: string, data: Record<string, unknown> = {}, options: CallOptions = {}):
      Promise<SecretResponse<T> | null> {
    return this.request<T>({ method: 'PUT', path, body: data, wrapTtl: options.wrapTtl });
  }

  /** LIST /v1/<path>: the keys, or [] when there is nothing under the path (404). */
  async list(path: string): Promise<string[]> {
    try {
      const res = await this.request<{ keys?: unknown }>({ method: 'LIST', path });
      const keys = res?.data?.keys;
      return Array.isArray(keys) ? keys.filter((k): k is string => typeof k === 'string') : [];
    } catch (err) {
      if (err instanceof VaultError && err.status === 404) return [];
      throw err;
    }
  }

  /** DELETE /v1/<path>. `options` as read's. */
  delete<T = Record<string, unknown>>(path: string, query?: Record<string, string | number | undefined>,
      options: CallOptions = {}): Promise<SecretResponse<T> | null> {
    return this.request<T>({ method: 'DELETE', path, ...(query ? { query } : {}), wrapTtl: options.wrapTtl });
  }

  /** PATCH /v1/<path> with a JSON merge patch (RFC 7386), as `vault patch` sends it. `options` as read's. */
  patch<T = Record<string, unknown>>(path: string, data: Record<string, unknown>, options: CallOptions = {}):
      Promise<SecretResponse<T> | null> {
    return this.request<T>({
      method: 'PATCH', path, body: data, contentType: 'application/merge-patch+json', wrapTtl: options.wrapTtl,
    });
  }

  // --- response wrapping (sys/wrapping) -------------------------------------------------------------

  /**
   * sys/wrapping/unwrap: the answer a wrapping token holds (its data, or its auth for a wrapped
   * login), as Vault's clients do it: with no argument the client's own token is the wrapping
   * token; a given token goes in the body, unless the client has no token and no auth method, or
   * it is the client's own token, when it is the request's token. A wrapping token opens once: a
   * second unwrap is a VaultError 400 "wrapping token is not valid or does not exist" (someone
   * else may have opened it). Never retried, and a refusal never leads to a login.
   */
  async unwrap<T = Record<string, unknown>>(wrappingToken?: string): Promise<SecretResponse<T>> {
    const given = wrappingToken?.trim();
    const path = 'sys/wrapping/unwrap';
    let res: SecretResponse<T> | null;
    if (given === undefined || given.length === 0 || given === this.#token ||
        (this.#token === undefined && this.#auth === undefined)) {
      const token = given !== undefined && given.length > 0 ? given : this.#token;
      if (token === undefined) throw new Error('no wrapping token: give one, or set the client\'s token to it');
      res = await this.#send<T>({ method: 'POST', path, body: {}, token: { value: token } });
    } else {
      res = await this.request<T>({ method: 'POST', path, body: { token: given } });
    }
    if (res === null) throw new ConnectionError('empty answer to an unwrap', 'POST', `${this.address}/v1/${path}`);
    return res;
  }

  /** sys/wrapping/lookup: where and when a wrapping token was made, without opening it (no token sent). */
  async wrapLookup(wrappingToken: string): Promise<WrapLookup> {
    const res = await this.#send<WrapLookup>({
      method: 'POST', path: 'sys/wrapping/lookup', body: { token: wrappingToken.trim() }, token: 'none',
    });
    if (!res?.data || typeof res.data.creation_path !== 'string') throw new Error('sys/wrapping/lookup answered without data');
    return res.data;
  }

  /** sys/wrapping/wrap: `data` in a new wrapping token living `ttl` ("5m" or seconds). */
  async wrap(data: Record<string, unknown>, ttl: string | number): Promise<WrapInfo> {
    const res = await this.request({ method: 'POST', path: 'sys/wrapping/wrap', body: data, wrapTtl: ttl });
    if (!isWrapInfo(res?.wrap_info)) throw new Error('sys/wrapping/wrap answered without wrap_info');
    return res.wrap_info;
  }

  /** sys/wrapping/rewrap: the same answer in a new wrapping token (the old one stops working). */
  async rewrap(wrappingToken: string): Promise<WrapInfo> {
    const res = await this.request({ method: 'POST', path: 'sys/wrapping/rewrap', body: { token: wrappingToken.trim() } });
    if (!isWrapInfo(res?.wrap_info)) throw new Error('sys/wrapping/rewrap answered without wrap_info');
    return res.wrap_info;
  }

  // --- engines ------------------------------------------------------------------------------------

  /** KV version 2 at `mount` (default "secret"). */
  kv(mount = 'secret'): KvV2 {
    return new KvV2(this, cleanMount(mount));
  }

  /** Transit at `mount` (default "transit"). */
  transit(mount = 'transit'): Transit {
    return new Transit(this, cleanMount(mount));
  }

  // --- the token itself ---------------------------------------------------------------------------

  /** auth/token/lookup-self: the token's data (ttl, policies, ...). */
  async lookupSelf(): Promise<TokenLookup> {
    return (await this.read<TokenLookup>('auth/token/lookup-self')).data;
  }

  /** auth/token/renew-self, optionally asking for `increment` ("1h" or seconds). */
  async renewSelf(increment?: string | number): Promise<AuthInfo> {
    const token = this.#token;
    const res = await this.request({
      method: 'POST', path: 'auth/token/renew-self', body: increment === undefined ? {} : { increment },
    });
    if (!isAuthInfo(res?.auth)) throw new Error('auth/token/renew-self answered without an auth block');
    if (token !== undefined && this.#token === token && res.auth.client_token === token) this.#adopt(res.auth, true);
    return res.auth;
  }

  /** auth/token/revoke-self; the client forgets the token and stops renewing it. */
  async revokeSelf(): Promise<void> {
    await this.request({ method: 'POST', path: 'auth/token/revoke-self', body: {} });
    this.#generation++;
    this.#token = undefined;
    this.#provenToken = undefined;
    this.#plan = undefined;
    this.#expiresAt = undefined;
    this.#clearTimer();
  }
}

/** The auth method the environment describes (see StrongroomClient.fromEnv), if any. */
export function authFromEnv(env: Record<string, string | undefined>, kubernetesRole?: string): AuthMethod | undefined {
  if (env.VAULT_TOKEN) return { type: 'token', token: env.VAULT_TOKEN };
  if (env.VAULT_TOKEN_FILE) return { type: 'token', tokenPath: env.VAULT_TOKEN_FILE };
  const role = env.STRONGROOM_KUBERNETES_ROLE || kubernetesRole;
  if (role) {
    return {
      type: 'kubernetes', role,
      mount: env.STRONGROOM_KUBERNETES_MOUNT || 'kubernetes',
      tokenPath: env.STRONGROOM_KUBERNETES_TOKEN_PATH || DEFAULT_KUBERNETES_TOKEN_PATH,
    };
  }
  return undefined;
}
