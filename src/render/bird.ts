// BIRD 2: a complete bird.conf that `bird -p -c FILE` accepts on its own. BIRD does not set
// interface addresses, so those stay with the OS (the comment says which). The static protocol
// lives in an ipv6 channel; a link-local gateway carries its interface as "%'IFACE'" (a quoted
// symbol, so that names like eth0.100 parse), and the kernel protocol exports only these routes.
import { checkLinuxName, type Renderer } from './iface.js';
import { comment, header, type UpstreamModel } from './model.js';

const TITLE = 'a BIRD 2 configuration (check with: bird -p -c FILE)';

export const bird: Renderer = {
  os: 'bird',
  title: TITLE,
  checkIface: (name) => checkLinuxName('bird', name),
  render(m: UpstreamModel): string {
    const lines = [
      ...comment('#', header(m, TITLE)),
      '#',
      ...comment('#', [
        `BIRD does not configure addresses: give ${m.iface} ${m.upstreamIP6}/64 and ${m.upstreamLL}/64 in the OS`,
        `(e.g. with "exitnode upstream ... --router linux"), and enable IPv6 forwarding.`,
        'Standalone this is a whole bird.conf. To merge it into an existing one, keep your own router id,',
        'device and kernel protocols (one kernel protocol per table) and take "protocol static exitnode".',
        'BIRD takes its router id from an IPv4 address; on a router without one, set it, e.g.:',
        '  router id 192.0.2.1;',
      ]),
      '',
      '# Tracks interfaces; static routes through an interface wait for it to come up.',
      'protocol device {',
      '}',
      '',
      '# Installs the exitnode routes in the kernel (and nothing else).',
      'protocol kernel exitnode_kernel {',
      '\tipv6 {',
      '\t\texport where proto = "exitnode";',
      '\t};',
      '}',
      '',
      'protocol static exitnode {',
      '\tipv6;',
    ];
    for (const r of m.routes) {
      const via = m.linkLocal ? `${r.nextHop}%'${m.iface}'` : r.nextHop;
      lines.push(`\troute ${r.prefix} via ${via};\t# slot ${r.slot}`);
    }
    lines.push('}');
    return lines.join('\n') + '\n';
  },
};
