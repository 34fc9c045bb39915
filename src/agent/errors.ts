// Error codes of the node agent (configuration, files, the apply/check/down orchestration).
import { defineErrors } from '../core/errors.js';

export const AgentErrors = defineErrors({
  CONFIG_INVALID: {
    status: 400,
    kind: 'input',
    summary: 'a node configuration value breaks a rule; the message names the field',
  },
  AGENT_FILE: {
    status: 400,
    kind: 'input',
    summary: 'a file the agent was given cannot be read (view, configuration)',
  },
  AGENT_STATE_DIR: {
    status: 500,
    kind: 'internal',
    summary: 'the agent cannot write its state directory (keys, PID files, last view)',
  },
  AGENT_BUSY: {
    status: 409,
    kind: 'conflict',
    summary:
      "another agent pass holds this node's state directory lock (a daemon and a CLI apply at once); the message names its PID",
  },
  APPLY_FAILED: {
    status: 500,
    kind: 'internal',
    summary: 'some kernel objects could not be created or removed; the message lists each object and why',
  },
});
