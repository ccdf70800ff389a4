// Shapes of the Vault HTTP API answers the client returns, and its options.

/** The `auth` block of a login or token renewal. */
export interface AuthInfo {
  client_token: string;
  accessor: string;
  policies: string[];
  token_policies: string[];
  metadata: Record<string, string> | null;
  lease_duration: number;
  renewable: boolean;
  entity_id: string;
  token_type: string;
  orphan: boolean;
}

/** A Vault API answer ("secret"): `data` holds what the endpoint returns. */
export interface SecretResponse<T = Record<string, unknown>> {
  request_id: string;
  lease_id: string;
  lease_duration: number;
  renewable: boolean;
  data: T;
  /** Set when the answer was response-wrapped (the call's `wrapTtl`); `data` and `auth` are then null. */
  wrap_info: WrapInfo | null;
  warnings: string[] | null;
  auth: AuthInfo | null;
}

/** The `wrap_info` of a response-wrapped answer (Vault's api.SecretWrapInfo). */
export interface WrapInfo {
  /** The single-use wrapping token; unwrap() gives the answer it holds. */
  token: string;
  accessor: string;
  /** Seconds the wrapping token lives. */
  ttl: number;
  /** RFC 3339. */
  creation_time: string;
  /** The path whose answer is inside: check it before trusting what unwraps. */
  creation_path: string;
  /** For a wrapped token (a login, auth/token/create): that token's accessor; absent otherwise
   * (as Vault omits it). */
  wrapped_accessor?: string;
}

/** `sys/wrapping/lookup` data. */
export interface WrapLookup {
  creation_path: string;
  creation_time: string;
  /** Seconds. */
  creation_ttl: number;
}

/** Options of one call. */
export interface CallOptions {
  /**
   * Response wrapping (X-Vault-Wrap-TTL): the answer comes back as `wrap_info`, a single-use
   * wrapping token living this long ("5m", "1h30m", or seconds as a number).
   */
  wrapTtl?: string | number;
}

/** `auth/token/lookup-self` data (the fields the client uses, the others kept). */
export interface TokenLookup {
  accessor: string;
  policies: string[];
  ttl: number;
  renewable: boolean;
  expire_time: string | null;
  issue_time: string;
  entity_id: string;
  display_name: string;
  meta: Record<string, string> | null;
  [field: string]: unknown;
}

/** Log in to Kubernetes auth with the pod's service-account token. */
export interface KubernetesAuth {
  type: 'kubernetes';
  role: string;
  /** Auth mount, default "kubernetes". */
  mount?: string;
  /** Default /var/run/secrets/kubernetes.io/serviceaccount/token (re-read at every login). */
  tokenPath?: string;
  /** The JWT itself instead of tokenPath. */
  jwt?: string;
}

/** Log in to AppRole. */
export interface AppRoleAuth {
  type: 'approle';
  roleId: string;
  secretId?: string;
  /** A file holding the secret ID (re-read at every login). */
  secretIdPath?: string;
  /** Auth mount, default "approle". */
  mount?: string;
}

/**
 * Use an existing token: `token`, or `tokenPath` (a file such as the one an agent's token sink
 * writes, re-read at every login so a token the agent replaced is picked up).
 */
export interface TokenAuth {
  type: 'token';
  token?: string;
  tokenPath?: string;
}

export type AuthMethod = KubernetesAuth | AppRoleAuth | TokenAuth;

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
/** Receives the client's log lines; never given a token or a secret value. */
export type Logger = (level: LogLevel, message: string) => void;

export interface ClientOptions {
  /** Server URL; default VAULT_ADDR, else https://127.0.0.1:8200 (Vault's default). */
  address?: string;
  /** A token to use as is (no lookups, no renewal). Default VAULT_TOKEN when `auth` is unset. */
  token?: string;
  /** How to obtain tokens; with it the client logs in, renews and logs in again by itself. */
  auth?: AuthMethod;
  /** PEM CA bundle to trust for https; it must hold at least one certificate, all parsing. */
  caCert?: string;
  /** File with a PEM CA bundle (a regular file of at most 4 MiB); default VAULT_CACERT. */
  caCertFile?: string;
  /** Sent as X-Vault-Namespace; default VAULT_NAMESPACE. */
  namespace?: string;
  /** Deadline of one HTTP exchange, default 30 000 ms. */
  timeoutMs?: number;
  /** Retries of GET/LIST after a 5xx or connection error, default 3 (writes are never retried). */
  maxRetries?: number;
  /** First back-off, doubled each retry (with jitter), default 100 ms. */
  retryBaseMs?: number;
  /** Back-off ceiling, default 2 000 ms. */
  retryMaxMs?: number;
  /** Largest answer accepted, default 32 MiB. */
  maxResponseBytes?: number;
  /** Renew (or log in again) in the background at 2/3 of the TTL; default true. */
  autoRenew?: boolean;
  logger?: Logger;
  /** Where VAULT_* variables are read from; default process.env. */
  env?: Record<string, string | undefined>;
}

export interface KvMetadata {
  created_time: string;
  custom_metadata: Record<string, string> | null;
  deletion_time: string;
  destroyed: boolean;
  version: number;
}

export interface KvSecret<T = Record<string, unknown>> {
  data: T;
  metadata: KvMetadata;
}

export interface KvVersionInfo {
  created_time: string;
  deletion_time: string;
  destroyed: boolean;
}

export interface KvFullMetadata {
  cas_required: boolean;
  created_time: string;
  current_version: number;
  custom_metadata: Record<string, string> | null;
  delete_version_after: string;
  max_versions: number;
  oldest_version: number;
  updated_time: string;
  versions: Record<string, KvVersionInfo>;
}

export interface KvMetadataUpdate {
  maxVersions?: number;
  casRequired?: boolean;
  /** A Go duration, e.g. "720h"; "0s" for never. */
  deleteVersionAfter?: string;
  customMetadata?: Record<string, string>;
}

export interface EncryptOptions {
  /** Key derivation context (derived keys): bytes, or a string taken as UTF-8; base64 is done here. */
  context?: string | Uint8Array;
  keyVersion?: number;
}

export interface EncryptBatchItem {
  plaintext: string | Uint8Array;
  context?: string | Uint8Array;
  reference?: string;
}

export interface DecryptBatchItem {
  ciphertext: string;
  context?: string | Uint8Array;
  reference?: string;
}

export interface CiphertextResult {
  ciphertext?: string;
  key_version?: number;
  reference?: string;
  /** Set when this item failed (the others may still have succeeded). */
  error?: string;
}

export interface PlaintextResult {
  /** The decrypted bytes (absent when this item failed). */
  plaintext?: Uint8Array;
  reference?: string;
  error?: string;
}
