// The error catalog. Every error exitnode reports to a person has a stable code, a message that
// names the offending value and the rule it broke, an HTTP status (for the API) and a kind that
// decides the CLI's exit status (input errors exit 2). Each part of the code base declares its own
// codes with `defineErrors` in its own `errors.ts`; `catalog()` lists them all, and a test checks
// that every code is documented in docs/errors.md.

export type ErrorKind =
  | 'input' //       the caller's mistake: bad value, unknown id (CLI exit 2, HTTP 4xx)
  | 'conflict' //    a valid request that the current state refuses (CLI exit 2, HTTP 409)
  | 'auth' //        missing or insufficient token (HTTP 401/403)
  | 'unavailable' // a dependency is down or busy (CLI exit 1, HTTP 503)
  | 'internal'; //   a bug or a failed system call (CLI exit 1, HTTP 500)

export interface ErrorSpec {
  status: number;
  kind: ErrorKind;
  /** What the code means, for docs/errors.md and the OpenAPI document. */
  summary: string;
}

const registry = new Map<string, ErrorSpec>();

/** Registers a part's error codes. Codes are SCREAMING_SNAKE_CASE and unique across the code base. */
export function defineErrors<const T extends Record<string, ErrorSpec>>(specs: T): { [K in keyof T]: K } {
  const codes = {} as { [K in keyof T]: K };
  for (const [code, spec] of Object.entries(specs)) {
    const known = registry.get(code);
    if (known && known !== spec) throw new Error(`error code ${code} is defined twice`);
    registry.set(code, spec);
    (codes as Record<string, string>)[code] = code;
  }
  return codes;
}

export function catalog(): ReadonlyMap<string, ErrorSpec> {
  return registry;
}

export class ExitnodeError extends Error {
  readonly code: string;
  readonly status: number;
  readonly kind: ErrorKind;
  /** Extra machine-readable context (the offending field, a suggestion). */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, details?: Record<string, unknown>) {
    super(message);
    const spec = registry.get(code);
    if (!spec) throw new Error(`unknown error code ${code} (message: ${message})`);
    this.name = 'ExitnodeError';
    this.code = code;
    this.status = spec.status;
    this.kind = spec.kind;
    this.details = details;
  }

  toJSON(): { code: string; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function isExitnodeError(e: unknown): e is ExitnodeError {
  return e instanceof ExitnodeError;
}

/** Quotes a value for a message: strings in double quotes, the rest as JSON. */
export function q(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return v.toString();
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

export const CoreErrors = defineErrors({
  ADDRESS_SYNTAX: {
    status: 400,
    kind: 'input',
    summary: 'the text is not an IPv6 or IPv4 address in a form RFC 4291 / RFC 791 allows',
  },
  PREFIX_SYNTAX: {
    status: 400,
    kind: 'input',
    summary: 'the text is not ADDRESS/LENGTH with a length that fits the address family',
  },
  PREFIX_HOST_BITS: {
    status: 400,
    kind: 'input',
    summary: 'a prefix has bits set below its length (write the network address)',
  },
  NOT_IPV6: { status: 400, kind: 'input', summary: 'an IPv6 value was required and an IPv4 one was given' },
  NOT_IPV4: { status: 400, kind: 'input', summary: 'an IPv4 value was required and an IPv6 one was given' },
  PREFIX_NOT_48: { status: 400, kind: 'input', summary: 'a farm allocation must be exactly a /48' },
  PREFIX_NOT_GLOBAL: {
    status: 400,
    kind: 'input',
    summary: 'a farm allocation must be unicast and not link-local (fe80::/10) or multicast (ff00::/8)',
  },
  ALLOCATION_RANGE: { status: 400, kind: 'input', summary: 'the allocation number must be an integer from 1 to 65535' },
  SLOT_PREFIXZERO: {
    status: 400,
    kind: 'input',
    summary: 'slot 0 is PrefixZero, the upstream segment; it never holds NRs',
  },
  SLOT_RANGE: { status: 400, kind: 'input', summary: 'the slot (ExitNode number) must be an integer from 1 to 15' },
  NR_ID_SYNTAX: { status: 400, kind: 'input', summary: 'an NR id is 1 to 4 hexadecimal digits (a 16-bit subnet id)' },
  NR_ID_PREFIXZERO: { status: 400, kind: 'input', summary: 'NR ids 0000-0fff belong to PrefixZero and are never NRs' },
  NR_ID_RESERVED: {
    status: 400,
    kind: 'input',
    summary: 'NR ids ff00-ffff are reserved: their IPv4 /24 would overlap 10.255.0.0/16',
  },
  NR_ID_OUTSIDE_SLOT: {
    status: 400,
    kind: 'input',
    summary: 'an NR id must lie in its slot: its first hex digit is the slot number',
  },
  ADDRESS_OUTSIDE_ALLOCATION: {
    status: 400,
    kind: 'input',
    summary: 'the address or prefix is not inside the farm allocation /48',
  },
  UPSTREAM_ADDRESS_OVERRIDE: {
    status: 400,
    kind: 'input',
    summary:
      "an upstream address override does not fit the PrefixZero segment (link-local fe80::/64, global in the first /64 of the /48, not a gateway's address)",
  },
  SLOT_LIST_SYNTAX: {
    status: 400,
    kind: 'input',
    summary: 'a slot list is numbers and ranges from 1 to 15, comma separated (1-3,5)',
  },
  USAGE: { status: 400, kind: 'input', summary: "the command line does not match the command's usage" },
  INTERNAL: {
    status: 500,
    kind: 'internal',
    summary: 'an unexpected failure inside exitnode (a bug): the message says where',
  },
});
