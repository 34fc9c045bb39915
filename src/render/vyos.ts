// VyOS: configuration-mode "set" commands. VyOS names its interface nodes by type, so the
// interface name decides the path (eth1 → interfaces ethernet eth1, eth1.100 → … vif 100).
import { checkPrintable, ifaceError, type Renderer } from './iface.js';
import { comment, header, type UpstreamModel } from './model.js';

const TITLE = 'VyOS configuration commands (paste in configure mode, then commit and save)';

const TYPES: Record<string, string> = { eth: 'ethernet', bond: 'bonding', br: 'bridge' };

function path(name: string): string {
  const m = /^(eth|bond|br)(\d{1,4})(?:\.(\d{1,4}))?$/.exec(name)!;
  const base = `interfaces ${TYPES[m[1]!]} ${m[1]}${m[2]}`;
  return m[3] === undefined ? base : `${base} vif ${m[3]}`;
}

export const vyos: Renderer = {
  os: 'vyos',
  title: TITLE,
  checkIface(name) {
    checkPrintable('vyos', name, 15);
    const m = /^(eth|bond|br)(\d{1,4})(?:\.(\d{1,4}))?$/.exec(name);
    if (!m)
      throw ifaceError(
        'vyos',
        name,
        'exitnode renders VyOS ethernet, bonding and bridge interfaces: ethN, bondN, brN, optionally with a VLAN as .VID (eth1.100)',
      );
    if (m[3] !== undefined && (Number(m[3]) < 1 || Number(m[3]) > 4094))
      throw ifaceError('vyos', name, `VLAN id ${m[3]} is out of range 1-4094`);
  },
  render(m: UpstreamModel): string {
    const at = path(m.iface);
    const lines = [
      ...comment('#', header(m, TITLE)),
      '#',
      `set ${at} address '${m.upstreamIP6}/64'`,
      `set ${at} address '${m.upstreamLL}/64'`,
    ];
    for (const r of m.routes) {
      lines.push(
        m.linkLocal
          ? `set protocols static route6 ${r.prefix} next-hop ${r.nextHop} interface '${m.iface}'`
          : `set protocols static route6 ${r.prefix} next-hop ${r.nextHop}`,
      );
    }
    return lines.join('\n') + '\n';
  },
};
