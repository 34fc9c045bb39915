// NodeConfig: what the agent knows about its own node that the view does not say — where its
// namespaces go, where its public address and workload bridges live, how the uplink reaches each
// gateway, which WireGuard to use. Validated like the view: every name here ends up on a command line.

import { ExitnodeError, q } from '../core/errors.js';
import { NAMESPACE_PREFIX_RE } from '../core/ownership.js';
import type { CompileConfig, UplinkMode, WireGuardMode } from '../compile/config.js';
import { AgentErrors } from './errors.js';

export type { UplinkMode, WireGuardMode } from '../compile/config.js';

/** The node's configuration: what compile needs (CompileConfig) and where the agent keeps its state. */
export interface NodeConfig extends CompileConfig {
  /** Private keys (0600), wireguard-go PID files and logs, the last applied view. */
  stateDir: string;
}

const IFNAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,14}$/;
const NETNS_RE = /^(?:[A-Za-z0-9][A-Za-z0-9_.-]{0,62})?$/;

function fail(field: string, value: unknown, rule: string): never {
  throw new ExitnodeError(AgentErrors.CONFIG_INVALID, `config field ${field} = ${q(value)} ${rule}`, { field });
}

function str(o: Record<string, unknown>, key: string, re: RegExp, rule: string, def?: string): string {
  const v = o[key] ?? def;
  if (typeof v !== 'string' || !re.test(v)) fail(key, v, rule);
  return v;
}

/** Validates a node configuration (parsed JSON or text). */
export function parseNodeConfig(input: unknown): NodeConfig {
  let json = input;
  if (typeof input === 'string') {
    try {
      json = JSON.parse(input);
    } catch (e) {
      throw new ExitnodeError(
        AgentErrors.CONFIG_INVALID,
        `the node configuration is not JSON: ${(e as Error).message}`,
      );
    }
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('config', json, 'is not an object');
  const o = json as Record<string, unknown>;
  const nsRule = 'is not a namespace name (letters, digits, ".", "_", "-"; "" for the host\'s own)';
  const node = str(o, 'node', /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'is not a node id');
  const namespacePrefix = str(
    o,
    'namespacePrefix',
    NAMESPACE_PREFIX_RE,
    'is not a namespace prefix (up to 16 lowercase letters, digits, "-")',
    '',
  );
  const rootNamespace = str(o, 'rootNamespace', NETNS_RE, nsRule, '');
  const publicNamespace = str(o, 'publicNamespace', NETNS_RE, nsRule, '');
  const stateDir = str(o, 'stateDir', /^\/[^\0\n]*$/, 'is not an absolute path');
  const u = o.uplink;
  if (typeof u !== 'object' || u === null)
    fail(
      'uplink',
      u,
      'is not an object: {kind:"nic",device} | {kind:"macvlan",parent} | {kind:"veth",peerNamespace,bridge}',
    );
  const uo = u as Record<string, unknown>;
  let uplink: UplinkMode;
  const ifRule = 'is not an interface name (1-15 characters)';
  if (uo.kind === 'nic') uplink = { kind: 'nic', device: str(uo, 'device', IFNAME_RE, ifRule) };
  else if (uo.kind === 'macvlan') uplink = { kind: 'macvlan', parent: str(uo, 'parent', IFNAME_RE, ifRule) };
  else if (uo.kind === 'veth') {
    uplink = {
      kind: 'veth',
      peerNamespace: str(uo, 'peerNamespace', /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, nsRule),
      bridge: str(uo, 'bridge', IFNAME_RE, ifRule),
    };
  } else fail('uplink.kind', uo.kind, 'is not one of "nic", "macvlan", "veth"');
  const wireguard = (o.wireguard ?? 'auto') as WireGuardMode;
  if (!['auto', 'kernel', 'userspace', 'none'].includes(wireguard))
    fail('wireguard', o.wireguard, 'is not one of "auto", "kernel", "userspace", "none"');
  for (const k of Object.keys(o)) {
    if (!['node', 'namespacePrefix', 'rootNamespace', 'publicNamespace', 'stateDir', 'uplink', 'wireguard'].includes(k))
      fail(k, o[k], 'is not a configuration field');
  }
  return { node, namespacePrefix, rootNamespace, publicNamespace, stateDir, uplink, wireguard };
}
