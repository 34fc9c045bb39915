// ifupdown2 (Cumulus Linux, and Debian with the ifupdown2 package): an /etc/network/interfaces
// stanza. ifupdown2 takes several "address" lines per stanza; the routes ride on post-up/pre-down
// because ifupdown2 has no static-route keyword of its own.
import { checkLinuxName, type Renderer } from './iface.js';
import { comment, header, type UpstreamModel } from './model.js';

const TITLE = 'an ifupdown2 /etc/network/interfaces stanza (apply with: ifreload -a)';

export const ifupdown2: Renderer = {
  os: 'ifupdown2',
  title: TITLE,
  checkIface: (name) => checkLinuxName('ifupdown2', name),
  render(m: UpstreamModel): string {
    const dev = m.iface;
    const lines = [
      ...comment('#', header(m, TITLE)),
      '#',
      ...comment('#', [
        'Merge into the existing stanza of this interface if there is one (one stanza per interface).',
        'This router must forward IPv6: net.ipv6.conf.all.forwarding=1 (Cumulus Linux does by default).',
      ]),
      `auto ${dev}`,
      `iface ${dev} inet6 static`,
      `    address ${m.upstreamIP6}/64`,
      `    address ${m.upstreamLL}/64`,
    ];
    for (const r of m.routes) lines.push(`    post-up ip -6 route replace ${r.prefix} via ${r.nextHop} dev ${dev}`);
    for (const r of m.routes) lines.push(`    pre-down ip -6 route del ${r.prefix} via ${r.nextHop} dev ${dev}`);
    return lines.join('\n') + '\n';
  },
};
