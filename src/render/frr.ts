// FRR: an frr.conf fragment (integrated configuration). zebra sets the interface addresses and
// staticd installs the routes; an FRR static route with a link-local gateway needs the interface
// name after the gateway, or zebra cannot resolve it.
import { checkLinuxName, type Renderer } from './iface.js';
import { comment, header, type UpstreamModel } from './model.js';

const TITLE = 'an FRR frr.conf fragment (check with: vtysh -C -f FILE)';

export const frr: Renderer = {
  os: 'frr',
  title: TITLE,
  checkIface: (name) => checkLinuxName('frr', name),
  render(m: UpstreamModel): string {
    const lines = [
      ...comment('!', header(m, TITLE)),
      '!',
      ...comment('!', [
        'Load it with "vtysh -f FILE" or merge it into /etc/frr/frr.conf (zebra and staticd apply it;',
        'the frr service always starts both). IPv6 forwarding must be on (sysctl or "ipv6 forwarding").',
      ]),
      '!',
      `interface ${m.iface}`,
      ` ipv6 address ${m.upstreamIP6}/64`,
      ` ipv6 address ${m.upstreamLL}/64`,
      'exit',
      '!',
    ];
    for (const r of m.routes) lines.push(`ipv6 route ${r.prefix} ${r.nextHop} ${m.iface}`);
    lines.push('!');
    return lines.join('\n') + '\n';
  },
};
