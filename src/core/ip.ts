// Typed IPv6 and IPv4 addresses and prefixes.
//
// Why our own code rather than ipaddr.js or ip-address: the plan needs exactly four things —
// strict parsing, RFC 5952 text, containment and "the n-th subnet of this prefix" — and all of
// them are a few lines on a 128-bit `bigint`, with no lossy conversions through byte arrays or
// 16-bit part lists. The hot path (a plan per NR, 61,184 of them per /48) stays allocation-light,
// and the parser refuses what a network operator would call a typo (a zone id, a fifth octet,
// a leading-zero IPv4 octet that some libraries read as octal). ipaddr.js is still used, in the
// tests only, as the independent implementation we compare against.

import { CoreErrors, ExitnodeError, q } from './errors.js';

const MASK128 = (1n << 128n) - 1n;
const HEX = /^[0-9a-fA-F]{1,4}$/;
const DEC_OCTET = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])$/;

function parseV4Number(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0;
  for (const p of parts) {
    if (!DEC_OCTET.test(p)) return undefined;
    v = v * 256 + Number(p);
  }
  return v;
}

function parseV6Bigint(text: string): bigint | undefined {
  if (text.length < 2 || text.length > 45 || text.includes('%')) return undefined;
  let head = text;
  let tailV4: number | undefined;
  // An embedded IPv4 tail (::ffff:192.0.2.1) counts as the last two groups.
  const lastColon = text.lastIndexOf(':');
  if (text.indexOf('.', lastColon) !== -1) {
    tailV4 = parseV4Number(text.slice(lastColon + 1));
    if (tailV4 === undefined) return undefined;
    head = text.slice(0, lastColon + 1) + '0:0';
  }
  const halves = head.split('::');
  if (halves.length > 2) return undefined;
  const split = (s: string): string[] | undefined => {
    if (s === '') return [];
    const g = s.split(':');
    return g.every((x) => HEX.test(x)) ? g : undefined;
  };
  const left = split(halves[0]!);
  const right = halves.length === 2 ? split(halves[1]!) : [];
  if (!left || !right) return undefined;
  let groups: string[];
  if (halves.length === 2) {
    const missing = 8 - left.length - right.length;
    if (missing < 1) return undefined; // "::" stands for at least one group
    groups = [...left, ...Array<string>(missing).fill('0'), ...right];
  } else {
    groups = left;
  }
  if (groups.length !== 8) return undefined;
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(parseInt(g, 16));
  if (tailV4 !== undefined) v = (v & ~0xffffffffn) | BigInt(tailV4);
  return v;
}

/** RFC 5952: lowercase, no leading zeros, the longest run (first on a tie) of two or more zero groups as "::". */
function formatV6(v: bigint): string {
  const g = new Array<number>(8);
  // Four 32-bit words, then plain number arithmetic: cheaper than eight bigint shifts.
  const hiHi = Number((v >> 96n) & 0xffffffffn);
  const hiLo = Number((v >> 64n) & 0xffffffffn);
  const loHi = Number((v >> 32n) & 0xffffffffn);
  const loLo = Number(v & 0xffffffffn);
  g[0] = hiHi >>> 16;
  g[1] = hiHi & 0xffff;
  g[2] = hiLo >>> 16;
  g[3] = hiLo & 0xffff;
  g[4] = loHi >>> 16;
  g[5] = loHi & 0xffff;
  g[6] = loLo >>> 16;
  g[7] = loLo & 0xffff;
  // RFC 5952 section 5: an IPv4-mapped address keeps its dotted tail.
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${formatV4(loLo >>> 0)}`;
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number, b: number): string => {
    let s = '';
    for (let i = a; i < b; i++) s += (i > a ? ':' : '') + g[i]!.toString(16);
    return s;
  };
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLen, 8)}`;
}

function formatV4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

export class Ip6 {
  readonly family = 6 as const;
  constructor(readonly value: bigint) {
    if (value < 0n || value > MASK128) throw new RangeError(`IPv6 value out of range: ${value}`);
  }
  static parse(text: string): Ip6 {
    const v = parseV6Bigint(text);
    if (v === undefined) {
      if (parseV4Number(text) !== undefined) {
        throw new ExitnodeError(CoreErrors.NOT_IPV6, `${q(text)} is an IPv4 address; an IPv6 address is required`);
      }
      const zone = text.includes('%') ? ' (a zone id such as %eth0 is not part of an address here)' : '';
      throw new ExitnodeError(CoreErrors.ADDRESS_SYNTAX, `${q(text)} is not an IPv6 address${zone}`);
    }
    return new Ip6(v);
  }
  static tryParse(text: string): Ip6 | undefined {
    const v = parseV6Bigint(text);
    return v === undefined ? undefined : new Ip6(v);
  }
  toString(): string {
    return formatV6(this.value);
  }
  equals(o: Ip6): boolean {
    return this.value === o.value;
  }
  add(n: bigint | number): Ip6 {
    return new Ip6((this.value + BigInt(n)) & MASK128);
  }
  isLinkLocal(): boolean {
    return this.value >> 118n === 0x3fan; // fe80::/10
  }
  /** The 16-bit group i (0..7), as in the text form. */
  group(i: number): number {
    return Number((this.value >> BigInt(112 - 16 * i)) & 0xffffn);
  }
  withLength(length: number): string {
    return `${this.toString()}/${length}`;
  }
}

export class Ip4 {
  readonly family = 4 as const;
  constructor(readonly value: number) {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff)
      throw new RangeError(`IPv4 value out of range: ${value}`);
  }
  static parse(text: string): Ip4 {
    const v = parseV4Number(text);
    if (v === undefined) {
      if (parseV6Bigint(text) !== undefined) {
        throw new ExitnodeError(CoreErrors.NOT_IPV4, `${q(text)} is an IPv6 address; an IPv4 address is required`);
      }
      throw new ExitnodeError(
        CoreErrors.ADDRESS_SYNTAX,
        `${q(text)} is not an IPv4 address (four decimal octets 0-255, no leading zeros)`,
      );
    }
    return new Ip4(v);
  }
  static tryParse(text: string): Ip4 | undefined {
    const v = parseV4Number(text);
    return v === undefined ? undefined : new Ip4(v);
  }
  toString(): string {
    return formatV4(this.value);
  }
  equals(o: Ip4): boolean {
    return this.value === o.value;
  }
  add(n: number): Ip4 {
    return new Ip4((this.value + n) >>> 0);
  }
  withLength(length: number): string {
    return `${this.toString()}/${length}`;
  }
}

export type IpAddr = Ip6 | Ip4;

export function parseAddress(text: string): IpAddr {
  const v6 = parseV6Bigint(text);
  if (v6 !== undefined) return new Ip6(v6);
  const v4 = parseV4Number(text);
  if (v4 !== undefined) return new Ip4(v4);
  throw new ExitnodeError(CoreErrors.ADDRESS_SYNTAX, `${q(text)} is not an IPv6 or IPv4 address`);
}

function splitPrefix(text: string, family: 4 | 6 | undefined): { addr: string; len: number; max: number; fam: 4 | 6 } {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const lenText = slash < 0 ? undefined : text.slice(slash + 1);
  const fam: 4 | 6 | undefined =
    parseV6Bigint(addr) !== undefined ? 6 : parseV4Number(addr) !== undefined ? 4 : undefined;
  if (fam === undefined) {
    throw new ExitnodeError(CoreErrors.PREFIX_SYNTAX, `${q(text)} is not a prefix: ${q(addr)} is not an address`);
  }
  if (family === 6 && fam === 4)
    throw new ExitnodeError(CoreErrors.NOT_IPV6, `${q(text)} is an IPv4 prefix; an IPv6 prefix is required`);
  if (family === 4 && fam === 6)
    throw new ExitnodeError(CoreErrors.NOT_IPV4, `${q(text)} is an IPv6 prefix; an IPv4 prefix is required`);
  const max = fam === 6 ? 128 : 32;
  if (lenText === undefined) {
    throw new ExitnodeError(CoreErrors.PREFIX_SYNTAX, `${q(text)} has no prefix length: write ADDRESS/LENGTH`);
  }
  if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText) || Number(lenText) > max) {
    throw new ExitnodeError(
      CoreErrors.PREFIX_SYNTAX,
      `${q(text)}: prefix length ${q(lenText)} must be a whole number from 0 to ${max}`,
    );
  }
  return { addr, len: Number(lenText), max, fam };
}

export class Ip6Prefix {
  readonly family = 6 as const;
  readonly network: Ip6;
  constructor(
    network: Ip6 | bigint,
    readonly length: number,
  ) {
    if (!Number.isInteger(length) || length < 0 || length > 128)
      throw new RangeError(`IPv6 prefix length out of range: ${length}`);
    const v = typeof network === 'bigint' ? network : network.value;
    const host = (1n << BigInt(128 - length)) - 1n;
    if ((v & host) !== 0n) throw new RangeError(`host bits set in ${formatV6(v)}/${length}`);
    this.network = typeof network === 'bigint' ? new Ip6(network) : network;
  }
  /** Parses ADDRESS/LENGTH; host bits below the length are refused. */
  static parse(text: string): Ip6Prefix {
    const { addr, len } = splitPrefix(text, 6);
    const v = parseV6Bigint(addr)!;
    const host = (1n << BigInt(128 - len)) - 1n;
    if ((v & host) !== 0n) {
      const net = new Ip6Prefix(v & ~host & MASK128, len);
      throw new ExitnodeError(
        CoreErrors.PREFIX_HOST_BITS,
        `${q(text)} has host bits set below /${len}; the network is ${net}`,
      );
    }
    return new Ip6Prefix(v, len);
  }
  get first(): Ip6 {
    return this.network;
  }
  get last(): Ip6 {
    return new Ip6(this.network.value | ((1n << BigInt(128 - this.length)) - 1n));
  }
  contains(x: Ip6 | Ip6Prefix): boolean {
    if (x instanceof Ip6Prefix) {
      return x.length >= this.length && this.contains(x.network);
    }
    return x.value >> BigInt(128 - this.length) === this.network.value >> BigInt(128 - this.length);
  }
  /** The index-th subnet of length `length` inside this prefix. */
  subnet(length: number, index: number | bigint): Ip6Prefix {
    if (length < this.length || length > 128) throw new RangeError(`a /${length} does not fit in a /${this.length}`);
    const i = BigInt(index);
    if (i < 0n || i >= 1n << BigInt(length - this.length)) throw new RangeError(`subnet index ${i} out of range`);
    return new Ip6Prefix(this.network.value | (i << BigInt(128 - length)), length);
  }
  /** The address at `offset` from the network address. */
  at(offset: bigint | number): Ip6 {
    return new Ip6(this.network.value + BigInt(offset));
  }
  equals(o: Ip6Prefix): boolean {
    return this.length === o.length && this.network.value === o.network.value;
  }
  toString(): string {
    return `${formatV6(this.network.value)}/${this.length}`;
  }
}

export class Ip4Prefix {
  readonly family = 4 as const;
  readonly network: Ip4;
  constructor(
    network: Ip4 | number,
    readonly length: number,
  ) {
    if (!Number.isInteger(length) || length < 0 || length > 32)
      throw new RangeError(`IPv4 prefix length out of range: ${length}`);
    const v = typeof network === 'number' ? network : network.value;
    if ((v & hostMask4(length)) !== 0) throw new RangeError(`host bits set in ${formatV4(v)}/${length}`);
    this.network = typeof network === 'number' ? new Ip4(network) : network;
  }
  static parse(text: string): Ip4Prefix {
    const { addr, len } = splitPrefix(text, 4);
    const v = parseV4Number(addr)!;
    const host = hostMask4(len);
    if ((v & host) !== 0) {
      throw new ExitnodeError(
        CoreErrors.PREFIX_HOST_BITS,
        `${q(text)} has host bits set below /${len}; the network is ${formatV4((v & ~host) >>> 0)}/${len}`,
      );
    }
    return new Ip4Prefix(v, len);
  }
  contains(x: Ip4 | Ip4Prefix): boolean {
    if (x instanceof Ip4Prefix) return x.length >= this.length && this.contains(x.network);
    const host = hostMask4(this.length);
    return (x.value & ~host) >>> 0 === this.network.value;
  }
  at(offset: number): Ip4 {
    return new Ip4(this.network.value + offset);
  }
  get last(): Ip4 {
    return new Ip4((this.network.value | hostMask4(this.length)) >>> 0);
  }
  equals(o: Ip4Prefix): boolean {
    return this.length === o.length && this.network.value === o.network.value;
  }
  toString(): string {
    return `${formatV4(this.network.value)}/${this.length}`;
  }
}

function hostMask4(length: number): number {
  return length === 0 ? 0xffffffff : length === 32 ? 0 : 2 ** (32 - length) - 1;
}

export type IpPrefix = Ip6Prefix | Ip4Prefix;

export function parsePrefix(text: string): IpPrefix {
  const { fam } = splitPrefix(text, undefined);
  return fam === 6 ? Ip6Prefix.parse(text) : Ip4Prefix.parse(text);
}

/** An address with a prefix length as on an interface (`fe80::1/64`): host bits are the point. */
export interface IfAddr {
  addr: IpAddr;
  length: number;
}

export function parseIfAddr(text: string): IfAddr {
  const { addr, len } = splitPrefix(text, undefined);
  return { addr: parseAddress(addr), length: len };
}

/** Canonical text of an IPv6 address given as text (RFC 5952); input errors as for Ip6.parse. */
export function canonical6(text: string): string {
  return Ip6.parse(text).toString();
}
