// The error codes of sealed keys (src/core/seal.ts).
import { defineErrors } from '../errors.js';

export const SealErrors = defineErrors({
  SEAL_KEY_INVALID: {
    status: 400,
    kind: 'input',
    summary: 'a node key is 32 bytes in base64 (44 characters), as WireGuard writes keys',
  },
  SEAL_OPEN_FAILED: {
    status: 400,
    kind: 'input',
    summary:
      'a sealed key does not open with this node key: it was sealed to another node, or it was changed on the way',
  },
});
