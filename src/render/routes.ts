// Reads the routes and addresses back out of a rendered configuration, one pattern per OS.
// Tests use it to check every output against the plan independently of the golden files; the
// simulated farm may use it to compare a running router with what exitnode would render.
import type { RouterOs } from './model.js';

export interface RenderedRoute {
  prefix: string;
  nextHop: string;
  /** The interface the route names, if it names one. */
  iface?: string;
}

const PATTERNS: Record<Exclude<RouterOs, 'openwrt' | 'cisco'>, RegExp> = {
  linux: /^ip -6 route replace (\S+) via (\S+) dev (\S+) proto static$/,
  ifupdown2: /^ {4}post-up ip -6 route replace (\S+) via (\S+) dev (\S+)$/,
  frr: /^ipv6 route (\S+) (\S+) (\S+)$/,
  bird: /^\troute (\S+) via ([0-9a-f:.]+)(?:%'([^']+)')?;/,
  vyos: /^set protocols static route6 (\S+) next-hop (\S+)(?: interface '([^']+)')?$/,
  mikrotik: /^add dst-address=(\S+) gateway=([0-9a-f:.]+)(?:%(\S+))? /,
  junos: /^set routing-options rib inet6\.0 static route (\S+) (?:qualified-)?next-hop (\S+)(?: interface (\S+))?$/,
};

export function renderedRoutes(os: RouterOs, text: string): RenderedRoute[] {
  const out: RenderedRoute[] = [];
  const lines = text.split('\n');
  if (os === 'openwrt') {
    let cur: Partial<RenderedRoute> | undefined;
    for (const l of lines) {
      if (/^config route6 /.test(l)) cur = {};
      else if (cur && /^\toption target '(.+)'$/.test(l)) cur.prefix = /'(.+)'/.exec(l)![1];
      else if (cur && /^\toption gateway '(.+)'$/.test(l)) cur.nextHop = /'(.+)'/.exec(l)![1];
      if (cur?.prefix && cur.nextHop) {
        out.push({ prefix: cur.prefix, nextHop: cur.nextHop });
        cur = undefined;
      }
    }
    return out;
  }
  for (const l of lines) {
    if (os === 'cisco') {
      const m = /^ipv6 route (\S+) (\S+) (\S+)$/.exec(l);
      if (m) out.push({ prefix: m[1]!, nextHop: m[3]!, iface: m[2]! });
      continue;
    }
    const m = PATTERNS[os].exec(l);
    if (m)
      out.push(m[3] === undefined ? { prefix: m[1]!, nextHop: m[2]! } : { prefix: m[1]!, nextHop: m[2]!, iface: m[3] });
  }
  return out;
}
