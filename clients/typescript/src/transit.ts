// Transit: encrypt, decrypt and rewrap, one item or a batch. Plaintexts are bytes or UTF-8
// strings; the base64 the API wants is done here.

import type { StrongroomClient } from './client.js';
import { ConnectionError } from './errors.js';
import type {
  CiphertextResult, DecryptBatchItem, EncryptBatchItem, EncryptOptions, PlaintextResult,
} from './types.js';

const kMaxKeyNameLength = 256;

function b64(value: string | Uint8Array): string {
  return (typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value.buffer, value.byteOffset, value.byteLength))
    .toString('base64');
}

function keyName(name: string): string {
  if (name.length === 0 || name.length > kMaxKeyNameLength || name.includes('/')) {
    throw new TypeError(`transit key name "${name.slice(0, 64)}" is empty, too long or has a "/"`);
  }
  return name;
}

function unb64(value: unknown, what: string): Uint8Array {
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) {
    throw new ConnectionError(`${what} is not base64`, 'POST', what);
  }
  return new Uint8Array(Buffer.from(value, 'base64'));
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export class Transit {
  readonly #client: StrongroomClient;
  readonly mount: string;

  /** @internal use client.transit(mount) */
  constructor(client: StrongroomClient, mount: string) {
    this.#client = client;
    this.mount = mount;
  }

  async #post<T>(op: string, key: string, body: Record<string, unknown>): Promise<T> {
    const path = `${this.mount}/${op}/${keyName(key)}`;
    const res = await this.#client.request<T>({ method: 'POST', path, body });
    if (!res || !res.data) throw new ConnectionError('answer without data', 'POST', path);
    return res.data;
  }

  /** The ciphertext ("vault:v<N>:...") of `plaintext` (bytes, or a string taken as UTF-8). */
  async encrypt(key: string, plaintext: string | Uint8Array, options: EncryptOptions = {}): Promise<string> {
    const body: Record<string, unknown> = { plaintext: b64(plaintext) };
    if (options.context !== undefined) body.context = b64(options.context);
    if (options.keyVersion !== undefined) body.key_version = options.keyVersion;
    const data = await this.#post<{ ciphertext?: unknown }>('encrypt', key, body);
    if (typeof data.ciphertext !== 'string') throw new ConnectionError('encrypt answered without a ciphertext', 'POST', key);
    return data.ciphertext;
  }

  /** The plaintext bytes of `ciphertext`. */
  async decrypt(key: string, ciphertext: string, options: { context?: string | Uint8Array } = {}): Promise<Uint8Array> {
    const body: Record<string, unknown> = { ciphertext };
    if (options.context !== undefined) body.context = b64(options.context);
    const data = await this.#post<{ plaintext?: unknown }>('decrypt', key, body);
    return unb64(data.plaintext, 'decrypt plaintext');
  }

  /** The plaintext of `ciphertext` as a string; an error if it is not valid UTF-8. */
  async decryptText(key: string, ciphertext: string, options: { context?: string | Uint8Array } = {}): Promise<string> {
    return utf8.decode(await this.decrypt(key, ciphertext, options));
  }

  /** `ciphertext` re-encrypted under the key's latest version (or `keyVersion`), never revealed here. */
  async rewrap(key: string, ciphertext: string, options: EncryptOptions = {}): Promise<string> {
    const body: Record<string, unknown> = { ciphertext };
    if (options.context !== undefined) body.context = b64(options.context);
    if (options.keyVersion !== undefined) body.key_version = options.keyVersion;
    const data = await this.#post<{ ciphertext?: unknown }>('rewrap', key, body);
    if (typeof data.ciphertext !== 'string') throw new ConnectionError('rewrap answered without a ciphertext', 'POST', key);
    return data.ciphertext;
  }

  /**
   * One request for many plaintexts; results in the same order. An item that fails has `error`
   * and the others still succeed (partial_failure_response_code 207 is asked for).
   */
  async encryptBatch(key: string, items: readonly EncryptBatchItem[]): Promise<CiphertextResult[]> {
    const batch_input = items.map((it) => ({
      plaintext: b64(it.plaintext),
      ...(it.context !== undefined ? { context: b64(it.context) } : {}),
      ...(it.reference !== undefined ? { reference: it.reference } : {}),
    }));
    return this.#batch<CiphertextResult>('encrypt', key, batch_input);
  }

  async decryptBatch(key: string, items: readonly DecryptBatchItem[]): Promise<PlaintextResult[]> {
    const batch_input = items.map((it) => ({
      ciphertext: it.ciphertext,
      ...(it.context !== undefined ? { context: b64(it.context) } : {}),
      ...(it.reference !== undefined ? { reference: it.reference } : {}),
    }));
    const raw = await this.#batch<{ plaintext?: unknown; reference?: string; error?: string }>('decrypt', key, batch_input);
    return raw.map((r) => ({
      ...(r.error ? { error: r.error } : { plaintext: unb64(r.plaintext, 'decrypt batch plaintext') }),
      ...(r.reference !== undefined ? { reference: r.reference } : {}),
    }));
  }

  async rewrapBatch(key: string, items: readonly DecryptBatchItem[]): Promise<CiphertextResult[]> {
    const batch_input = items.map((it) => ({
      ciphertext: it.ciphertext,
      ...(it.context !== undefined ? { context: b64(it.context) } : {}),
      ...(it.reference !== undefined ? { reference: it.reference } : {}),
    }));
    return this.#batch<CiphertextResult>('rewrap', key, batch_input);
  }

  async #batch<R>(op: string, key: string, batchInput: unknown[]): Promise<R[]> {
    if (batchInput.length === 0) return [];
    const data = await this.#post<{ batch_results?: unknown }>(op, key,
      { batch_input: batchInput, partial_failure_response_code: 207 });
    if (!Array.isArray(data.batch_results) || data.batch_results.length !== batchInput.length) {
      throw new ConnectionError(`${op} batch answered without one result per item`, 'POST', key);
    }
    return data.batch_results as R[];
  }
}
