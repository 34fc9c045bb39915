// Preflight for an ExitNode: what the agent needs from the host, each finding with what to change.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ipHasNetconfJson, linkExists, toolVersion, type Tool } from '../kernel/host.js';
import type { NodeConfig } from './config.js';

export type Status = 'ok' | 'warn' | 'fail' | 'info';
export interface Finding {
  status: Status;
  check: string;
  finding: string;
  /** What to change (empty when nothing). */
  fix: string;
}

/** Threads of one wireguard-go instance, measured on this machine kind (Go runtime + TUN readers). */
export const WG_GO_THREADS = 11;
/** IPv6 neighbour entries per ExitPoint: the gateway's for fe80::h:1 and the ExitPoint's for fe80::1:h. */
const NEIGH_PER_EXITPOINT = 2;

function sysctl(key: string): string | undefined {
  try {
    return readFileSync(`/proc/sys/${key.replaceAll('.', '/')}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

export async function doctor(opts: { config?: NodeConfig; expectNrs?: number }): Promise<Finding[]> {
  const out: Finding[] = [];
  const add = (status: Status, check: string, finding: string, fix = ''): void =>
    void out.push({ status, check, finding, fix });
  const n = opts.expectNrs ?? 0;

  if (process.getuid?.() === 0) add('ok', 'root', 'running as root');
  else
    add(
      'fail',
      'root',
      'not running as root: the agent creates namespaces, links and routes',
      'run the agent as root (or with CAP_NET_ADMIN and CAP_SYS_ADMIN)',
    );

  const tools: [Tool, string][] = [
    ['ip', 'iproute2'],
    ['nft', 'nftables'],
    ['wg', 'wireguard-tools'],
    ['nsenter', 'util-linux'],
    ['sysctl', 'procps'],
  ];
  for (const [name, pkg] of tools) {
    const v = await toolVersion(name);
    if (v !== undefined) add('ok', name, v);
    else add('fail', name, `${name} is not installed`, `apt-get install ${pkg}`);
  }
  if (!(await ipHasNetconfJson()))
    add('fail', 'ip -json', 'this iproute2 has no JSON output for netconf', 'install iproute2 ≥ 5.0');

  const kernelWg = existsSync('/sys/module/wireguard');
  const wgGo = await toolVersion('wireguard-go');
  if (kernelWg) add('ok', 'WireGuard', 'the kernel module is loaded: kernel WireGuard links');
  else if (wgGo !== undefined)
    add(
      'warn',
      'WireGuard',
      `no kernel module: wireguard-go (${wgGo}) will run one process of ~${WG_GO_THREADS} threads per NR`,
      'modprobe wireguard (and add it to /etc/modules) if the kernel has it',
    );
  else
    add(
      'fail',
      'WireGuard',
      'neither the kernel module nor wireguard-go is available',
      'modprobe wireguard, or apt-get install wireguard-go',
    );

  // Stage 2 (DESIGN.md 8.2): a candidate gateway runs keepalived. Needed once this node is a
  // candidate of a slot in vrrp mode (its state directory then holds vrrp/); a warning before.
  const ka = await toolVersion('keepalived');
  const kaVersion = /v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(ka ?? '');
  const inUse = (() => {
    try {
      return opts.config !== undefined && readdirSync(join(opts.config.stateDir, 'vrrp')).length > 0;
    } catch {
      return false;
    }
  })();
  if (ka === undefined)
    add(
      inUse ? 'fail' : 'warn',
      'keepalived',
      `keepalived is not installed: ${inUse ? 'this node runs candidate gateways (vrrp failover)' : 'needed when this node is a candidate of a slot in vrrp failover mode'}`,
      'apt-get install keepalived',
    );
  // vrrp_notify_fifo_script, track_file and VRRPv3 over IPv6 as the agent writes them: checked with 2.2.7.
  else if (kaVersion && Number(kaVersion[1]) * 100 + Number(kaVersion[2]) < 201)
    add('warn', 'keepalived', `${ka}: the agent's configuration is checked with 2.2.7`, 'install keepalived ≥ 2.1');
  else add('ok', 'keepalived', ka);

  const v4 = sysctl('net.ipv4.conf.all.forwarding');
  const v6 = sysctl('net.ipv6.conf.all.forwarding');
  add(
    'info',
    'forwarding',
    `host namespace: IPv4 ${v4 ?? '?'}, IPv6 ${v6 ?? '?'}; the agent turns forwarding on in each gateway and NR namespace itself`,
    '',
  );
  const inherit = sysctl('net.core.devconf_inherit_init_net');
  if (inherit !== undefined && inherit !== '0')
    add(
      'info',
      'devconf_inherit_init_net',
      `is ${inherit}: new namespaces copy the host's sysctls; the agent still sets its own`,
      '',
    );

  const t3 = Number(sysctl('net.ipv6.neigh.default.gc_thresh3') ?? '0');
  const t3v4 = Number(sysctl('net.ipv4.neigh.default.gc_thresh3') ?? '0');
  const need = n * NEIGH_PER_EXITPOINT + 64;
  // Overflow was seen at ~650 gateway next hops with gc_thresh3 = 1024: keep well below it.
  const fix = (x: number): string =>
    `sysctl -w net.ipv6.neigh.default.gc_thresh3=${x} net.ipv6.neigh.default.gc_thresh2=${x / 2} net.ipv6.neigh.default.gc_thresh1=${x / 8} (same for net.ipv4.neigh.default.*); persist in /etc/sysctl.d/`;
  const want = 2 ** Math.ceil(Math.log2(Math.max(1024, need * 2)));
  if (n === 0)
    add(
      'info',
      'neighbour table',
      `IPv6 gc_thresh3 ${t3}, IPv4 ${t3v4}, shared by every namespace; pass --expect-nrs N to check them against N ExitPoints`,
      '',
    );
  else if (t3 < need * 1.6 || t3v4 < need * 1.6)
    add(
      t3 < need ? 'fail' : 'warn',
      'neighbour table',
      `${n} ExitPoints need about ${need} neighbour entries (gateway and ExitPoint ends, plus margin) in a table of gc_thresh3 = ${t3} (IPv6) / ${t3v4} (IPv4) shared by every namespace; overflow was seen at ~650 next hops with 1024`,
      fix(want),
    );
  else add('ok', 'neighbour table', `gc_thresh3 ${t3} (IPv6) / ${t3v4} (IPv4) for ~${need} entries`);

  const pidMax = Number(sysctl('kernel.pid_max') ?? '0');
  const threadsMax = Number(sysctl('kernel.threads-max') ?? '0');
  if (!kernelWg && n > 0) {
    const threads = n * WG_GO_THREADS;
    if (threads > pidMax * 0.5 || threads > threadsMax * 0.5)
      add(
        'fail',
        'pid_max',
        `${n} wireguard-go instances need ~${threads} threads; kernel.pid_max is ${pidMax}, kernel.threads-max ${threadsMax}`,
        `sysctl -w kernel.pid_max=${Math.max(4194304, threads * 4)} kernel.threads-max=${Math.max(threadsMax, threads * 4)}, or use kernel WireGuard`,
      );
    else
      add(
        'ok',
        'pid_max',
        `~${threads} wireguard-go threads for ${n} NRs; pid_max ${pidMax}, threads-max ${threadsMax}`,
      );
  } else add('info', 'pid_max', `kernel.pid_max ${pidMax}, kernel.threads-max ${threadsMax}`, '');

  // Each wireguard-go holds one inotify instance, and the limit is per user for the whole host:
  // measured here, the 129th wireguard-go of root failed with "too many open files" at 128.
  const inotify = Number(sysctl('fs.inotify.max_user_instances') ?? '0');
  if (!kernelWg && n > 0) {
    const needI = n + 32;
    if (inotify < needI)
      add(
        'fail',
        'inotify instances',
        `${n} wireguard-go instances need ${n} inotify instances (one each, counted for all of root's processes on the host); fs.inotify.max_user_instances is ${inotify}`,
        `sysctl -w fs.inotify.max_user_instances=${2 ** Math.ceil(Math.log2(needI * 2))} (persist in /etc/sysctl.d/), or use kernel WireGuard`,
      );
    else add('ok', 'inotify instances', `fs.inotify.max_user_instances ${inotify} for ${n} wireguard-go instances`);
  } else if (!kernelWg)
    add(
      'info',
      'inotify instances',
      `fs.inotify.max_user_instances ${inotify}: each wireguard-go uses one; pass --expect-nrs N to check it`,
      '',
    );

  const nics = readdirSync('/sys/class/net').filter((d) => existsSync(join('/sys/class/net', d, 'device')));
  if (nics.length >= 2) add('ok', 'NICs', `${nics.length} physical NICs: ${nics.join(', ')}`);
  else
    add(
      'warn',
      'NICs',
      `${nics.length} physical NIC${nics.length === 1 ? '' : 's'} (${nics.join(', ') || 'none'}): an ExitNode uses a second NIC for the PrefixZero uplink`,
      'add a NIC on the upstream router\'s segment, or use uplink {kind:"macvlan", parent} on the one you have',
    );

  const c = opts.config;
  if (c) {
    for (const [what, ns] of [
      ['rootNamespace', c.rootNamespace],
      ['publicNamespace', c.publicNamespace],
    ] as const) {
      if (ns !== '' && !existsSync(`/run/netns/${ns}`))
        add(
          'fail',
          what,
          `namespace ${JSON.stringify(ns)} does not exist`,
          `ip netns add ${ns}, or set ${what} to "" for the host's own`,
        );
    }
    const dev = c.uplink.kind === 'nic' ? c.uplink.device : c.uplink.kind === 'macvlan' ? c.uplink.parent : undefined;
    if (dev !== undefined) {
      if (await linkExists(c.rootNamespace, dev)) add('ok', 'uplink', `${c.uplink.kind} on ${dev}`);
      else
        add(
          'fail',
          'uplink',
          `uplink device ${JSON.stringify(dev)} is not in the root namespace`,
          'set uplink.device / uplink.parent to the NIC on the upstream segment',
        );
    } else if (c.uplink.kind === 'veth' && !existsSync(`/run/netns/${c.uplink.peerNamespace}`)) {
      add(
        'fail',
        'uplink',
        `the veth uplink's namespace ${JSON.stringify(c.uplink.peerNamespace)} does not exist`,
        'create it (the simulation does)',
      );
    }
    try {
      const st = statSync(c.stateDir);
      if ((st.mode & 0o077) !== 0)
        add(
          'warn',
          'state directory',
          `${c.stateDir} is mode ${(st.mode & 0o777).toString(8)}: private keys live there`,
          `chmod 700 ${c.stateDir}`,
        );
      else add('ok', 'state directory', `${c.stateDir} (mode ${(st.mode & 0o777).toString(8)})`);
    } catch {
      add('info', 'state directory', `${c.stateDir} does not exist yet; the agent creates it with mode 700`, '');
    }
    if (c.wireguard === 'kernel' && !kernelWg)
      add(
        'fail',
        'WireGuard mode',
        'the config asks for kernel WireGuard and the module is not loaded',
        'modprobe wireguard, or set wireguard to "auto"',
      );
  }
  return out;
}
