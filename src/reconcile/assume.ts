// The kernel as a previous pass left it, when that pass succeeded: the ActualState that holds
// `desired` exactly. The agent diffs a new view against it for an incremental pass (a changed
// view costs only its delta, not a re-read of 8000 routes); a periodic full pass re-reads the
// kernel and repairs drift (Tailscale computes deltas, Felix still resyncs: we do both).
import type { DesiredState } from '../compile/desired.js';
import { ruleMarker } from '../core/ownership.js';
import type { ActualNs, ActualState } from './actual.js';

/** The result shares arrays with `d`: read-only, as `diff` treats it. */
export function assumeApplied(
  d: DesiredState,
  privateKeys: Map<string, string>,
  files: Pick<ActualState, 'wgProcesses' | 'keyFiles' | 'pidFiles' | 'vrrp'>,
): ActualState {
  const namespaces = new Map<string, ActualNs>();
  for (const ns of d.namespaces) {
    namespaces.set(ns.name, {
      name: ns.name,
      links: [
        { name: 'lo', kind: '', up: true, addrgenNone: false },
        ...ns.links.map((l) => ({
          name: l.name,
          kind: l.kind === 'wireguard' ? 'tun' : l.kind === 'nic' ? '' : l.kind,
          up: !l.down,
          addrgenNone: !l.kernelLinkLocal,
          ...(l.master ? { master: l.master } : {}),
        })),
      ],
      addrs: ns.addrs.map((a) => ({ dev: a.dev, addr: a.addr })),
      // Shared, not copied: diff skips runs of objects identical on both sides. Routes through a
      // link kept down are not in the kernel (diff leaves them out).
      routes: ns.links.some((l) => l.down)
        ? ns.routes.filter((r) => !ns.links.some((l) => l.down && l.name === r.dev))
        : ns.routes,
      sysctls: { ...ns.sysctls },
      nft: ns.nft.map((t) => ({
        family: t.family,
        name: t.name,
        ruleHashes: Array<string>(t.body.split(ruleMarker(t.hash)).length - 1).fill(t.hash),
        sets: t.sets,
        ...(t.texts ? { texts: t.texts } : {}),
      })),
    });
  }
  const wireguard = new Map(
    d.wireguard.map((w) => [
      w.name,
      { name: w.name, privateKey: privateKeys.get(w.name) ?? '', listenPort: w.listenPort, peers: w.peers },
    ]),
  );
  return {
    namespaces,
    wireguard,
    owned: new Set(
      d.namespaces.filter((n) => n.roles.includes('gateway') || n.roles.includes('nr')).map((n) => n.name),
    ),
    wgProcesses: files.wgProcesses,
    keyFiles: files.keyFiles,
    pidFiles: files.pidFiles,
    ...(files.vrrp ? { vrrp: files.vrrp } : {}),
  };
}
