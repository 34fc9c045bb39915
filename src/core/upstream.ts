// The upstream router's own addresses on PrefixZero (DESIGN.md section 7): its link-local in
// fe80::/64 and its global address in P::/64, neither a gateway's. The renderers check a
// --upstream-ll/--upstream-ip6 override with these, and the store the addresses an allocation is
// registered with (under its own code), so what is stored always renders.
import { CoreErrors, ExitnodeError, q } from './errors.js';
import { Ip6 } from './ip.js';
import { MAX_SLOT, gwPubIP6, gwPubLL, type Allocation } from './plan.js';

function upstreamError(what: string, text: string, rule: string): ExitnodeError {
  return new ExitnodeError(CoreErrors.UPSTREAM_ADDRESS_OVERRIDE, `${what} ${q(text)} ${rule}`);
}

/** "ADDR" or "ADDR/64": the upstream's addresses sit on the /64 segment, any other length is a mistake. */
function parseHostOn64(what: string, text: string): Ip6 {
  const slash = text.indexOf('/');
  if (slash >= 0 && text.slice(slash + 1) !== '64') {
    throw upstreamError(
      what,
      text,
      'has a prefix length other than /64; the PrefixZero segment is a /64 (write the address alone or with /64)',
    );
  }
  return Ip6.parse(slash >= 0 ? text.slice(0, slash) : text);
}

const FE80_64 = 0xfe80n << 112n;

/** The upstream's link-local address on PrefixZero: in fe80::/64, not a gateway's. */
export function checkUpstreamLL(text: string): string {
  const a = parseHostOn64('upstream link-local address', text);
  if (a.value >> 64n !== FE80_64 >> 64n)
    throw upstreamError('upstream link-local address', text, 'is not in fe80::/64 (a link-local address)');
  if (a.value === FE80_64) throw upstreamError('upstream link-local address', text, 'has an all-zero interface id');
  for (let e = 1; e <= MAX_SLOT; e++) {
    if (gwPubLL(e).equals(a))
      throw upstreamError('upstream link-local address', text, `is GWPubLL of slot ${e}, the gateway's own address`);
  }
  return a.toString();
}

/** The upstream's global address: in P::/64 (where the gateways' GWPubIP6 are on-link), not a gateway's. */
export function checkUpstreamIP6(a: Allocation, text: string): string {
  const addr = parseHostOn64('upstream global address', text);
  const seg = a.prefix.subnet(64, 0);
  if (!seg.contains(addr)) {
    throw upstreamError(
      'upstream global address',
      text,
      `is not in ${seg}, PrefixZero's first /64 where the gateways' GWPubIP6 addresses are on-link`,
    );
  }
  if (addr.equals(seg.network))
    throw upstreamError(
      'upstream global address',
      text,
      `is ${seg.network}, the Subnet-Router anycast address of ${seg}`,
    );
  for (let e = 1; e <= MAX_SLOT; e++) {
    if (gwPubIP6(a, e).equals(addr))
      throw upstreamError('upstream global address', text, `is GWPubIP6 of slot ${e}, the gateway's own address`);
  }
  return addr.toString();
}
