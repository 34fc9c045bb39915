// JSON schemas shared by the routes (request validation and the OpenAPI document).
export const errorBody = {
  type: 'object',
  properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } },
} as const;

export const NAME = { type: 'string', minLength: 1, maxLength: 63 } as const;
export const NODE_ID = { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,62}$' } as const;
export const NETWORK_ID = { type: 'string', pattern: '^tn-[0-9a-f]{12}$' } as const;
/** Checked by core (nrId), which names the slot rule in its message. */
export const NR_ID = { type: 'string', minLength: 1, maxLength: 8 } as const;
export const NUMBER_TEXT = { type: 'string', pattern: '^[0-9]{1,6}$' } as const;

export const resource = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    node: { type: 'string' },
    prefix: { type: 'string' },
    publicKey: { type: 'string' },
    warning: { type: 'string' },
  },
} as const;

export const network = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    allocation: { type: 'integer' },
    slot: { type: 'integer' },
    exit: { type: 'string' },
    resources: { type: 'array', items: resource },
    warning: { type: 'string' },
  },
} as const;

export const slot = {
  type: 'object',
  properties: {
    allocation: { type: 'integer' },
    slot: { type: 'integer' },
    node: { type: ['string', 'null'] },
    epoch: { type: 'integer' },
    leaseExpiresAt: { type: ['integer', 'null'] },
    nrs: { type: 'integer' },
    ipv4: { type: 'string' },
    warning: { type: 'string' },
    renewedAt: { type: 'integer' },
    movingTo: { type: 'string' },
    health: { type: 'string' },
    healthAt: { type: 'integer' },
    now: { type: 'integer' },
    // Stage 2 ('vrrp' allocations): the candidates in order with their VRRP reports.
    candidates: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          node: { type: 'string' },
          rank: { type: 'integer' },
          priority: { type: 'integer' },
          healthy: { type: 'boolean' },
          lastHeartbeat: { type: 'integer' },
          vrrpState: { type: 'string' },
          vrrpPriority: { type: 'integer' },
          vrrpSince: { type: 'integer' },
          reportedAt: { type: 'integer' },
          changedAt: { type: 'integer' },
          stepDown: { type: 'boolean' },
        },
      },
    },
    handoverTo: { type: 'string' },
    vrrpTransitions: { type: 'integer' },
  },
} as const;

export const ipv4Pool = {
  type: 'object',
  additionalProperties: false,
  required: ['addresses', 'prefixLength', 'gateway'],
  properties: {
    addresses: { type: 'array', maxItems: 15, items: { type: 'string', maxLength: 64 } },
    prefixLength: { type: 'integer', minimum: 1, maximum: 32 },
    gateway: { type: 'string', maxLength: 64 },
  },
} as const;

export const allocation = {
  type: 'object',
  properties: {
    number: { type: 'integer' },
    farm: { type: 'string' },
    prefix: { type: 'string' },
    ipv4: {
      type: 'object',
      properties: {
        addresses: { type: 'array', items: { type: 'string' } },
        prefixLength: { type: 'integer' },
        gateway: { type: 'string' },
      },
    },
    upstream: { type: 'object', properties: { ll: { type: 'string' }, ip6: { type: 'string' } } },
    failover: { type: 'string' },
    candidates: { type: 'integer' },
    slots: { type: 'array', items: slot },
  },
} as const;

export const node = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    farm: { type: 'string' },
    publicIPv4: { type: 'string' },
    publicIPv6: { type: 'string' },
    exitCapable: { type: 'boolean' },
    lastHeartbeat: { type: 'integer' },
    healthy: { type: 'boolean' },
  },
} as const;

export const nodeView = {
  type: 'object',
  properties: {
    version: { type: 'integer' },
    node: {
      type: 'object',
      properties: { id: { type: 'string' }, publicIPv4: { type: 'string' }, publicIPv6: { type: 'string' } },
    },
    allocations: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          number: { type: 'integer' },
          prefix: { type: 'string' },
          upstream: {
            type: 'object',
            properties: {
              ll: { type: 'string' },
              ip6: { type: 'string' },
              ipv4Gateway: { type: 'string' },
              ipv4PrefixLength: { type: 'integer' },
            },
          },
        },
      },
    },
    slots: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          allocation: { type: 'integer' },
          slot: { type: 'integer' },
          epoch: { type: 'integer' },
          ipv4: { type: 'string' },
          candidates: { type: 'array', items: { type: 'string' } },
          priority: { type: 'integer' },
          stepDown: { type: 'boolean' },
        },
      },
    },
    sealTo: {
      type: 'array',
      items: { type: 'object', properties: { node: { type: 'string' }, key: { type: 'string' } } },
    },
    networks: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          allocation: { type: 'integer' },
          exit: { type: 'string' },
          resources: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                id: { type: 'string' },
                node: { type: 'string' },
                publicKey: { type: 'string' },
                endpoint: { type: 'string' },
                sealedKey: { type: 'string' },
                learnedEndpoint: { type: 'string' },
              },
            },
          },
          // IPv4 port forwards and the IPv6 inbound policy (issue 13; core/forward.ts).
          forwards: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                protocol: { type: 'string' },
                port: { type: 'integer' },
                target: { type: 'string' },
                targetPort: { type: 'integer' },
              },
            },
          },
          inbound: {
            type: 'object',
            properties: {
              policy: { type: 'string' },
              rules: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    protocol: { type: 'string' },
                    from: { type: 'integer' },
                    to: { type: 'integer' },
                    source: { type: 'string' },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
} as const;

export const created = { type: 'object', properties: { id: { type: 'string' }, token: { type: 'string' } } } as const;

/** Standard error responses for the OpenAPI document. */
export function errors(...codes: number[]): Record<number, typeof errorBody> {
  return Object.fromEntries([400, 401, ...codes].map((c) => [c, errorBody]));
}
