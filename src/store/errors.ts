// The store's error codes: the states TNoDB refuses (409), unknown ids (404) and bad values (400).
import { defineErrors } from '../core/errors.js';

export const StoreErrors = defineErrors({
  NAME_SYNTAX: {
    status: 400,
    kind: 'input',
    summary: 'a farm, tenant, node or network name has characters or a length the rule does not allow',
  },
  NAME_TAKEN: { status: 409, kind: 'conflict', summary: 'a farm, tenant, node or network of that name exists already' },
  FARM_UNKNOWN: { status: 404, kind: 'input', summary: 'no farm has that id' },
  TENANT_UNKNOWN: { status: 404, kind: 'input', summary: 'no tenant has that id' },
  ALLOCATION_UNKNOWN: { status: 404, kind: 'input', summary: 'no allocation has that number' },
  ALLOCATION_TAKEN: {
    status: 409,
    kind: 'conflict',
    summary: 'the /48 or the allocation number is registered already (numbers and /48s are unique across the grid)',
  },
  ALLOCATION_NUMBERS_EXHAUSTED: { status: 409, kind: 'conflict', summary: 'every allocation number 1-65535 is in use' },
  IPV4_POOL: {
    status: 400,
    kind: 'input',
    summary:
      'the IPv4 pool must list at most 15 unicast host addresses (one per slot, in slot order) in one subnet of /16 to /32 with its gateway',
  },
  UPSTREAM_ADDRESS: {
    status: 400,
    kind: 'input',
    summary:
      "the upstream link-local must be in fe80::/64 and its global address in the first /64 of the /48 (where the gateways are on-link), neither a gateway's own address",
  },
  NODE_UNKNOWN: {
    status: 404,
    kind: 'input',
    summary: "no node has that id, or none that you may see (another farm's nodes answer as if they did not exist)",
  },
  NODE_NOT_EXIT_CAPABLE: {
    status: 409,
    kind: 'conflict',
    summary: 'a slot can only be given to a node registered as exit-capable',
  },
  SLOT_UNASSIGNED: {
    status: 409,
    kind: 'conflict',
    summary: 'no slot of the allocation has a node with a live lease: assign one before creating networks',
  },
  SLOT_MOVE_NOOP: { status: 409, kind: 'conflict', summary: 'the slot is held by that node already' },
  SLOT_MOVE_TARGET_DOWN: {
    status: 409,
    kind: 'conflict',
    summary: 'a slot moves only to a node that heartbeats (within the lease TTL)',
  },
  SLOT_LEASE_LAPSED: {
    status: 409,
    kind: 'conflict',
    summary:
      'the slots have nodes but none has a live lease: their agents have not sent a heartbeat within the lease TTL',
  },
  SLOT_FULL: {
    status: 409,
    kind: 'conflict',
    summary: 'every NR id of the slot is in use or in quarantine: enable another ExitNode (slot)',
  },
  NETWORK_UNKNOWN: { status: 404, kind: 'input', summary: 'no network of yours has that id' },
  NR_UNKNOWN: {
    status: 404,
    kind: 'input',
    summary: 'the network has no NR with that id (for a node: none that it hosts)',
  },
  NR_IS_EXIT: {
    status: 409,
    kind: 'conflict',
    summary: 'the ExitPoint NR goes only with its network: delete the network instead',
  },
  NR_NODE_TAKEN: {
    status: 409,
    kind: 'conflict',
    summary: 'the network has an NR on that node already (one NR per node)',
  },
  IDEMPOTENCY_MISMATCH: {
    status: 409,
    kind: 'conflict',
    summary: 'the Idempotency-Key was used for a different request (another network or node)',
  },
  IDEMPOTENCY_GONE: {
    status: 409,
    kind: 'conflict',
    summary: 'the Idempotency-Key was used for an NR that has since been removed',
  },
  KEY_SYNTAX: {
    status: 400,
    kind: 'input',
    summary: 'a WireGuard public key is 32 bytes in base64 (44 characters ending in =)',
  },
  KEY_INVALID: {
    status: 400,
    kind: 'input',
    summary:
      'a WireGuard public key must be a usable X25519 point: not all zeros or another low-order point, not a non-canonical encoding',
  },
  KEY_TAKEN: {
    status: 409,
    kind: 'conflict',
    summary: 'the public key is published for another NR already: every NR has a key of its own',
  },
  NODE_ADDRESS: {
    status: 400,
    kind: 'input',
    summary:
      "a node's public address must be a unicast address others can reach: not unspecified, loopback, link-local, multicast, broadcast or reserved",
  },
  QUOTA_EXCEEDED: {
    status: 409,
    kind: 'conflict',
    summary:
      'a quota set by the admin is reached (per tenant: networks, NRs; per farm: allocations, nodes); the message names it',
  },
  QUOTA_VALUE: {
    status: 400,
    kind: 'input',
    summary: 'a quota is a whole number from 0 to 1000000',
  },
  DATA_DIR_LOCKED: {
    status: 409,
    kind: 'conflict',
    summary:
      'another server (a live process) holds the data directory: one PGlite data directory serves one server at a time',
  },
  DATA_DIR: {
    status: 400,
    kind: 'input',
    summary: 'the data directory cannot be used: it is a file, or it cannot be created or written',
  },
  FAILOVER_INVALID: {
    status: 400,
    kind: 'input',
    summary:
      'an allocation\'s failover mode is "lease" or "vrrp", and its candidates per slot a whole number from 1 to 8',
  },
  CANDIDATES_INVALID: {
    status: 400,
    kind: 'input',
    summary:
      "a slot's candidate list names 1 to the allocation's candidates nodes, each once (a 'lease' allocation's slot has one node)",
  },
  SEALED_INVALID: {
    status: 400,
    kind: 'input',
    summary:
      'a sealed ExitPoint key is canonical base64 of 80 bytes (ephemeral key, ciphertext, tag), sealed to another node, each node once',
  },
  REPORT_INVALID: {
    status: 400,
    kind: 'input',
    summary: "a heartbeat's VRRP or endpoint report has a value out of its rule (the message names it)",
  },
  STORE_BUSY: {
    status: 503,
    kind: 'unavailable',
    summary: 'the database kept refusing the transaction (serialisation or deadlock); retry',
  },
  STORE_UNAVAILABLE: { status: 503, kind: 'unavailable', summary: 'the database cannot be reached or opened' },
});
