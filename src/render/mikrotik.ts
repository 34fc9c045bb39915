// MikroTik RouterOS: a script for the terminal or /import. RouterOS writes a link-local gateway
// as ADDRESS%INTERFACE. Every object carries comment="exitnode ..." so that it can be found
// again ([find comment~"^exitnode"]).
import { checkPrintable, ifaceError, type Renderer } from './iface.js';
import { comment, header, type UpstreamModel } from './model.js';

const TITLE = 'a MikroTik RouterOS script (paste in the terminal or /import it)';

export const mikrotik: Renderer = {
  os: 'mikrotik',
  title: TITLE,
  checkIface(name) {
    // RouterOS allows almost any name, but names with spaces or script syntax would need
    // quoting everywhere; exitnode takes the plain ones (ether1, sfp-sfpplus1, vlan100, bridge).
    checkPrintable('mikrotik', name, 64);
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name))
      throw ifaceError(
        'mikrotik',
        name,
        'exitnode takes RouterOS interface names of letters, digits, "_", "." and "-", starting with a letter or digit',
      );
  },
  render(m: UpstreamModel): string {
    const lines = [
      ...comment('#', header(m, TITLE)),
      '#',
      ...comment('#', [
        'advertise=no: the gateways are configured statically and need no router advertisements.',
        'Remove everything again with: /ipv6 route remove [find comment~"^exitnode"]',
        '                              /ipv6 address remove [find comment~"^exitnode"]',
      ]),
      '/ipv6 address',
      `add address=${m.upstreamIP6}/64 interface=${m.iface} advertise=no comment="exitnode PrefixZero"`,
      `add address=${m.upstreamLL}/64 interface=${m.iface} advertise=no comment="exitnode PrefixZero link-local"`,
      '/ipv6 route',
    ];
    for (const r of m.routes) {
      const gw = m.linkLocal ? `${r.nextHop}%${m.iface}` : r.nextHop;
      lines.push(`add dst-address=${r.prefix} gateway=${gw} comment="exitnode slot ${r.slot}"`);
    }
    return lines.join('\n') + '\n';
  },
};
