// KV version 2: data/ (versions, check-and-set), delete/, undelete/, destroy/, metadata/.

import type { StrongroomClient } from './client.js';
import { ConnectionError } from './errors.js';
import type { KvFullMetadata, KvMetadata, KvMetadataUpdate, KvSecret } from './types.js';

function versionList(versions: readonly number[]): number[] {
  if (versions.length === 0) throw new TypeError('no versions given');
  for (const v of versions) {
    if (!Number.isSafeInteger(v) || v < 1) throw new TypeError(`version ${v} is not a positive integer`);
  }
  return [...versions];
}

export class KvV2 {
  readonly #client: StrongroomClient;
  readonly mount: string;

  /** @internal use client.kv(mount) */
  constructor(client: StrongroomClient, mount: string) {
    this.#client = client;
    this.mount = mount;
  }

  #p(kind: string, path: string): string {
    return `${this.mount}/${kind}/${path.replace(/^\/+/, '')}`;
  }

  /** The secret's latest version, or `version`. 404 (VaultError) when absent, deleted or destroyed. */
  async get<T = Record<string, unknown>>(path: string, options: { version?: number } = {}): Promise<KvSecret<T>> {
    const query = options.version !== undefined ? { version: options.version } : undefined;
    const res = await this.#client.read<KvSecret<T>>(this.#p('data', path), query);
    if (!res.data || typeof res.data !== 'object') {
      throw new ConnectionError('KV answer without data', 'GET', this.#p('data', path));
    }
    return res.data;
  }

  /** Writes a new version. With `cas`, only if the current version is `cas` (0: only if absent). */
  async put(path: string, data: Record<string, unknown>, options: { cas?: number } = {}): Promise<KvMetadata> {
    const body: Record<string, unknown> = { data };
    if (options.cas !== undefined) body.options = { cas: options.cas };
    const res = await this.#client.write<KvMetadata>(this.#p('data', path), body);
    if (!res) throw new ConnectionError('KV write answered without metadata', 'PUT', this.#p('data', path));
    return res.data;
  }

  /** A new version from the latest one merged with `data` (JSON merge patch: null removes a key). */
  async patch(path: string, data: Record<string, unknown>, options: { cas?: number } = {}): Promise<KvMetadata> {
    const body: Record<string, unknown> = { data };
    if (options.cas !== undefined) body.options = { cas: options.cas };
    const res = await this.#client.patch<KvMetadata>(this.#p('data', path), body);
    if (!res) throw new ConnectionError('KV patch answered without metadata', 'PATCH', this.#p('data', path));
    return res.data;
  }

  /** Soft-deletes the latest version (DELETE data/): older versions and the metadata stay. */
  async delete(path: string): Promise<void> {
    await this.#client.delete(this.#p('data', path));
  }

  /** Soft-deletes the given versions (undeletable). */
  async deleteVersions(path: string, versions: readonly number[]): Promise<void> {
    await this.#client.write(this.#p('delete', path), { versions: versionList(versions) });
  }

  /** Restores soft-deleted versions. */
  async undelete(path: string, versions: readonly number[]): Promise<void> {
    await this.#client.write(this.#p('undelete', path), { versions: versionList(versions) });
  }

  /** Destroys the given versions' data for good (their metadata stays, marked destroyed). */
  async destroy(path: string, versions: readonly number[]): Promise<void> {
    await this.#client.write(this.#p('destroy', path), { versions: versionList(versions) });
  }

  /** The secret's metadata and version list. 404 when the secret does not exist. */
  async readMetadata(path: string): Promise<KvFullMetadata> {
    return (await this.#client.read<KvFullMetadata>(this.#p('metadata', path))).data;
  }

  async writeMetadata(path: string, update: KvMetadataUpdate): Promise<void> {
    const body: Record<string, unknown> = {};
    if (update.maxVersions !== undefined) body.max_versions = update.maxVersions;
    if (update.casRequired !== undefined) body.cas_required = update.casRequired;
    if (update.deleteVersionAfter !== undefined) body.delete_version_after = update.deleteVersionAfter;
    if (update.customMetadata !== undefined) body.custom_metadata = update.customMetadata;
    await this.#client.write(this.#p('metadata', path), body);
  }

  /** Deletes the metadata and every version: the secret is gone for good. */
  async deleteMetadata(path: string): Promise<void> {
    await this.#client.delete(this.#p('metadata', path));
  }

  /** The keys under `path` (folders end with "/"); [] when there are none. */
  list(path = ''): Promise<string[]> {
    const p = path.replace(/^\/+/, '');
    return this.#client.list(`${this.mount}/metadata/${p.length === 0 || p.endsWith('/') ? p : `${p}/`}`);
  }
}
