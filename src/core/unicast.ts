// Which addresses can be a host's address on the Internet: a node's public address, a gateway's
// IPv4 and its next hop. Each rule returns why an address is not usable (the special-purpose
// block it is in, RFC 6890), or undefined; the callers put it in a message that names the value.
import { Ip4, Ip4Prefix, Ip6, Ip6Prefix } from './ip.js';

const V4_SPECIAL: [Ip4Prefix, string][] = [
  [Ip4Prefix.parse('0.0.0.0/8'), 'in 0.0.0.0/8 ("this network"; 0.0.0.0 is the unspecified address)'],
  [Ip4Prefix.parse('127.0.0.0/8'), 'a loopback address (127.0.0.0/8)'],
  [Ip4Prefix.parse('169.254.0.0/16'), 'a link-local address (169.254.0.0/16)'],
  [Ip4Prefix.parse('224.0.0.0/4'), 'a multicast address (224.0.0.0/4)'],
  [Ip4Prefix.parse('255.255.255.255/32'), 'the limited broadcast address'],
  [Ip4Prefix.parse('240.0.0.0/4'), 'in the reserved block 240.0.0.0/4'],
];

const V6_SPECIAL: [Ip6Prefix, string][] = [
  [Ip6Prefix.parse('::/128'), 'the unspecified address (::)'],
  [Ip6Prefix.parse('::1/128'), 'the loopback address (::1)'],
  [Ip6Prefix.parse('::ffff:0:0/96'), 'an IPv4-mapped address (::ffff:0:0/96): give the IPv4 address as such'],
  [Ip6Prefix.parse('fe80::/10'), 'a link-local address (fe80::/10)'],
  [Ip6Prefix.parse('ff00::/8'), 'a multicast address (ff00::/8)'],
];

/** Why `a` cannot be a host's unicast IPv4 address, or undefined when it can. */
export function unusableIPv4(a: Ip4): string | undefined {
  return V4_SPECIAL.find(([p]) => p.contains(a))?.[1];
}

/** Why `a` cannot be a host's global unicast IPv6 address, or undefined when it can. */
export function unusableIPv6(a: Ip6): string | undefined {
  return V6_SPECIAL.find(([p]) => p.contains(a))?.[1];
}

/** Why `a` cannot be a host on `subnet` (besides unusableIPv4): its network or broadcast address. */
export function unusableOnSubnet(a: Ip4, subnet: Ip4Prefix): string | undefined {
  if (subnet.length > 30) return undefined; // /31 (RFC 3021) and /32 have no network or broadcast address
  if (a.equals(subnet.network)) return `the network address of ${subnet.toString()}`;
  if (a.equals(subnet.last)) return `the broadcast address of ${subnet.toString()}`;
  return undefined;
}
