// Errors of the HTTP client: the server could not be reached, or it refused the request.
import { defineErrors } from '../core/errors.js';

export const ClientErrors = defineErrors({
  SERVER_UNREACHABLE: {
    status: 503,
    kind: 'unavailable',
    summary: 'the TNoDB server did not answer (connection refused, timeout, DNS)',
  },
  SERVER_REFUSED: {
    status: 400,
    kind: 'input',
    summary: "the TNoDB server refused the request (4xx); the message is the server's",
  },
  REQUEST_INVALID: {
    status: 400,
    kind: 'input',
    summary: 'the request cannot be sent as given (a header value with a newline or a character HTTP does not allow)',
  },
  SERVER_FAILED: {
    status: 502,
    kind: 'unavailable',
    summary: 'the TNoDB server failed (5xx) or answered something that is not its API',
  },
});
