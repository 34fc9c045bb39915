// OpenWrt: UCI sections for /etc/config/network. netifd binds a route6 section to a logical
// interface (a UCI section name), not to a device, so the output declares one, "exitnode", on
// the given device; its route6 gateways are then link-local on that device.
import { checkLinuxName, type Renderer } from './iface.js';
import { comment, header, type UpstreamModel } from './model.js';

const TITLE = 'OpenWrt /etc/config/network sections (then: service network reload)';

export const openwrt: Renderer = {
  os: 'openwrt',
  title: TITLE,
  checkIface: (name) => checkLinuxName('openwrt', name),
  render(m: UpstreamModel): string {
    const lines = [
      ...comment('#', header(m, TITLE)),
      '#',
      ...comment('#', [
        `Declares the logical interface "exitnode" on device ${m.iface}; if ${m.iface} already belongs to another`,
        'interface section, move the ip6addr lines there and set the routes\' "interface" to it instead.',
        'Put "exitnode" in a firewall zone that forwards to and from your upstream zone.',
        '(OpenWrt before 21.02 writes "option ifname" instead of "option device".)',
      ]),
      '',
      "config interface 'exitnode'",
      `\toption device '${m.iface}'`,
      "\toption proto 'static'",
      `\tlist ip6addr '${m.upstreamIP6}/64'`,
      `\tlist ip6addr '${m.upstreamLL}/64'`,
    ];
    for (const r of m.routes) {
      lines.push(
        '',
        `config route6 'exitnode_slot${r.slot}'`,
        "\toption interface 'exitnode'",
        `\toption target '${r.prefix}'`,
        `\toption gateway '${r.nextHop}'`,
      );
    }
    return lines.join('\n') + '\n';
  },
};
