// Errors the client raises: VaultError for an answer with a non-2xx status (the server's own
// `errors` array kept as sent), ConnectionError when no answer came (refused, reset, timed out,
// TLS failure, answer too large or not JSON).

const kMaxRawExcerpt = 512;
const kMaxErrorInMessage = 1024;

// Control characters (C0, DEL, C1), line and paragraph separators and bidi controls: escaped in
// messages, so a hostile body cannot forge log lines or rewrite a terminal.
const kUnsafe = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

function escapeChar(ch: string, keepLayout: boolean): string {
  if (!kUnsafe.test(ch)) return ch;
  if (keepLayout && (ch === '\n' || ch === '\t')) return ch;
  if (ch === '\n') return '\\n';
  if (ch === '\r') return '\\r';
  if (ch === '\t') return '\\t';
  const code = ch.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** @internal `text` with unsafe characters escaped, cut after about `max` characters. */
export function safeExcerpt(text: string, max: number, keepLayout = false): string {
  let out = '';
  let used = 0;
  for (const ch of text) {
    if (out.length >= max) return `${out}... (${text.length - used} more characters)`;
    out += escapeChar(ch, keepLayout);
    used += ch.length;
  }
  return out;
}

/** An HTTP answer with a non-2xx status from strongroom (or Vault). */
export class VaultError extends Error {
  /** The HTTP status code, e.g. 400, 403, 404, 503. */
  readonly status: number;
  /** The server's `errors` array, as sent (empty when the body had none). */
  readonly errors: string[];
  /** The request method (LIST for list calls). */
  readonly method: string;
  /** The URL that was requested (no token: tokens travel in headers only). */
  readonly url: string;
  /** The parsed JSON body when there was one (e.g. `data.batch_results` of a failed batch). */
  readonly body: unknown;

  constructor(status: number, errors: string[], method: string, url: string, body: unknown, raw?: string) {
    super(VaultError.format(status, errors, method, url, raw));
    this.name = 'VaultError';
    this.status = status;
    this.errors = errors;
    this.method = method;
    this.url = url;
    this.body = body;
  }

  /** True for 403 whose errors say "permission denied" (a refused or dead token). */
  get isPermissionDenied(): boolean {
    return this.status === 403 && this.errors.some((e) => e.includes('permission denied'));
  }

  /** Laid out as the Vault tools print a failed request. */
  private static format(status: number, errors: string[], method: string, url: string, raw?: string): string {
    const head = `Error making API request.\n\nURL: ${method} ${url}\nCode: ${status}.`;
    if (errors.length > 0) {
      return `${head} Errors:\n\n${errors.map((e) => `* ${safeExcerpt(e, kMaxErrorInMessage, true)}`).join('\n')}`;
    }
    // A body that is not JSON (a proxy's page, ...): an escaped excerpt.
    const text = (raw ?? '').trim();
    return text ? `${head} Raw Message:\n\n${safeExcerpt(text, kMaxRawExcerpt)}` : head;
  }
}

/** No usable answer: the connection failed, timed out, or the answer was malformed. */
export class ConnectionError extends Error {
  /** The system error code when there was one (ECONNREFUSED, ECONNRESET, ETIMEDOUT, ...). */
  readonly code: string | undefined;
  readonly method: string;
  readonly url: string;

  /**
   * False when the request surely never reached the server (the connection was refused, the name
   * did not resolve, the connection or TLS handshake did not complete in time, or a redirect
   * was refused); true when it may have (reset or timed out after connecting, bad answer).
   */
  readonly requestSent: boolean;

  constructor(message: string, method: string, url: string, code?: string, cause?: unknown, requestSent = true) {
    super(`${method} ${url}: ${message}`, cause === undefined ? undefined : { cause });
    this.name = 'ConnectionError';
    this.code = code;
    this.method = method;
    this.url = url;
    this.requestSent = requestSent;
  }
}
