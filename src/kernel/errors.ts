// Error codes of the kernel adapter: a program that could not run or failed for one object.
import { defineErrors } from '../core/errors.js';

export const KernelErrors = defineErrors({
  KERNEL_TOOL_MISSING: {
    status: 503,
    kind: 'unavailable',
    summary: 'a program the agent runs (ip, nft, wg, wireguard-go, nsenter, sysctl) is not installed',
  },
  KERNEL_COMMAND_FAILED: {
    status: 500,
    kind: 'internal',
    summary: "a kernel command failed; the message names the namespace, the object and the kernel's answer",
  },
  KERNEL_OUTPUT: { status: 500, kind: 'internal', summary: 'a reader could not parse the output of ip, nft or wg' },
});
