// Error codes of the upstream renderers (src/render). The slot list's syntax error
// (SLOT_LIST_SYNTAX), the /48 rules and the upstream address rules (UPSTREAM_ADDRESS_OVERRIDE,
// src/core/upstream.ts) belong to core and are reused from there.
import { defineErrors } from '../core/errors.js';

export const RenderErrors = defineErrors({
  UPSTREAM_ROUTER_UNKNOWN: {
    status: 400,
    kind: 'input',
    summary:
      'the router OS is not one exitnode renders for (linux, ifupdown2, frr, bird, vyos, mikrotik, cisco, junos, openwrt)',
  },
  UPSTREAM_IFACE_NAME: {
    status: 400,
    kind: 'input',
    summary: 'the upstream interface name is not a valid interface name for that router OS',
  },
  UPSTREAM_VIA_UNKNOWN: {
    status: 400,
    kind: 'input',
    summary:
      'the next-hop kind must be "ll" (the gateway\'s link-local address) or "global" (its address in PrefixZero)',
  },
});
