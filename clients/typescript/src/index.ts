// @strongroom/client: a typed, dependency-free client for strongroom (and Vault's HTTP API).

export { StrongroomClient, authFromEnv, DEFAULT_KUBERNETES_TOKEN_PATH } from './client.js';
export { VaultError, ConnectionError } from './errors.js';
export { KvV2 } from './kv.js';
export { Transit } from './transit.js';
export type {
  AppRoleAuth, AuthInfo, AuthMethod, CallOptions, CiphertextResult, ClientOptions, DecryptBatchItem, EncryptBatchItem,
  EncryptOptions, KubernetesAuth, KvFullMetadata, KvMetadata, KvMetadataUpdate, KvSecret, KvVersionInfo,
  Logger, LogLevel, PlaintextResult, SecretResponse, TokenAuth, TokenLookup, WrapInfo, WrapLookup,
} from './types.js';
