// The lobstack API's secrets module (`@/lib/vault` in the application; also published as
// `@strongroom/client/lobstack`): five functions on the reference set-up's paths
// (docs/reference-setup.md), with the `lobstack-api` policy:
//
//   getApiKeys()                 secret/data/lobstack/api-keys (read), cached; each key falls back
//                                to its environment variable
//   setAgentSecret(id, data)     secret/data/lobstack/agent/<id> (create/update: a new version)
//   deleteAgentSecret(id)        secret/data/lobstack/agent/<id> (delete: the latest version only)
//   encrypt(text) / decrypt(ct)  transit/encrypt/lobstack, transit/decrypt/lobstack
//
// Configuration, all from the environment (read at the first call):
//   VAULT_ADDR, VAULT_CACERT, VAULT_NAMESPACE   the server
//   VAULT_TOKEN | VAULT_TOKEN_FILE              a token, or a file an agent's sink keeps fresh;
//                                               otherwise Kubernetes login with role
//                                               STRONGROOM_KUBERNETES_ROLE (default lobstack-api)
//                                               and the pod's service-account token
//   STRONGROOM_API_KEYS_CACHE_SECONDS           how long getApiKeys keeps its answer (default 300)
//   STRONGROOM_API_KEYS_TIMEOUT_SECONDS         how long getApiKeys waits for strongroom before
//                                               it falls back (default 5)
//   ANTHROPIC_API_KEY, OPENAI_API_KEY, STRIPE_SECRET_KEY   the fallbacks
//
// In the application, import from '@strongroom/client' instead of '../src/index.js'.

import { StrongroomClient, VaultError } from '../src/index.js';

export interface ApiKeys {
  anthropicApiKey: string | undefined;
  openaiApiKey: string | undefined;
  stripeSecretKey: string | undefined;
}

const API_KEYS_PATH = 'lobstack/api-keys';
const AGENT_PATH = 'lobstack/agent';
const TRANSIT_KEY = 'lobstack';
const DEFAULT_CACHE_SECONDS = 300;
const DEFAULT_TIMEOUT_SECONDS = 5;
// After a failed or malformed fetch the answer is kept this long at most, so strongroom is asked again soon.
const FAILURE_CACHE_SECONDS = 30;
const MAX_AGENT_ID_LENGTH = 128;

// Each key: its field in secret/data/lobstack/api-keys and its environment variable.
const KEYS: ReadonlyArray<{ name: keyof ApiKeys; field: string; env: string }> = [
  { name: 'anthropicApiKey', field: 'anthropic_api_key', env: 'ANTHROPIC_API_KEY' },
  { name: 'openaiApiKey', field: 'openai_api_key', env: 'OPENAI_API_KEY' },
  { name: 'stripeSecretKey', field: 'stripe_secret_key', env: 'STRIPE_SECRET_KEY' },
];

let client: StrongroomClient | undefined;
let cached: { keys: ApiKeys; until: number } | undefined;
let refreshing: Promise<ApiKeys> | undefined;
/** The last values strongroom gave, served (before the environment) while it cannot be reached. */
let lastFromServer: Partial<ApiKeys> = {};

function log(message: string): void {
  console.info(`lobstack-vault: ${message}`);
}

function warn(message: string): void {
  console.warn(`lobstack-vault: ${message}`);
}

function getClient(): StrongroomClient {
  client ??= StrongroomClient.fromEnv({
    kubernetesRole: 'lobstack-api',
    logger: (level, message) => {
      if (level !== 'debug') log(`${level}: ${message}`);
    },
  });
  return client;
}

function cacheMs(): number {
  const raw = process.env.STRONGROOM_API_KEYS_CACHE_SECONDS;
  const seconds = raw === undefined || raw === '' ? DEFAULT_CACHE_SECONDS : Number(raw);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : DEFAULT_CACHE_SECONDS * 1000;
}

function timeoutMs(): number {
  const raw = process.env.STRONGROOM_API_KEYS_TIMEOUT_SECONDS;
  const seconds = raw === undefined || raw === '' ? DEFAULT_TIMEOUT_SECONDS : Number(raw);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : DEFAULT_TIMEOUT_SECONDS * 1000;
}

// `promise`, or a rejection after `ms` (the request itself runs on, bounded by the client's timeout).
function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    timer.unref?.();
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// Only the server's own word makes the secret absent: a 404 whose JSON body has an `errors` array,
// or KV v2's 404 for a deleted or destroyed latest version (data.metadata with deletion_time set
// or destroyed). Anything else (a proxy's HTML 404, a 404 of another shape) is a failure.
function saysAbsent(err: unknown): boolean {
  if (!(err instanceof VaultError) || err.status !== 404 || !isObject(err.body)) return false;
  if (Array.isArray(err.body.errors)) return true;
  const metadata = isObject(err.body.data) ? err.body.data.metadata : undefined;
  return isObject(metadata) &&
    ((typeof metadata.deletion_time === 'string' && metadata.deletion_time !== '') || metadata.destroyed === true);
}

function agentPath(agentId: string): string {
  if (typeof agentId !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(agentId) || agentId.length > MAX_AGENT_ID_LENGTH) {
    throw new TypeError(`agent id must be 1-${MAX_AGENT_ID_LENGTH} characters of A-Z a-z 0-9 . _ - (not starting with . _ -)`);
  }
  return `${AGENT_PATH}/${agentId}`;
}

type Outcome =
  | { kind: 'read'; data: Record<string, unknown> }
  | { kind: 'absent' }
  | { kind: 'failed'; reason: string };

async function readSecret(): Promise<Outcome> {
  try {
    const res = await withDeadline(getClient().read(`secret/data/${API_KEYS_PATH}`), timeoutMs());
    const data = isObject(res.data) ? res.data.data : undefined;
    return isObject(data) ? { kind: 'read', data } : { kind: 'failed', reason: 'the answer has no data object' };
  } catch (err) {
    if (saysAbsent(err)) return { kind: 'absent' };
    return { kind: 'failed', reason: (err as Error).message.split('\n').filter(Boolean).pop() ?? 'error' };
  }
}

async function fetchApiKeys(): Promise<ApiKeys> {
  const outcome = await readSecret();
  const keys: ApiKeys = { anthropicApiKey: undefined, openaiApiKey: undefined, stripeSecretKey: undefined };
  const fromServer: Partial<ApiKeys> = {};
  const sources: string[] = [];
  const problems: string[] = [];
  for (const { name, field, env } of KEYS) {
    const value = outcome.kind === 'read' ? outcome.data[field] : undefined;
    if (typeof value === 'string' && value.length > 0) {
      keys[name] = value;
      fromServer[name] = value;
      sources.push(`${name} from strongroom`);
      continue;
    }
    if (outcome.kind === 'read') problems.push(`${field} ${value === undefined ? 'missing' : value === '' ? 'empty' : 'not a string'}`);
    const last = lastFromServer[name];
    if (outcome.kind !== 'absent' && last !== undefined) {
      keys[name] = last;
      fromServer[name] = last;
      sources.push(`${name} from strongroom (last known value)`);
    } else if (process.env[env]) {
      keys[name] = process.env[env];
      sources.push(`${name} from environment ${env}`);
    } else {
      sources.push(`${name} not set (neither strongroom nor ${env})`);
    }
  }
  // A failure, or an answer without every field: the last values stand and strongroom is asked
  // again within 30 s.
  const degraded = outcome.kind === 'failed' || problems.length > 0;
  if (outcome.kind === 'failed') warn(`strongroom unreachable or refused (${outcome.reason}); using fallbacks`);
  if (problems.length > 0) warn(`secret/data/${API_KEYS_PATH}: ${problems.join(', ')}; using fallbacks for those keys`);
  (degraded ? warn : log)(`api keys: ${sources.join(', ')}`);
  if (outcome.kind === 'absent') lastFromServer = {};
  else if (outcome.kind === 'read') lastFromServer = fromServer;
  const ttl = degraded ? Math.min(cacheMs(), FAILURE_CACHE_SECONDS * 1000) : cacheMs();
  cached = { keys, until: Date.now() + ttl };
  return keys;
}

function refresh(): Promise<ApiKeys> {
  refreshing ??= fetchApiKeys().finally(() => {
    refreshing = undefined;
  });
  return refreshing;
}

/**
 * The platform's API keys: from strongroom (secret/data/lobstack/api-keys, fields
 * anthropic_api_key, openai_api_key, stripe_secret_key), each falling back to its last value from
 * strongroom, then to ANTHROPIC_API_KEY, OPENAI_API_KEY, STRIPE_SECRET_KEY. Cached
 * (STRONGROOM_API_KEYS_CACHE_SECONDS, default 300); an expired cache is still served at once
 * while one refresh runs behind it. Waits at most STRONGROOM_API_KEYS_TIMEOUT_SECONDS (default 5)
 * for strongroom. Never throws.
 */
export async function getApiKeys(): Promise<ApiKeys> {
  if (cached !== undefined) {
    if (Date.now() >= cached.until) void refresh().catch(() => {});
    return { ...cached.keys };
  }
  return { ...(await refresh()) };
}

/** Writes agent `agentId`'s secrets (a new KV version replacing all fields). */
export async function setAgentSecret(agentId: string, data: Record<string, string>): Promise<void> {
  for (const [k, v] of Object.entries(data)) {
    if (typeof v !== 'string') throw new TypeError(`agent secret field ${k} is not a string`);
  }
  await getClient().kv('secret').put(agentPath(agentId), data);
}

/**
 * Soft-deletes the latest version of agent `agentId`'s secrets (what `lobstack-api`'s delete
 * capability on secret/data/lobstack/agent/* allows): reads of the secret then answer 404.
 * It does not remove older versions (still readable with ?version=N), the metadata or the key
 * in listings, and the version can be undeleted; destroying them needs an operator's token with
 * delete on secret/metadata/lobstack/agent/* (`vault kv metadata delete`). Deleting an agent
 * that has no secret succeeds.
 */
export async function deleteAgentSecret(agentId: string): Promise<void> {
  await getClient().kv('secret').delete(agentPath(agentId));
}

/** `plaintext` (UTF-8) encrypted with Transit key `lobstack`: "vault:v<N>:...". */
export async function encrypt(plaintext: string): Promise<string> {
  if (typeof plaintext !== 'string') throw new TypeError('encrypt takes a string');
  return getClient().transit('transit').encrypt(TRANSIT_KEY, plaintext);
}

/** The UTF-8 plaintext of a ciphertext from encrypt(). */
export async function decrypt(ciphertext: string): Promise<string> {
  if (typeof ciphertext !== 'string') throw new TypeError('decrypt takes a string');
  return getClient().transit('transit').decryptText(TRANSIT_KEY, ciphertext);
}
