// keepalived's configuration for one candidate gateway (stage 2, DESIGN.md 8.2), rendered from the
// addressing plan: VRRPv3 on the uplink, GWPubLL as the virtual address, GWPubIP6 and GWPubIP4
// excluded (carried by the instance, not in the adverts), the IPv4 default route with them. Pure:
// the kernel side (src/kernel/vrrp.ts) writes the files, starts, reloads and stops keepalived.
// Checked on this machine with keepalived 2.2.7 (`keepalived --config-test` in the gateway
// namespace, then two candidates on one segment: test/netns/vrrp.root.test.ts).

import { createHash } from 'node:crypto';
import { planSlot, type Allocation } from '../core/plan.js';
import type { VrrpSpec } from './desired.js';

/** The advert interval DESIGN.md 8.2 asks for: detection in about 3 × 0.3 s. */
export const VRRP_ADVERT_S = 0.3;

/** The files of one instance, in STATE/vrrp/NS/ (vrrpDir). */
export const VRRP_FILES = {
  config: 'keepalived.conf',
  /** The parent process (`-p`): the one that is signalled (SIGHUP reload, SIGTERM stop). */
  pid: 'keepalived.pid',
  /** The VRRP child process (`-r`). */
  vrrpPid: 'vrrp.pid',
  /** "MASTER|BACKUP|FAULT|STOPPED PRIORITY UNIX-MS", rewritten (rename) on every transition. */
  state: 'state',
  /** keepalived writes one line per transition here; NOTIFY_SCRIPT reads them in order. */
  fifo: 'notify.fifo',
  notify: 'notify.sh',
  /** "1": FAULT (planned handover, vrrpDrain); "0": in service. */
  drain: 'drain',
  log: 'keepalived.log',
} as const;

/** The directory of the keepalived of gateway namespace NS. */
export function vrrpDir(stateDir: string, ns: string): string {
  return `${stateDir.replace(/\/+$/, '')}/vrrp/${ns}`;
}

/** The VRRP states an instance reports (keepalived's STOP is written STOPPED). */
export type VrrpStateName = 'MASTER' | 'BACKUP' | 'FAULT' | 'STOPPED';

/**
 * keepalived's notify FIFO reader: started once by keepalived with the FIFO as $1, it turns each
 * `INSTANCE "NAME" STATE PRIORITY` line into the state file, written beside it and renamed, so a
 * reader never sees half a line. One reader for all transitions keeps them in order: keepalived
 * forks a plain notify script per transition without waiting, and two quick transitions (MASTER
 * then BACKUP on a dual-master advert) could then land in the wrong order. Lines that are events,
 * not states, are skipped: keepalived 2.2.7 also writes `MASTER_RX_LOWER_PRI` when a master hears
 * a lower priority's advert (it stays master), and taking that for a state made the agent switch
 * a master's ExitPoints off and report it as no master at all.
 */
export const NOTIFY_SCRIPT = `#!/bin/sh
# exitnode: keepalived's notify FIFO reader (see src/compile/keepalived.ts). Do not edit.
d=\${0%/*}
while read -r kind name state prio; do
  [ "$kind" = INSTANCE ] || continue
  case "$state" in
    MASTER|BACKUP|FAULT) ;;
    STOP) state=STOPPED ;;
    *) continue ;;
  esac
  printf '%s %s %s\\n' "$state" "$prio" "$(date +%s%3N)" > "$d/${VRRP_FILES.state}.tmp" &&
    mv -f "$d/${VRRP_FILES.state}.tmp" "$d/${VRRP_FILES.state}"
done < "$1"
`;

export interface KeepalivedInput {
  /** The allocation (core/plan's `allocation(prefix, number)`) and the slot: GWPubName, GWPubLL, GWPubIP6. */
  allocation: Allocation;
  slot: number;
  /** The gateway namespace keepalived runs in. */
  ns: string;
  /** 1-254; the first candidate highest (DESIGN.md 8.2, contract: 250 - 50 × rank). */
  priority: number;
  /** The upstream router's link-local address: the health script pings it from the gateway. */
  upstreamLL: string;
  /** GWPubIP4 with its prefix length and the IPv4 gateway, when the slot has IPv4. */
  ipv4?: { address: string; prefixLength: number; gateway?: string };
  /** The agent's state directory (absolute): the instance's files go to STATE/vrrp/NS/. */
  stateDir: string;
  /** Seconds (centisecond steps); default VRRP_ADVERT_S. */
  advertS?: number;
}

/** VRID = ((allocation - 1) × 15 + slot - 1) mod 255 + 1: unique on a segment for 17 allocations. */
export function vrrpRouterId(allocation: number, slot: number): number {
  return (((allocation - 1) * 15 + slot - 1) % 255) + 1;
}

/** The first 16 hex digits of the sha256 of what keepalived reads: a change is a reload. */
export function vrrpHash(config: string): string {
  return createHash('sha256').update(config).update(NOTIFY_SCRIPT).digest('hex').slice(0, 16);
}

/** A quoted word of keepalived's configuration (paths: the state directory may hold spaces). */
function q(s: string): string {
  return `"${s.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

export function keepalivedSpec(i: KeepalivedInput): VrrpSpec {
  const p = planSlot(i.allocation, i.slot);
  const A = i.allocation.number;
  const up = p.GWPubName;
  const dir = vrrpDir(i.stateDir, i.ns);
  const vrid = vrrpRouterId(A, i.slot);
  const advert = Math.round((i.advertS ?? VRRP_ADVERT_S) * 100) / 100;
  const excluded = [`${p.GWPubIP6} dev ${up}`];
  if (i.ipv4) excluded.push(`${i.ipv4.address}/${i.ipv4.prefixLength} dev ${up}`);
  const lines = [
    `# exitnode: keepalived of gateway ${i.ns} (allocation ${A}, slot ${i.slot}), written by the agent. Do not edit.`,
    'global_defs {',
    // Unique per instance: several candidates' keepalived run on one host in the simulation.
    `  router_id ${i.ns}`,
    '  vrrp_version 3',
    // The scripts live in the agent's state directory (root's, 0700).
    '  script_user root',
    '  enable_script_security',
    `  vrrp_notify_fifo ${q(`${dir}/${VRRP_FILES.fifo}`)}`,
    `  vrrp_notify_fifo_script ${q(`${dir}/${VRRP_FILES.notify}`)}`,
    '}',
    // Planned handover (vrrpDrain): "1" puts the instance in FAULT; leaving MASTER that way it
    // sends a priority-0 advert, and the backup takes over after its skew time (measured ~0.25 s).
    'track_file drain {',
    `  file ${q(`${dir}/${VRRP_FILES.drain}`)}`,
    '  weight 0',
    '  init_file 0 overwrite',
    '}',
    // Health: the upstream router answers from inside the gateway, on the uplink.
    'vrrp_script upstream {',
    `  script "ping -6 -n -q -c 1 -W 1 ${i.upstreamLL}%${up}"`,
    '  interval 1',
    '  timeout 2',
    '  fall 2',
    '  rise 2',
    '}',
    `vrrp_instance slot-${i.slot}-${A} {`,
    // nopreempt needs state BACKUP: a recovered candidate stays backup (no flap back).
    '  state BACKUP',
    '  nopreempt',
    // Its own interface is always tracked (link down: FAULT). `track_interface` naming it again
    // is ignored with a warning, which makes `keepalived --config-test` exit 5.
    `  interface ${up}`,
    `  virtual_router_id ${vrid}`,
    `  priority ${i.priority}`,
    `  advert_int ${advert}`,
    // GWPubLL first (VRRPv3 over IPv6 wants a link-local first address, RFC 9568). DESIGN.md asks
    // for `scope link`, but keepalived 2.2.7 refuses a scope on IPv6 ("Cannot specify scope for
    // IPv6 addresses", config test exit 5); fe80::/10 is link scope for the kernel anyway.
    '  virtual_ipaddress {',
    `    ${p.GWPubLL} dev ${up}`,
    '  }',
    '  virtual_ipaddress_excluded {',
    ...excluded.map((e) => `    ${e}`),
    '  }',
  ];
  if (i.ipv4?.gateway)
    // The IPv4 default route goes with the address: the kernel drops a device's IPv4 routes when
    // its last IPv4 address goes, so a route the agent added would vanish after a brief MASTER.
    lines.push('  virtual_routes {', `    0.0.0.0/0 via ${i.ipv4.gateway} dev ${up}`, '  }');
  lines.push(
    '  track_script {',
    '    upstream',
    '  }',
    '  track_file {',
    '    drain',
    '  }',
    // Unsolicited NA / gratuitous ARP on becoming master, again after 1 s, and every 10 s.
    '  garp_master_delay 1',
    '  garp_master_repeat 3',
    '  garp_master_refresh 10',
    '  garp_master_refresh_repeat 1',
    '}',
  );
  const config = lines.join('\n') + '\n';
  return { ns: i.ns, allocation: A, slot: i.slot, vrid, priority: i.priority, config, hash: vrrpHash(config) };
}
