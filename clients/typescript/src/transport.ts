// One HTTP(S) exchange with node:http / node:https (no runtime dependencies). node's global
// fetch cannot be given a CA bundle without the undici package, so VAULT_CACERT is honoured
// through an https.Agent instead; every request uses the same code path, with or without a CA.
// Bounded: one deadline for the whole exchange, a cap on the answer's size, at most
// kMaxRedirects 307/308 redirects (a standby's redirect to the active node), never https -> http.

import * as http from 'node:http';
import * as https from 'node:https';

import { ConnectionError } from './errors.js';

const kMaxRedirects = 3;

export interface TransportOptions {
  /** PEM CA bundle(s) trusted for https (replaces the system roots, like VAULT_CACERT). */
  ca?: string | undefined;
  timeoutMs: number;
  maxResponseBytes: number;
}

export interface RawResponse {
  status: number;
  body: string;
  url: string;
}

export class Transport {
  readonly #options: TransportOptions;
  readonly #httpAgent: http.Agent;
  readonly #httpsAgent: https.Agent;

  constructor(options: TransportOptions) {
    this.#options = options;
    // No keep-alive: a pooled socket the server closed meanwhile would fail a write that cannot
    // be retried. One connection per request is cheap next to a Vault round trip.
    this.#httpAgent = new http.Agent({ keepAlive: false });
    this.#httpsAgent = new https.Agent({ keepAlive: false, ...(options.ca ? { ca: options.ca } : {}) });
  }

  async send(method: string, url: URL, headers: Record<string, string>, body?: string): Promise<RawResponse> {
    let target = url;
    for (let hop = 0; ; hop++) {
      const res = await this.#once(method, target, headers, body);
      if ((res.status === 307 || res.status === 308) && res.location !== undefined) {
        if (hop >= kMaxRedirects) {
          throw new ConnectionError(`more than ${kMaxRedirects} redirects`, method, target.href);
        }
        let next: URL;
        try {
          next = new URL(res.location, target);
        } catch {
          throw new ConnectionError('redirect to an invalid location', method, target.href);
        }
        if (next.protocol !== 'https:' && next.protocol !== 'http:') {
          throw new ConnectionError(`redirect to unsupported scheme ${next.protocol}`, method, target.href);
        }
        if (target.protocol === 'https:' && next.protocol !== 'https:') {
          throw new ConnectionError('refused redirect from https to http', method, target.href);
        }
        target = next;
        continue;
      }
      return { status: res.status, body: res.body, url: target.href };
    }
  }

  #once(method: string, url: URL, headers: Record<string, string>, body?: string):
      Promise<{ status: number; body: string; location: string | undefined }> {
    const { timeoutMs, maxResponseBytes } = this.#options;
    const isHttps = url.protocol === 'https:';
    if (!isHttps && url.protocol !== 'http:') {
      return Promise.reject(new ConnectionError(`unsupported scheme ${url.protocol}`, method, url.href));
    }
    const payload = body === undefined ? undefined : Buffer.from(body, 'utf8');
    const allHeaders: Record<string, string | number> = { ...headers };
    if (payload !== undefined) allHeaders['Content-Length'] = payload.length;
    return new Promise((resolve, reject) => {
      let settled = false;
      let req: http.ClientRequest | undefined;
      const fail = (message: string, code?: string, cause?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req?.destroy();
        reject(new ConnectionError(message, method, url.href, code, cause));
      };
      const timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`, 'ETIMEDOUT'), timeoutMs);
      const request = isHttps ? https.request : http.request;
      req = request(url, {
        method,
        headers: allHeaders,
        agent: isHttps ? this.#httpsAgent : this.#httpAgent,
      }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxResponseBytes) {
            fail(`answer larger than ${maxResponseBytes} bytes`, 'E2BIG');
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', (err: NodeJS.ErrnoException) => fail(err.message, err.code, err));
        res.on('aborted', () => fail('connection closed mid-answer', 'ECONNRESET'));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          const location = res.headers.location;
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            location: typeof location === 'string' ? location : undefined,
          });
        });
      });
      req.on('error', (err: NodeJS.ErrnoException) => fail(err.message, err.code, err));
      req.end(payload);
    });
  }
}
