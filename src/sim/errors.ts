// Error codes of the simulated farm (`exitnode sim`).
import { defineErrors } from '../core/errors.js';

export const SimErrors = defineErrors({
  SIM_NOT_RUNNING: {
    status: 404,
    kind: 'input',
    summary: 'no simulated farm in the state directory (run exitnode sim up first)',
  },
  SIM_RUNNING: {
    status: 409,
    kind: 'conflict',
    summary:
      'a simulated farm already runs in this state directory or with this namespace prefix (exitnode sim down first)',
  },
  SIM_OPTION: {
    status: 400,
    kind: 'input',
    summary: 'a sim up option is out of range; the message names it and the rule',
  },
  SIM_UNKNOWN_HOST: {
    status: 404,
    kind: 'input',
    summary: 'sim exec names a host the simulated farm does not have; the message lists the hosts',
  },
  SIM_TOOL_MISSING: {
    status: 503,
    kind: 'unavailable',
    summary: 'a program the simulated farm runs is not installed; the message names it and the Debian packages',
  },
  SIM_NOT_ROOT: { status: 403, kind: 'input', summary: 'the simulated farm needs root (network namespaces)' },
  SIM_TIMEOUT: {
    status: 504,
    kind: 'unavailable',
    summary: 'the simulated farm did not converge in time; the message says what was still missing',
  },
  SIM_UNSUPPORTED: {
    status: 501,
    kind: 'unavailable',
    summary: 'the server does not support what sim up was asked for (e.g. --failover vrrp before stage 2)',
  },
  SIM_PROCESS: {
    status: 500,
    kind: 'internal',
    summary: 'a process of the simulated farm (server, agent) failed to start; the message gives its log',
  },
});
