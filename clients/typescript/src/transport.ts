// One HTTP(S) exchange with node:http / node:https (no runtime dependencies). node's global
// fetch cannot be given a CA bundle without the undici package, so VAULT_CACERT is honoured
// through an https.Agent instead; every request uses the same code path, with or without a CA.
// Bounded: one deadline for the whole exchange, a cap on the answer's size, at most
// kMaxRedirects 307/308 redirects, on the same origin only (scheme, host and port): the token and
// the body are never sent anywhere else. A failure says whether the request may have reached the
// server (ConnectionError.requestSent), so the client retries only what surely was not sent.

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
    this.#httpsAgent = new https.Agent({ keepAlive: false, ...(options.ca !== undefined ? { ca: options.ca } : {}) });
  }

  async send(method: string, url: URL, headers: Record<string, string>, body?: string): Promise<RawResponse> {
    let target = url;
    const origin = url.origin;
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
        if (next.origin !== origin) {
          // A standby pointing at the active node on another host must be configured as the
          // address instead: the token and body are never sent to another origin.
          throw new ConnectionError(`refused redirect to another origin (${next.origin}); only ${origin} is trusted`,
            method, target.href, 'EREDIRECT', undefined, false);
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
      let timer: ReturnType<typeof setTimeout> | undefined;
      // Set once the connection (and TLS) is up: from then on the request may have reached the server.
      let requestSent = false;
      const fail = (message: string, code?: string, cause?: unknown) => {
        if (settled) return;
        settled = true;
        if (timer !== undefined) clearTimeout(timer);
        req?.destroy();
        reject(new ConnectionError(message, method, url.href, code, cause, requestSent));
      };
      const request = isHttps ? https.request : http.request;
      try {
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
            if (timer !== undefined) clearTimeout(timer);
            const location = res.headers.location;
            resolve({
              status: res.statusCode ?? 0,
              body: Buffer.concat(chunks).toString('utf8'),
              location: typeof location === 'string' ? location : undefined,
            });
          });
        });
      } catch (err) {
        // node refused the request before any I/O (e.g. a header with a newline): not a
        // connection failure, and nothing to retry.
        settled = true;
        reject(err);
        return;
      }
      timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`, 'ETIMEDOUT'), timeoutMs);
      req.on('socket', (socket) => {
        const up = isHttps ? 'secureConnect' : 'connect';
        if (!isHttps && !socket.connecting) requestSent = true;
        else socket.once(up, () => { requestSent = true; });
      });
      req.on('error', (err: NodeJS.ErrnoException) => fail(err.message, err.code, err));
      req.end(payload);
    });
  }
}
