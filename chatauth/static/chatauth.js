/**
 * chatauth.js: the chat SDKs' token refresh hooks, wired to your app's chatauth endpoints.
 *
 * Served by every chatauth adapter at `GET {prefix}/chatauth.js` (default prefix `/chat`) and
 * shipped in the Python package (chatauth/static/chatauth.js). An ES module, no dependencies;
 * it needs `fetch` (browsers, Node >= 18, React Native).
 *
 *   import { fetchChatToken, streamTokenProvider } from "/chat/chatauth.js";
 *
 * The endpoints (README: "Token refresh"):
 *   GET  {prefix}/token          -> Session (the logged-in user's chat session)
 *   POST {prefix}/token/refresh  body {"token": "<the token the SDK rejected>"},
 *                                Content-Type: application/json -> Session
 *        If that token is the current one it is revoked and a new one issued; if it was
 *        already replaced, the current one is answered. 429 + Retry-After past the limit.
 *
 * Session (the JSON both answer):
 *   { provider: "stream", uid: "user-42", token: "...",
 *     expires_at: "2026-11-22T18:00:00Z" | null, client: { ...public SDK settings } }
 *
 * Options, accepted by every function below (all optional):
 *   prefix       where the chat routes are mounted: "/chat", "https://app.example/chat".
 *                Default: the folder this module was loaded from (so "/chat/chatauth.js"
 *                gives "/chat"); pass it when you bundle this file.
 *   headers      extra request headers, an object or a (possibly async) function returning
 *                one: API clients send their credential here, e.g.
 *                { Authorization: "Token 9944b09..." } or () => ({ Authorization: `Bearer ${jwt}` }).
 *   credentials  fetch's credentials mode; default "same-origin" (the session cookie).
 *   fetch        the fetch function to use; default globalThis.fetch.
 *   session      a Session you already hold (from fetchChatToken): the hooks then know which
 *                token the SDK is using without fetching first.
 *   onSession    called with every Session a hook obtains (to update your UI or storage).
 *
 * Errors: every function rejects with a ChatAuthError { status, code, message, retryAfter }
 * for a non-2xx answer (status 0 and code "ERROR_NETWORK" when the request itself failed).
 *
 * Exports:
 *   fetchChatToken(options)              -> Promise<Session>
 *   refreshChatToken(rejected, options)  -> Promise<Session>
 *   chatTokenSource(options)             -> { session(): Promise<Session>,
 *                                             refresh(): Promise<Session>, current: Session|null }
 *        one SDK connection's token: session() fetches once, refresh() replaces the token the
 *        source last handed out. The SDK functions below are built on it.
 *   streamTokenProvider(options)         -> () => Promise<string>
 *        Stream: client.connectUser({ id: session.uid }, streamTokenProvider({ session }))
 *   sendbirdSessionHandler(handler, options) -> handler
 *        Sendbird: sb.setSessionHandler(sendbirdSessionHandler(new SessionHandler(), { session }))
 *        sets handler.onSessionTokenRequired(resolve, reject).
 *   twilioTokenRefresh(client, options)  -> client
 *        Twilio Conversations: on "tokenAboutToExpire" and "tokenExpired", fetches a new
 *        token and calls client.updateToken(token).
 *   cometchatLogin(CometChat, options)   -> Promise<User>
 *        CometChat: CometChat.login(authToken); when CometChat refuses the token (revoked,
 *        unknown), logs in once more with a refreshed one. Call it again to re-login.
 *   matrixTokenRefresh(options)          -> (refreshToken) => Promise<{accessToken, refreshToken, expiry}>
 *        Matrix (matrix-js-sdk soft logout): createClient({ baseUrl, userId, deviceId,
 *        accessToken: session.token, refreshToken: MATRIX_REFRESH_PLACEHOLDER,
 *        tokenRefreshFunction: matrixTokenRefresh({ session }) }). The refresh is
 *        authorised by your app's login, not a Matrix refresh token: the placeholder only
 *        makes the SDK call the hook.
 *        matrix-js-sdk up to 42 only: 43.0.0 removed tokenRefreshFunction (use matrixFetch).
 *   matrixFetch(options)                 -> fetch function
 *        Matrix (matrix-js-sdk 43+ soft logout): createClient({ baseUrl, userId, deviceId,
 *        accessToken: session.token, fetchFn: matrixFetch({ session,
 *        onSession: (s) => client.setAccessToken(s.token) }) }). On 401 M_UNKNOWN_TOKEN for
 *        the app's token it replaces the token through chatauth and repeats the request.
 *   MATRIX_REFRESH_PLACEHOLDER           the string "chatauth"
 *   ChatAuthError                        the error class
 */

export const MATRIX_REFRESH_PLACEHOLDER = "chatauth";

/** A non-2xx answer of a chatauth endpoint, or a failed request (status 0). */
export class ChatAuthError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.name = "ChatAuthError";
    /** HTTP status; 0 when the request did not complete. */
    this.status = status;
    /** chatauth's error code, e.g. "ERROR_NOT_AUTHENTICATED", "ERROR_REFRESH_LIMITED". */
    this.code = code;
    /** Seconds to wait before trying again (Retry-After), or null. */
    this.retryAfter = retryAfter;
  }
}

function defaultPrefix() {
  try {
    return new URL(".", import.meta.url).href.replace(/\/$/, "");
  } catch {
    return "/chat";
  }
}

async function call(path, init, options = {}) {
  const doFetch = options.fetch || globalThis.fetch;
  const prefix = (options.prefix || defaultPrefix()).replace(/\/$/, "");
  const extra = typeof options.headers === "function" ? await options.headers() : options.headers;
  const headers = { Accept: "application/json", ...(init.headers || {}), ...(extra || {}) };
  let response;
  try {
    response = await doFetch(`${prefix}/${path}`, {
      ...init,
      headers,
      credentials: options.credentials || "same-origin",
      cache: "no-store",
    });
  } catch (error) {
    throw new ChatAuthError(0, "ERROR_NETWORK", String(error && error.message || error), null);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const error = (body && body.error) || {};
    const retry = response.headers.get("Retry-After");
    throw new ChatAuthError(
      response.status,
      error.code || `HTTP_${response.status}`,
      error.message || `chatauth answered ${response.status}`,
      retry === null ? null : Number(retry),
    );
  }
  if (options.onSession) options.onSession(body);
  return body;
}

/** GET {prefix}/token: the logged-in user's chat session. */
export function fetchChatToken(options = {}) {
  return call("token", { method: "GET" }, options);
}

/**
 * POST {prefix}/token/refresh: replace `rejected` (the token the chat SDK says the provider
 * refused) and return the session to use now.
 */
export function refreshChatToken(rejected, options = {}) {
  return call(
    "token/refresh",
    {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: rejected }),
    },
    options,
  );
}

/**
 * The token of one SDK connection: session() returns the current session (fetched once),
 * refresh() replaces the token this source last handed out. Concurrent refresh() calls share
 * one request.
 */
export function chatTokenSource(options = {}) {
  let current = options.session || null;
  let pending = null;
  const once = (work) => {
    if (!pending) {
      pending = work().then(
        (session) => {
          current = session;
          pending = null;
          return session;
        },
        (error) => {
          pending = null;
          throw error;
        },
      );
    }
    return pending;
  };
  return {
    get current() {
      return current;
    },
    session() {
      return current ? Promise.resolve(current) : once(() => fetchChatToken(options));
    },
    refresh() {
      return once(() =>
        current ? refreshChatToken(current.token, options) : fetchChatToken(options),
      );
    },
  };
}

/**
 * Stream: a `tokenProvider` for client.connectUser(user, tokenProvider). Stream calls it to
 * connect and again whenever it refuses the token (expired or revoked); the first call gives
 * the current token, later ones a replaced one.
 */
export function streamTokenProvider(options = {}) {
  const source = chatTokenSource(options);
  let handedOut = false;
  return async () => {
    const session = handedOut ? await source.refresh() : await source.session();
    handedOut = true;
    return session.token;
  };
}

/**
 * Sendbird: sets handler.onSessionTokenRequired (a SessionHandler of @sendbird/chat), which
 * Sendbird calls when the session token it holds expired or was revoked. Returns the handler
 * for sb.setSessionHandler(...).
 */
export function sendbirdSessionHandler(handler, options = {}) {
  const source = chatTokenSource(options);
  handler.onSessionTokenRequired = (resolve, reject) => {
    source.refresh().then((session) => resolve(session.token), reject);
  };
  return handler;
}

/**
 * Twilio Conversations: refresh the token before it expires ("tokenAboutToExpire") and after
 * ("tokenExpired"), handing the new one to client.updateToken. Errors go to options.onError
 * (default: console.error). Returns the client.
 */
export function twilioTokenRefresh(client, options = {}) {
  const source = chatTokenSource(options);
  const renew = () =>
    source
      .refresh()
      .then((session) => client.updateToken(session.token))
      .catch(options.onError || ((error) => console.error("chatauth: Twilio token refresh failed", error)));
  client.on("tokenAboutToExpire", renew);
  client.on("tokenExpired", renew);
  return client;
}

// CometChat's codes for an auth token it does not accept (its SDK's login errors).
const COMETCHAT_TOKEN_REFUSED = new Set([
  "AUTH_ERR_AUTH_TOKEN_NOT_FOUND",
  "ERR_AUTH_TOKEN_NOT_FOUND",
  "AUTH_ERR_AUTH_TOKEN_EXPIRED",
  "ERR_INVALID_AUTH_TOKEN",
  "AUTH_ERR_TOKEN_INVALID",
]);

/**
 * CometChat: CometChat.login(authToken) with the current token; if CometChat refuses that
 * token, log in once more with a replaced one. Resolves to CometChat's user.
 */
export async function cometchatLogin(CometChat, options = {}) {
  const source = chatTokenSource(options);
  const session = await source.session();
  try {
    return await CometChat.login(session.token);
  } catch (error) {
    if (!error || !COMETCHAT_TOKEN_REFUSED.has(error.code)) throw error;
    const fresh = await source.refresh();
    return CometChat.login(fresh.token);
  }
}

/**
 * Matrix, matrix-js-sdk up to 42 (43.0.0 removed the option; use matrixFetch there): a
 * `tokenRefreshFunction` for matrix-js-sdk's createClient. The SDK calls it when
 * the homeserver soft-logs the access token out (401 M_UNKNOWN_TOKEN); it answers a new
 * access token from chatauth.
 */
export function matrixTokenRefresh(options = {}) {
  const source = chatTokenSource(options);
  return async () => {
    const session = await source.refresh();
    return {
      accessToken: session.token,
      refreshToken: MATRIX_REFRESH_PLACEHOLDER,
      expiry: session.expires_at ? new Date(session.expires_at) : undefined,
    };
  };
}

/**
 * Matrix (matrix-js-sdk 43 and later, which dropped `tokenRefreshFunction`): a `fetchFn` for
 * createClient. When the homeserver answers 401 M_UNKNOWN_TOKEN to a request made with the
 * app's token (soft logout: the token expired; or the token was logged out while the app
 * session lives on), it has the app replace that token (POST {prefix}/token/refresh) and sends
 * the request again with the new one, so the SDK call that met the soft logout succeeds.
 * Later requests the SDK still makes with the replaced token go out with the new one; pass
 * `onSession: (s) => client.setAccessToken(s.token)` to update the client too. If the app
 * refuses (its own session ended), the homeserver's 401 goes back to the SDK unchanged, and
 * the SDK emits "Session.logged_out" as it would without this function.
 */
export function matrixFetch(options = {}) {
  const send = options.fetch || ((resource, init) => globalThis.fetch(resource, init));
  // rejected token -> the refresh that replaces it (one per token, however many requests
  // met the 401 at once).
  const refreshes = new Map();
  let current = options.session ? options.session.token : null;
  return async (resource, init = {}) => {
    const headers = new Headers(init.headers);
    const auth = headers.get("Authorization") || "";
    let token = auth.startsWith("Bearer ") ? auth.slice(7) : null;
    if (token && current && token !== current && refreshes.has(token)) {
      token = current;
      headers.set("Authorization", `Bearer ${token}`);
    }
    const response = await send(resource, { ...init, headers });
    if (response.status !== 401 || !token) return response;
    let body = null;
    try {
      body = await response.clone().json();
    } catch {
      return response;
    }
    if (!body || body.errcode !== "M_UNKNOWN_TOKEN") return response;
    let refresh = refreshes.get(token);
    if (!refresh) {
      refresh = refreshChatToken(token, options);
      refreshes.set(token, refresh);
      refresh.catch(() => refreshes.delete(token));
    }
    let session;
    try {
      session = await refresh;
    } catch {
      return response;
    }
    if (!session || !session.token || session.token === token) return response;
    current = session.token;
    headers.set("Authorization", `Bearer ${current}`);
    return send(resource, { ...init, headers });
  };
}
