// magicbell-token.js: gets MagicBell User JWTs from magicbell-fcgi's
// /magicbell-token endpoint, for the user the site has logged in.
//
// An ES module with no dependencies and no build step:
//
//   import { getToken, onToken, NotLoggedInError } from "/js/magicbell-token.js";
//
//   const token = await getToken();          // cached; one request at a time
//   const stop = onToken((token, info) => {  // now, and after every refresh
//     client.setAccessToken?.(token);         // or re-create the MagicBell client
//   });
//
// What it does:
// - fetches the endpoint with the page's own credentials (same-origin
//   cookies or HTTP auth), never caching it in the HTTP cache;
// - keeps the token until shortly before it expires: it refreshes ahead by
//   min(60 s, 10% of the token's lifetime), so a short lifetime never turns
//   into a refresh loop. Expiry is reckoned from `expires_in` and this
//   browser's own clock when the answer arrived, so a skewed client clock
//   does not matter;
// - merges concurrent calls into one request;
// - retries network failures, 5xx, 408 and 429 with exponential back-off
//   and full jitter (up to `maxAttempts`);
// - never retries a 401: it rejects with NotLoggedInError (the user is not
//   logged in) and stops background refreshes until the next call.

/** A failed token request. `status` is 0 for a network failure. */
export class MagicBellTokenError extends Error {
  constructor(message, { status = 0, code = "network_error", requestId = null, retryable = false } = {}) {
    super(message);
    this.name = "MagicBellTokenError";
    this.status = status;
    this.code = code;
    this.requestId = requestId; // nginx's $request_id, to find the server's log line
    this.retryable = retryable;
  }
}

/** The endpoint answered 401: the user is not logged in. Never retried. */
export class NotLoggedInError extends MagicBellTokenError {
  constructor(message, details) {
    super(message, { ...details, status: 401, retryable: false });
    this.name = "NotLoggedInError";
  }
}

/** The refresh lead in seconds: min(60 s, 10% of the lifetime). */
export function refreshLead(expiresIn) {
  return Math.min(60, expiresIn / 10);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A token source with its own cache. Most pages use the default one through
 * `getToken` and `onToken`; create more for other endpoints or for tests.
 *
 * Options: endpoint ("/magicbell-token"), maxAttempts (5), baseDelayMs (500),
 * maxDelayMs (30000), fetch (globalThis.fetch), onError (errors of
 * background refreshes; default: console.warn).
 */
export function createTokenSource(options = {}) {
  const endpoint = options.endpoint ?? "/magicbell-token";
  const maxAttempts = options.maxAttempts ?? 5;
  const baseDelayMs = options.baseDelayMs ?? 500;
  const maxDelayMs = options.maxDelayMs ?? 30000;
  const fetchImpl = options.fetch ?? ((...args) => globalThis.fetch(...args));
  const onError = options.onError ?? ((error) => console.warn("magicbell-token:", error));

  let current = null; // { token, expiresAt, expiresIn, receivedAt, refreshAt }
  let inflight = null;
  let timer = null;
  const listeners = new Set();

  async function fetchOnce() {
    let response;
    try {
      response = await fetchImpl(endpoint, {
        method: "GET",
        credentials: "same-origin",
        cache: "no-store",
        headers: { Accept: "application/json" },
      });
    } catch (cause) {
      throw new MagicBellTokenError(`token request failed: ${cause?.message ?? cause}`, { retryable: true });
    }
    const requestId = response.headers.get("X-Request-Id");
    let body = null;
    try {
      body = await response.json();
    } catch {
      // Not JSON: nginx's own error pages, a proxy in between.
    }
    if (response.status === 401) {
      throw new NotLoggedInError("not logged in", { code: body?.error?.code ?? "unauthenticated", requestId });
    }
    if (!response.ok) {
      const status = response.status;
      throw new MagicBellTokenError(body?.error?.message ?? `token request failed with status ${status}`, {
        status,
        code: body?.error?.code ?? `http_${status}`,
        requestId,
        retryable: status >= 500 || status === 408 || status === 429,
      });
    }
    if (typeof body?.token !== "string" || !body.token || !(body.expires_in >= 1)) {
      throw new MagicBellTokenError("the token endpoint's answer has no token", {
        status: response.status, code: "invalid_answer", requestId, retryable: true,
      });
    }
    const receivedAt = Date.now();
    return {
      token: body.token,
      expiresAt: body.expires_at, // the server's clock, Unix seconds: for display
      expiresIn: body.expires_in,
      receivedAt,
      refreshAt: receivedAt + (body.expires_in - refreshLead(body.expires_in)) * 1000,
    };
  }

  async function fetchWithRetry() {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fetchOnce();
      } catch (error) {
        if (!error.retryable || attempt >= maxAttempts) throw error;
        // Full jitter: a random delay up to the exponential bound, so many
        // tabs that failed together do not retry together.
        await sleep(Math.random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1)));
      }
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = null;
    if (listeners.size === 0 || !current) return;
    timer = setTimeout(() => {
      refresh().catch((error) => {
        onError(error);
        // A 401 stops here: the next getToken() or onToken() starts again.
        if (!(error instanceof NotLoggedInError)) timer = setTimeout(schedule, maxDelayMs);
      });
    }, Math.max(0, current.refreshAt - Date.now()));
  }

  function refresh() {
    if (!inflight) {
      inflight = fetchWithRetry()
        .then((fresh) => {
          current = fresh;
          const info = { expiresAt: fresh.expiresAt, expiresIn: fresh.expiresIn, receivedAt: fresh.receivedAt };
          for (const listener of [...listeners]) {
            try {
              listener(fresh.token, info);
            } catch (error) {
              onError(error);
            }
          }
          schedule();
          return fresh;
        })
        .finally(() => {
          inflight = null;
        });
    }
    return inflight;
  }

  return {
    /** The current token, fetched if there is none or it is due for refresh. */
    async getToken({ forceRefresh = false } = {}) {
      if (!forceRefresh && current && Date.now() < current.refreshAt) return current.token;
      return (await refresh()).token;
    },

    /**
     * Calls `callback(token, {expiresAt, expiresIn, receivedAt})` with the
     * current token and after every refresh; while any callback is
     * registered, tokens are refreshed ahead of expiry in the background.
     * Returns a function that unregisters it.
     */
    onToken(callback) {
      listeners.add(callback);
      if (current && Date.now() < current.refreshAt) {
        const info = { expiresAt: current.expiresAt, expiresIn: current.expiresIn, receivedAt: current.receivedAt };
        queueMicrotask(() => listeners.has(callback) && callback(current.token, info));
        schedule();
      } else {
        refresh().catch(onError);
      }
      return () => {
        listeners.delete(callback);
        if (listeners.size === 0) schedule(); // clears the timer
      };
    },

    /** Forgets the token (e.g. on logout) and stops background refreshes. */
    clear() {
      current = null;
      clearTimeout(timer);
      timer = null;
    },
  };
}

const defaultSource = createTokenSource();

/** The default source's `getToken`: the token for the endpoint at /magicbell-token. */
export const getToken = (options) => defaultSource.getToken(options);
/** The default source's `onToken`. */
export const onToken = (callback) => defaultSource.onToken(callback);
/** The default source's `clear`. */
export const clearToken = () => defaultSource.clear();
