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
// After a failed fetch the fallback answer is kept this long at most, so strongroom is asked again soon.
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

function agentPath(agentId: string): string {
  if (typeof agentId !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(agentId) || agentId.length > MAX_AGENT_ID_LENGTH) {
    throw new TypeError(`agent id must be 1-${MAX_AGENT_ID_LENGTH} characters of A-Z a-z 0-9 . _ - (not starting with . _ -)`);
  }
  return `${AGENT_PATH}/${agentId}`;
}

async function fetchApiKeys(): Promise<ApiKeys> {
  let data: Record<string, unknown> | undefined;
  let failure: string | undefined;
  try {
    data = (await getClient().kv('secret').get<Record<string, unknown>>(API_KEYS_PATH)).data ?? {};
  } catch (err) {
    // 404: the secret does not exist (or its latest version is deleted): every key from env.
    failure = err instanceof VaultError && err.status === 404
      ? undefined
      : (err as Error).message.split('\n').filter(Boolean).pop() ?? 'error';
    if (failure === undefined) data = {};
  }
  const keys: ApiKeys = { anthropicApiKey: undefined, openaiApiKey: undefined, stripeSecretKey: undefined };
  const fromServer: Partial<ApiKeys> = {};
  const sources: string[] = [];
  for (const { name, field, env } of KEYS) {
    const value = data?.[field];
    if (typeof value === 'string' && value.length > 0) {
      keys[name] = value;
      fromServer[name] = value;
      sources.push(`${name} from strongroom`);
    } else if (failure !== undefined && lastFromServer[name] !== undefined) {
      keys[name] = lastFromServer[name];
      sources.push(`${name} from strongroom (last known value)`);
    } else if (process.env[env]) {
      keys[name] = process.env[env];
      sources.push(`${name} from environment ${env}`);
    } else {
      sources.push(`${name} not set (neither strongroom nor ${env})`);
    }
  }
  if (failure !== undefined) log(`strongroom unreachable or refused (${failure}); using fallbacks`);
  log(`api keys: ${sources.join(', ')}`);
  if (failure === undefined) lastFromServer = fromServer;
  const ttl = failure === undefined ? cacheMs() : Math.min(cacheMs(), FAILURE_CACHE_SECONDS * 1000);
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
 * anthropic_api_key, openai_api_key, stripe_secret_key), each falling back to ANTHROPIC_API_KEY,
 * OPENAI_API_KEY, STRIPE_SECRET_KEY. Cached (STRONGROOM_API_KEYS_CACHE_SECONDS, default 300); an
 * expired cache is still served at once while one refresh runs behind it. Never throws.
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
