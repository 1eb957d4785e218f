/**
 * The CLI's HTTP client: `fetch`'s shape over node:http. Node's own `fetch` refuses the Fetch
 * standard's "bad ports" (10080, 6000, 6665-6669, ...) with a bare "fetch failed", yet a node may
 * well serve its metrics and health endpoints on one of them; curl and Prometheus reach it, so
 * `twinstar status`, `health` and `promote` must too. Only what the CLI uses: a method, headers, a
 * signal, a request body as a string (any other is refused), the answer read whole.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** Statuses whose Response must have no body. */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/**
 * GET (or `init.method`) `input`, resolved with a `Response` once the whole body is in. Fails as
 * `fetch` does: a socket error rejects with TypeError('fetch failed') whose `cause` is the error
 * (its `code`: ECONNREFUSED, ...), an aborted signal with the signal's reason (a TimeoutError for
 * `AbortSignal.timeout`).
 */
export const httpFetch = (input: string | URL | Request, init: RequestInit = {}): Promise<Response> =>
  new Promise<Response>((resolve, reject) => {
    const url = new URL(input instanceof Request ? input.url : input);
    const { signal } = init;
    if (signal?.aborted) return reject(signal.reason);
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      return reject(new TypeError(`fetch failed: not an http URL: ${url.href}`));
    if (init.body != null && typeof init.body !== 'string')
      return reject(new TypeError('httpFetch sends a string body only'));
    const headers = Object.fromEntries(new Headers(init.headers).entries());
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, { method: init.method ?? 'GET', headers });
    const onAbort = () => req.destroy(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = () => signal?.removeEventListener('abort', onAbort);
    const fail = (error: Error) => {
      done();
      reject(signal?.aborted ? signal.reason : new TypeError('fetch failed', { cause: error }));
    };
    req.on('error', fail);
    req.on('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', fail);
      res.on('close', () => {
        if (!res.complete) fail(new Error('the connection closed before the whole answer came'));
      });
      res.on('end', () => {
        done();
        const status = res.statusCode ?? 0;
        if (status < 200 || status > 599)
          return reject(new TypeError('fetch failed', { cause: new Error(`HTTP status ${status}`) }));
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(res.headers))
          for (const one of Array.isArray(value) ? value : [value ?? '']) responseHeaders.append(name, one);
        const body = NULL_BODY.has(status) ? null : Buffer.concat(chunks);
        resolve(new Response(body, { status, statusText: res.statusMessage, headers: responseHeaders }));
      });
    });
    req.end(typeof init.body === 'string' ? init.body : undefined);
  });
