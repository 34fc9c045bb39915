// Error codes of port forwards and the IPv6 inbound policy (src/core/forward.ts, src/store/forwards.ts).
import { defineErrors } from '../errors.js';

export const ForwardErrors = defineErrors({
  FORWARD_INVALID: {
    status: 400,
    kind: 'input',
    summary:
      'a port forward or an inbound rule has a bad protocol (tcp or udp), port (1-65535), range, target or source prefix',
  },
  FORWARD_PORT_RESERVED: {
    status: 409,
    kind: 'conflict',
    summary: 'the public port is one the gateway uses itself (WireGuard endpoints of the slot, BGP, BFD)',
  },
  FORWARD_PORT_TAKEN: {
    status: 409,
    kind: 'conflict',
    summary: "another forward of the network's slot has that protocol and public port",
  },
  FORWARD_PORTS_EXHAUSTED: {
    status: 409,
    kind: 'conflict',
    summary: "every public port of the slot's GWPubIP4 for that protocol is taken or reserved",
  },
  FORWARD_NO_IPV4: {
    status: 409,
    kind: 'conflict',
    summary: "the network's slot has no GWPubIP4 (the allocation's IPv4 pool has no address for it)",
  },
  FORWARD_UNKNOWN: { status: 404, kind: 'input', summary: 'the network has no forward with that protocol and port' },
  FORWARD_QUOTA: { status: 409, kind: 'conflict', summary: 'the network has as many forwards as its quota allows' },
  INBOUND_POLICY_INVALID: { status: 400, kind: 'input', summary: 'an inbound policy is "open" or "closed"' },
  INBOUND_RULE_OVERLAP: {
    status: 409,
    kind: 'conflict',
    summary: 'the inbound rule matches packets another rule of the network matches already',
  },
  INBOUND_RULE_UNKNOWN: { status: 404, kind: 'input', summary: 'the network has no inbound rule with that id' },
  INBOUND_RULE_QUOTA: {
    status: 409,
    kind: 'conflict',
    summary: 'the network has as many inbound rules as its quota allows',
  },
});
