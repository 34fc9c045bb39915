// Cisco IOS / IOS-XE: configuration-mode commands. IOS needs the exit interface before a
// link-local next hop ("fully specified" static route); a link-local interface address is
// written without a length and with the "link-local" keyword.
import { checkPrintable, ifaceError, type Renderer } from './iface.js';
import { comment, header, type UpstreamModel } from './model.js';

const TITLE = 'Cisco IOS / IOS-XE configuration (paste in configure terminal)';

export const cisco: Renderer = {
  os: 'cisco',
  title: TITLE,
  checkIface(name) {
    checkPrintable('cisco', name, 64);
    if (!/^[A-Za-z][A-Za-z-]*\d+(?:\/\d+)*(?:\.\d+)?$/.test(name)) {
      throw ifaceError(
        'cisco',
        name,
        'an IOS interface is a type and a number without spaces, e.g. GigabitEthernet0/0/1, Te1/1/1.100, Vlan10, Port-channel1',
      );
    }
  },
  render(m: UpstreamModel): string {
    const lines = [
      ...comment('!', header(m, TITLE)),
      '!',
      ...comment('!', ['IOS routes IPv6 only with "ipv6 unicast-routing".']),
      'ipv6 unicast-routing',
      '!',
      `interface ${m.iface}`,
      ` ipv6 address ${m.upstreamIP6}/64`,
      ` ipv6 address ${m.upstreamLL} link-local`,
      '!',
    ];
    for (const r of m.routes) lines.push(`ipv6 route ${r.prefix} ${m.iface} ${r.nextHop}`);
    lines.push('end');
    return lines.join('\n') + '\n';
  },
};
