// The API's own error codes: what the HTTP layer refuses before the store sees a request.
import { defineErrors } from '../core/errors.js';

export const ApiErrors = defineErrors({
  BAD_REQUEST: {
    status: 400,
    kind: 'input',
    summary: "the request does not match the route's schema (body, path, query or headers), or its JSON is malformed",
  },
  UNAUTHORIZED: { status: 401, kind: 'auth', summary: 'no bearer token, or a token TNoDB does not know' },
  FORBIDDEN: {
    status: 403,
    kind: 'auth',
    summary: 'the token is valid but its scope (admin, farm, tenant, node) does not allow this request',
  },
  NOT_FOUND: { status: 404, kind: 'input', summary: 'no such route (method and path); the routes are listed at /docs' },
  CONTROL_CHARACTER: {
    status: 400,
    kind: 'input',
    summary:
      'a text value holds a control character (C0, DEL, C1) or a bidirectional/line-separator format character: text fields take printable characters only',
  },
  RATE_LIMITED: {
    status: 429,
    kind: 'unavailable',
    summary: 'the token sent more requests than the rate limit per token allows; retry after the Retry-After seconds',
  },
  LONG_POLL_LIMIT: {
    status: 429,
    kind: 'unavailable',
    summary:
      'too many view long-polls are open (for this token, or on the whole server); retry after the Retry-After seconds',
  },
  REQUEST_TIMEOUT: { status: 408, kind: 'input', summary: 'the request did not arrive in full in time' },
  HEADERS_TOO_LARGE: {
    status: 431,
    kind: 'input',
    summary: "the request's headers are larger than the server accepts",
  },
  PAYLOAD_TOO_LARGE: { status: 413, kind: 'input', summary: 'the request body is larger than the server accepts' },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    kind: 'input',
    summary: 'request bodies are JSON (Content-Type: application/json)',
  },
  VERSION_MISMATCH: {
    status: 426,
    kind: 'input',
    summary:
      'the client or agent (x-exitnode-version) is of another major version than the server: install the same major on both',
  },
});
