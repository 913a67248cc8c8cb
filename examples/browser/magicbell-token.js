// magicbell-token.js: gets MagicBell User JWTs from magicbell-fcgi's
// /magicbell-token endpoint, for the user the site has logged in.
//
// An ES module with no dependencies and no build step:
//
//   import { getToken, onToken, NotLoggedInError } from "/js/magicbell-token.js";
//
//   const token = await getToken();          // cached; one request at a time
//   const stop = onToken((token, info) => {  // now, and after every refresh
//     client.token = token;                   // magicbell-js's user client; Realtime: make a new one
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
//   logged in) and stops background refreshes until the next call;
// - clearToken() (logout) starts afresh: a token request still in flight
//   was sent with the old user's login, so its answer is the old user's
//   token. It is dropped, never stored nor handed to a listener or to a
//   later getToken() (which fetches anew, for whoever is logged in now);
//   a getToken() still awaiting it rejects with code "cleared". Otherwise,
//   after alice logs out and bob logs in, bob's page could get alice's token.

/**
 * A failed token request. `status` is 0 when no HTTP answer was used: a
 * network failure, or code "cleared" (clearToken() was called meanwhile).
 */
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

function clearedError() {
  return new MagicBellTokenError("the token was cleared (logout) while this request was in flight", { code: "cleared" });
}
const isCleared = (error) => error instanceof MagicBellTokenError && error.code === "cleared";

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
  let inflight = null; // { promise, cancel }: the request of the current epoch
  let timer = null;
  // Bumped by clear(). Whatever began in an older epoch (a request, a retry,
  // a refresh timer) belongs to the user who logged out: its outcome is dropped.
  let epoch = 0;
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
      // MagicBell's HMAC user key, when the responder has MAGICBELL_USER_KEY=on.
      userKey: typeof body.user_key === "string" ? body.user_key : undefined,
      receivedAt,
      refreshAt: receivedAt + (body.expires_in - refreshLead(body.expires_in)) * 1000,
    };
  }

  async function fetchWithRetry(started) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fetchOnce();
      } catch (error) {
        if (!error.retryable || attempt >= maxAttempts) throw error;
        // Full jitter: a random delay up to the exponential bound, so many
        // tabs that failed together do not retry together.
        await sleep(Math.random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1)));
        // No retry for a user who has logged out since.
        if (started !== epoch) throw clearedError();
      }
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = null;
    if (listeners.size === 0 || !current) return;
    const scheduled = epoch;
    timer = setTimeout(() => {
      if (scheduled !== epoch) return;
      refresh().catch((error) => {
        if (scheduled !== epoch) return; // cleared meanwhile: nothing to report or retry
        onError(error);
        // A 401 stops here: the next getToken() or onToken() starts again.
        if (!(error instanceof NotLoggedInError)) {
          timer = setTimeout(() => scheduled === epoch && schedule(), maxDelayMs);
        }
      });
    }, Math.max(0, current.refreshAt - Date.now()));
  }

  function refresh() {
    if (inflight) return inflight.promise;
    const started = epoch;
    let cancel;
    // clear() rejects this at once, so that nobody waits for (or gets) the
    // old user's answer.
    const cancelled = new Promise((_, reject) => {
      cancel = reject;
    });
    const fetched = fetchWithRetry(started).then((fresh) => {
      if (started !== epoch) throw clearedError(); // the old user's token: dropped
      current = fresh;
      const info = { expiresAt: fresh.expiresAt, expiresIn: fresh.expiresIn, userKey: fresh.userKey, receivedAt: fresh.receivedAt };
      for (const listener of [...listeners]) {
        try {
          listener(fresh.token, info);
        } catch (error) {
          onError(error);
        }
      }
      schedule();
      return fresh;
    });
    const entry = { promise: Promise.race([fetched, cancelled]), cancel };
    inflight = entry;
    // Only this epoch's own request may free the slot: an older one ending
    // late must not drop the newer request that merges later calls.
    const done = () => {
      if (inflight === entry) inflight = null;
    };
    entry.promise.then(done, done);
    return entry.promise;
  }

  return {
    /** The current token, fetched if there is none or it is due for refresh. */
    async getToken({ forceRefresh = false } = {}) {
      if (!forceRefresh && current && Date.now() < current.refreshAt) return current.token;
      return (await refresh()).token;
    },

    /**
     * Calls `callback(token, {expiresAt, expiresIn, userKey, receivedAt})` with the
     * current token and after every refresh; while any callback is
     * registered, tokens are refreshed ahead of expiry in the background.
     * Returns a function that unregisters it.
     */
    onToken(callback) {
      listeners.add(callback);
      if (current && Date.now() < current.refreshAt) {
        const { token } = current;
        const info = { expiresAt: current.expiresAt, expiresIn: current.expiresIn, userKey: current.userKey, receivedAt: current.receivedAt };
        const added = epoch; // not if clear() comes before the microtask
        queueMicrotask(() => added === epoch && listeners.has(callback) && callback(token, info));
        schedule();
      } else {
        refresh().catch((error) => isCleared(error) || onError(error));
      }
      return () => {
        listeners.delete(callback);
        if (listeners.size === 0) schedule(); // clears the timer
      };
    },

    /**
     * Forgets the token (on logout) and stops background refreshes. A request
     * still in flight was made with the old login: its answer is dropped, a
     * getToken() awaiting it rejects with code "cleared", and the next
     * getToken() or onToken() fetches anew. Listeners stay registered and get
     * the next user's token.
     */
    clear() {
      epoch += 1;
      current = null;
      clearTimeout(timer);
      timer = null;
      const pending = inflight;
      inflight = null;
      pending?.cancel(clearedError());
    },
  };
}

const defaultSource = createTokenSource();

/** The default source's `getToken`: the token for the endpoint at /magicbell-token. */
export const getToken = (options) => defaultSource.getToken(options);
/** The default source's `onToken`. */
export const onToken = (callback) => defaultSource.onToken(callback);
/** The default source's `clear`: call it on logout (see `clear` above). */
export const clearToken = () => defaultSource.clear();
