// Linux with iproute2: a POSIX sh script. `replace` makes every command idempotent, so the
// script may be run again after any change (or by the simulated farm on every start).
import { checkLinuxName, type Renderer } from './iface.js';
import { comment, header, type UpstreamModel } from './model.js';

const TITLE = 'a Linux iproute2 shell script (run it as root: sh FILE)';

export const linux: Renderer = {
  os: 'linux',
  title: TITLE,
  checkIface: (name) => checkLinuxName('linux', name),
  render(m: UpstreamModel): string {
    const dev = m.iface;
    const lines = [
      '#!/bin/sh',
      ...comment('#', header(m, TITLE)),
      '#',
      ...comment('#', [
        'Safe to run twice: "ip ... replace" changes nothing when the state is already there.',
        m.linkLocal
          ? 'A link-local next hop is only defined together with its interface, hence "dev" on every route.'
          : 'The next hops are on-link because this router holds a /64 of the same segment.',
        'This router must forward IPv6 (sysctl net.ipv6.conf.all.forwarding=1); the script only warns.',
        'To disable a slot later, delete its route: ip -6 route del PREFIX/52 dev ' + dev,
      ]),
      'set -e',
      '',
      `ip link set dev ${dev} up`,
      `ip -6 addr replace ${m.upstreamIP6}/64 dev ${dev}`,
      `ip -6 addr replace ${m.upstreamLL}/64 dev ${dev}`,
      '',
    ];
    for (const r of m.routes) {
      lines.push(`# slot ${r.slot}: ExitNode ${r.slot}'s gateway`);
      lines.push(`ip -6 route replace ${r.prefix} via ${r.nextHop} dev ${dev} proto static`);
    }
    lines.push(
      '',
      'if [ "$(cat /proc/sys/net/ipv6/conf/all/forwarding 2>/dev/null)" != 1 ]; then',
      '  echo "exitnode upstream: IPv6 forwarding is off on this router; enable it: sysctl -w net.ipv6.conf.all.forwarding=1" >&2',
      'fi',
    );
    return lines.join('\n') + '\n';
  },
};
