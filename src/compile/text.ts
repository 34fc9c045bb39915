// The desired state as sorted text, one object per line: the golden files of the compile tests
// and a readable dump for people (`exitnode agent apply --dry-run` shows commands instead).
import type { DesiredState } from './desired.js';

export function desiredText(d: DesiredState): string {
  const lines: string[] = [];
  for (const ns of d.namespaces) {
    const at = ns.name === '' ? '(host)' : ns.name;
    lines.push(`${at} namespace ${ns.roles.slice().sort().join(',')}`);
    for (const l of ns.links) {
      const c = l.create;
      let how = 'created by its peer';
      if (c?.how === 'veth') how = `veth peer ${c.peer} in ${c.peerNs || '(host)'}`;
      else if (c?.how === 'bridge') how = 'bridge';
      else if (c?.how === 'macvlan') how = `macvlan on ${c.parent} in ${c.parentNs || '(host)'}`;
      else if (c?.how === 'nic') how = `NIC ${c.device} from ${c.fromNs || '(host)'}`;
      else if (c?.how === 'wireguard') how = `wireguard created in ${c.fromNs || '(host)'}`;
      lines.push(
        `${at} link ${l.name} ${l.kind} (${how})${l.master ? ` master ${l.master}` : ''}${l.kernelLinkLocal ? ' kernel-ll' : ''}${l.down ? ' down' : ''}`,
      );
    }
    for (const a of ns.addrs)
      lines.push(`${at} addr ${a.addr} dev ${a.dev}${a.nodad && a.addr.includes(':') ? ' nodad' : ''}`);
    for (const r of ns.routes)
      lines.push(
        `${at} route ${r.dst}${r.via ? ` via ${r.via}` : ''} dev ${r.dev}${r.onlink ? ' onlink' : ''}${r.src ? ` src ${r.src}` : ''}`,
      );
    for (const [k, v] of Object.entries(ns.sysctls)) lines.push(`${at} sysctl ${k}=${v}`);
    for (const a of ns.foreign?.addrs ?? []) lines.push(`${at} foreign addr ${a}`);
    for (const r of ns.foreign?.routes ?? []) lines.push(`${at} foreign route ${r}`);
    for (const t of ns.nft) {
      lines.push(`${at} nft table ${t.family} ${t.name} ${t.hash}`);
      for (const body of t.body.split('\n'))
        if (/^\s+(iifname|oifname|ct |icmpv6 |ip6 |counter )/.test(body))
          lines.push(`${at} nft rule ${t.family} ${t.name}: ${body.trim().replace(/ comment .*$/, '')}`);
      for (const [set, els] of Object.entries(t.sets))
        for (const e of els) lines.push(`${at} nft element ${t.family} ${t.name} ${set} "${e.ifname}" . ${e.prefix}`);
      for (const [set, els] of Object.entries(t.texts ?? {}))
        for (const e of els) lines.push(`${at} nft element ${t.family} ${t.name} ${set} ${e}`);
    }
  }
  for (const w of d.wireguard) {
    lines.push(`wg ${w.name} in ${w.ns} port ${w.listenPort} key ${w.keyFile}`);
    for (const p of w.peers)
      lines.push(
        `wg ${w.name} peer ${p.publicKey} allowed ${p.allowedIps.join(',')}${p.endpoint ? ` endpoint ${p.endpoint}` : ''}${p.keepalive ? ` keepalive ${p.keepalive}` : ''}`,
      );
  }
  // keepalived.conf itself has its own golden files (src/compile/keepalived.ts).
  for (const v of d.vrrp ?? [])
    lines.push(`vrrp ${v.ns} slot ${v.allocation}/${v.slot} vrid ${v.vrid} priority ${v.priority}`);
  return lines.sort().join('\n') + '\n';
}
