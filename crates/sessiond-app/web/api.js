// Talking to sessiond: the access token lives in this module's memory only; the refresh
// token is an HttpOnly cookie on /ui/auth that no script can read (see README.md).

const UI = '/ui/auth';
const CSRF = { 'X-Requested-With': 'sessiond-ui' };
const LOCK = 'sessiond-refresh';
/** Marks a request the user did not ask for (a periodic or on-focus check): see README.md. */
const BACKGROUND = { 'X-Sessiond-Background': '1' };
const channel = 'BroadcastChannel' in globalThis ? new BroadcastChannel('sessiond') : null;

/** A failed call, carrying the API's problem details (`code`, `detail`, `reason`, ...). */
export class ApiProblem extends Error {
  constructor(problem) {
    super(problem.detail || problem.title || problem.code);
    this.problem = problem;
  }
}

/** Thrown when this device is no longer signed in; the app shows the sign-in page. */
export class SignedOut extends Error {
  constructor(reason) {
    super('signed out');
    this.reason = reason;
  }
}

let access = null; // { token, expiresAt (ms, local clock), threshold (ms), session }
let refreshing = null; // the refresh in flight, shared by every caller of this tab
const listeners = new Set();

/** `fn({ reason })` runs when this device ends up signed out (here or in another tab). */
export function onSignedOut(fn) {
  listeners.add(fn);
}

/** `fn()` runs when another tab of this browser signed in. */
let signedInElsewhere = () => {};
export function onSignedInElsewhere(fn) {
  signedInElsewhere = fn;
}

channel?.addEventListener('message', (event) => {
  if (event.data?.type === 'signed-out') {
    forget(event.data.reason ?? null, false);
  } else if (event.data?.type === 'signed-in' && !access) {
    signedInElsewhere();
  }
});

export function isSignedIn() {
  return access !== null;
}

function remember(body) {
  const lifetime = Math.max(0, body.expires_in) * 1000;
  // Refresh when less than `refresh_threshold` is left; with very short tokens (tests, strict
  // deployments) no later than half-way, so that not every call needs a refresh first.
  const threshold = Math.min(Math.max(0, body.refresh_threshold) * 1000, lifetime / 2);
  access = { token: body.access_token, expiresAt: Date.now() + lifetime, threshold, session: body.session };
}

function forget(reason, broadcast) {
  const wasSignedIn = access !== null;
  access = null;
  if (broadcast && (wasSignedIn || reason)) channel?.postMessage({ type: 'signed-out', reason });
  if (wasSignedIn || reason) for (const fn of listeners) fn({ reason });
}

async function problemOf(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    // not JSON: fall back to the status line below
  }
  const retryAfter = Number(response.headers.get('Retry-After')) || null;
  return { status: response.status, title: response.statusText, ...body, retryAfter };
}

async function send(path, { method = 'GET', body, headers = {}, signal } = {}) {
  try {
    return await fetch(path, {
      method,
      headers: body === undefined ? headers : { 'Content-Type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
      signal,
    });
  } catch (error) {
    // A call its caller abandoned (a newer search) is not a network failure.
    if (signal?.aborted) throw error;
    throw new ApiProblem({ code: 'network', detail: 'network error' });
  }
}

/** Whether `error` is a call abandoned through its `AbortSignal`. */
export function isAborted(error) {
  return error?.name === 'AbortError';
}

/** Signs in with e-mail and password; the refresh cookie is set by the answer. */
export async function signIn(email, password, deviceName) {
  const response = await send(`${UI}/login`, {
    method: 'POST',
    headers: CSRF,
    body: { email, password, device_name: deviceName || undefined },
  });
  if (!response.ok) throw new ApiProblem(await problemOf(response));
  remember(await response.json());
  channel?.postMessage({ type: 'signed-in' });
  return access.session;
}

/** Creates a guest account. */
export async function register(email, password) {
  const response = await send('/api/v1/auth/register', { method: 'POST', body: { email, password } });
  if (!response.ok) throw new ApiProblem(await problemOf(response));
}

/**
 * Trades the refresh cookie for a new access token (and a new cookie). One refresh at a
 * time per tab (shared promise) and per browser (a Web Lock), so that two tabs never
 * present the same refresh token; without Web Locks, the server's grace window answers the
 * loser `refresh_token_rotated` and it retries once with the cookie the winner stored.
 * Resolves to true when signed in; false when this browser has no live session.
 */
export function resume({ background = false } = {}) {
  refreshing ??= (async () => {
    try {
      return navigator.locks
        ? await navigator.locks.request(LOCK, () => refreshOnce(true, background))
        : await refreshOnce(true, background);
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

async function refreshOnce(mayRetry, background) {
  const headers = background ? { ...CSRF, ...BACKGROUND } : CSRF;
  const response = await send(`${UI}/refresh`, { method: 'POST', headers });
  if (response.ok) {
    remember(await response.json());
    return true;
  }
  const problem = await problemOf(response);
  if (problem.code === 'refresh_token_rotated' && mayRetry) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    return refreshOnce(false, background);
  }
  if (response.status === 401 || response.status === 403) {
    // The server refused the refresh: this device is signed out, for `reason` if it says.
    forget(problem.reason ?? null, true);
    return false;
  }
  // 5xx or a network failure: not a verdict on the session; let the caller show an error.
  throw new ApiProblem(problem);
}

async function fresh(background = false) {
  if (!access || access.expiresAt - Date.now() < access.threshold) {
    if (!(await resume({ background }))) throw new SignedOut(null);
  }
}

const ENDED = new Set(['session_revoked', 'session_expired', 'token_invalid', 'unauthenticated']);

/**
 * Calls the API with the access token, refreshing it first when it is about to expire and
 * once more on a 401 `token_expired` (then retrying). An ended session signs this device out.
 * `background: true` marks a call the user did not ask for (`X-Sessiond-Background: 1`, on
 * the refresh it may need too). `signal` (an AbortSignal) abandons the call: it then rejects
 * with an AbortError (see `isAborted`).
 */
export async function api(path, { background = false, ...options } = {}) {
  if (background) options.headers = { ...(options.headers ?? {}), ...BACKGROUND };
  await fresh(background);
  let response = await send(`/api/v1${path}`, withToken(options));
  if (response.status === 401) {
    let problem = await problemOf(response);
    if (problem.code === 'token_expired') {
      if (!(await resume({ background }))) throw new SignedOut(null);
      response = await send(`/api/v1${path}`, withToken(options));
      if (response.status === 401) problem = await problemOf(response);
    }
    if (response.status === 401) {
      if (ENDED.has(problem.code) || problem.code === 'token_expired') {
        forget(problem.reason ?? null, true);
        await dropCookie();
        throw new SignedOut(problem.reason ?? null);
      }
      throw new ApiProblem(problem);
    }
  }
  if (!response.ok) throw new ApiProblem(await problemOf(response));
  if (response.status === 204) return null;
  return response.json();
}

function withToken(options) {
  return { ...options, headers: { ...(options.headers ?? {}), Authorization: `Bearer ${access?.token}` } };
}

async function dropCookie() {
  try {
    await send(`${UI}/logout`, { method: 'POST', headers: CSRF });
  } catch {
    // offline: the cookie dies with the session anyway
  }
}

/** Signs this device out: ends the session on the server and drops the cookie. */
export async function signOut() {
  try {
    await fresh();
  } catch {
    // already signed out, or offline: still drop what this browser holds
  }
  const headers = access ? { ...CSRF, Authorization: `Bearer ${access.token}` } : CSRF;
  try {
    await send(`${UI}/logout`, { method: 'POST', headers });
  } finally {
    forget(null, true);
  }
}
