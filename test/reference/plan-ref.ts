// An independent implementation of DESIGN.md section 2, for tests only. It shares no code with
// src/core: addresses are ipaddr.js byte arrays written out with ipaddr.js's own RFC 5952
// formatter, ids are manipulated as hex strings, and every formula is transcribed from the
// design's tables rather than from src/core/plan.ts.
import ipaddr from 'ipaddr.js';

function v6(bytes: number[]): string {
  return (ipaddr.fromByteArray(bytes) as ipaddr.IPv6).toRFC5952String();
}

function prefixBytes(prefix: string): number[] {
  const [addr] = prefix.split('/');
  return ipaddr.IPv6.parse(addr!).toByteArray();
}

/** Bytes of P with bytes 6..15 replaced. */
function inP(prefix: string, tail: number[]): number[] {
  const b = prefixBytes(prefix).slice(0, 6);
  return [...b, ...tail];
}

function ll(groups: [number, number, number, number]): string {
  const b = [0xfe, 0x80, 0, 0, 0, 0, 0, 0];
  for (const g of groups) b.push(g >> 8, g & 0xff);
  return v6(b);
}

export function refSlot(prefix: string, A: number, E: number): Record<string, unknown> {
  const slotFirst = E << 12;
  const pfx = v6(inP(prefix, [slotFirst >> 8, slotFirst & 0xff, 0, 0, 0, 0, 0, 0, 0, 0])) + '/52';
  const gwll = ll([E << 12, 0, 0, 1]);
  // P:0:(E<<12):0:0:1 — group 3 is 0, group 4 is E<<12, group 7 is 1
  const gwip6 = v6(inP(prefix, [0, 0, (E << 12) >> 8, 0, 0, 0, 0, 0, 0, 1]));
  return {
    number: E,
    prefix: pfx,
    Namespace: `gw-${E}-${A}`,
    GWPubName: `pub-${E}-${A}`,
    GWPubLL: `${gwll}/64`,
    GWPubIP6: `${gwip6}/64`,
    upstreamRoute: `${pfx} via ${gwll}`,
  };
}

export function refNr(prefix: string, A: number, h: string): Record<string, unknown> {
  const S = parseInt(h, 16);
  const hi = S >> 8;
  const lo = S & 0xff;
  const net = inP(prefix, [hi, lo, 0, 0, 0, 0, 0, 0, 0, 0]);
  const local = inP(prefix, [hi, lo, 0, 0, 0, 0, 0, 0, 0, 1]);
  const r4 = ipaddr.fromByteArray([10, 255, hi, lo]).toString();
  return {
    id: h,
    prefix: `${v6(net)}/64`,
    Namespace: `net-${h}-${A}`,
    GWtoEPName: `to-${h}-${A}`,
    GWtoEPLL: `${ll([0, 0, 1, S])}/64`,
    GWtoEPIP4: '10.1.0.1/32',
    EPPubName: `pub-${h}-${A}`,
    EPPubLL: `${ll([0, 0, S, 1])}/64`,
    EPPubIP4R: `${r4}/32`,
    WGName: `wg-${h}-${A}`,
    WGLL: `${ll([0, 0, 0, S])}/64`,
    WGIP4RT: `${r4}/16`,
    WGPort: S,
    NRLocalName: `veth-${h}-${A}`,
    NRLocalIP6: `${v6(local)}/64`,
    NRLocalIP4: `${ipaddr.fromByteArray([10, hi, lo, 1]).toString()}/24`,
    BridgeName: `br-${h}-${A}`,
  };
}

/** The refusal rules of 2.1, as the name of the rule broken, or undefined when valid. */
export function refRefusal(prefix: string, A: number, E: number, h: string): string | undefined {
  const [addr, len] = prefix.split('/');
  if (!ipaddr.IPv6.isValid(addr!)) return ipaddr.IPv4.isValid(addr!) ? 'not IPv6' : 'syntax';
  if (len !== '48') return 'not a /48';
  const bytes = ipaddr.IPv6.parse(addr!).toByteArray();
  if (bytes.slice(6).some((b) => b !== 0)) return 'host bits set';
  const range = ipaddr.IPv6.parse(addr!).range();
  if (range === 'linkLocal' || range === 'multicast') return 'not unicast';
  if (!(A >= 1 && A <= 65535)) return 'allocation number out of range';
  if (E === 0) return 'slot 0 is PrefixZero';
  if (!(E >= 1 && E <= 15)) return 'slot out of range';
  if (!/^[0-9a-f]+$/i.test(h)) return 'nr id is not hex';
  if (h.length > 4) return 'nr id is not 16 bits';
  const S = parseInt(h, 16);
  if (S < 0x1000) return 'prefixzero id';
  if (S >= 0xff00) return 'reserved id';
  if (S >> 12 !== E) return 'nr id outside the slot';
  return undefined;
}
