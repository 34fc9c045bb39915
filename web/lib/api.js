// The TNoDB API as the page calls it: the bearer token from the session, errors as ApiError with
// the server's message ({error: {code, message}}), and an event for a token the server refuses.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const KEY = 'exitnode.token';

/** The token lives in sessionStorage only: it goes with the tab, never to disk or a cookie. */
export const session = {
  get token() {
    return sessionStorage.getItem(KEY);
  },
  set token(t) {
    if (t) sessionStorage.setItem(KEY, t);
    else sessionStorage.removeItem(KEY);
  },
};

export async function api(path, { method = 'GET', body, text = false, signal, token = session.token } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  } catch (e) {
    if (signal?.aborted) throw e;
    throw new ApiError(0, 'UNREACHABLE', `cannot reach TNoDB (${e.message})`);
  }
  const raw = await res.text();
  if (res.ok) return text ? raw : raw ? JSON.parse(raw) : undefined;
  let err;
  try {
    err = JSON.parse(raw).error;
  } catch {
    /* not our API */
  }
  if (res.status === 401) window.dispatchEvent(new CustomEvent('exitnode:unauthorized'));
  throw new ApiError(
    res.status,
    err?.code ?? `HTTP_${res.status}`,
    err?.message ?? `${method} ${path}: HTTP ${res.status}`,
  );
}

/** A query string from the defined values of an object. */
export function qs(o) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}
