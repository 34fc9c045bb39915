// Juniper Junos: "set" commands for load set terminal. Addresses live on a logical unit (unit 0
// unless the name says ge-0/0/1.100). A link-local next hop needs qualified-next-hop with the
// interface: a plain next-hop cannot name one.
import { checkPrintable, ifaceError, type Renderer } from './iface.js';
import { comment, header, type UpstreamModel } from './model.js';

const TITLE = 'Juniper Junos set commands (load set terminal, then commit)';

const NAME = /^([a-z]+(?:-\d+\/\d+\/\d+(?::\d+)?|\d+)?)(?:\.(\d{1,5}))?$/;

export const junos: Renderer = {
  os: 'junos',
  title: TITLE,
  checkIface(name) {
    checkPrintable('junos', name, 64);
    if (!NAME.test(name))
      throw ifaceError(
        'junos',
        name,
        'a Junos interface is e.g. ge-0/0/1, xe-1/0/0:2, ae0 or irb, optionally with a logical unit (ge-0/0/1.100)',
      );
  },
  render(m: UpstreamModel): string {
    const [, phys, unit = '0'] = NAME.exec(m.iface)!;
    const logical = `${phys}.${unit}`;
    const lines = [
      ...comment('#', header(m, TITLE)),
      '#',
      `set interfaces ${phys} unit ${unit} family inet6 address ${m.upstreamIP6}/64`,
      `set interfaces ${phys} unit ${unit} family inet6 address ${m.upstreamLL}/64`,
    ];
    for (const r of m.routes) {
      lines.push(
        m.linkLocal
          ? `set routing-options rib inet6.0 static route ${r.prefix} qualified-next-hop ${r.nextHop} interface ${logical}`
          : `set routing-options rib inet6.0 static route ${r.prefix} next-hop ${r.nextHop}`,
      );
    }
    return lines.join('\n') + '\n';
  },
};
