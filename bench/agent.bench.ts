// npm run bench:agent — the node agent against a hand-written iproute2/nft batch script doing
// the same kernel work, in the same run, on the same machine (a benchmark, not a timed test).
//   (a) a gateway with N ExitPoints (default 1000) converged from empty
//   (b) add, then remove, one NR on a gateway holding 4096 NR routes (16 ExitPoints × 256 NRs,
//       the other ends remote)
//   (c) a no-op resync of that gateway
//   (d) removing one tenant network (one ExitPoint and its 255 remote NRs) from it
// WireGuard is off ("none"): the ExitPoints' peers are remote and 1000 wireguard-go processes
// would be 11000 threads; every other object of DESIGN.md section 3 is built. Needs root.
// Namespaces "xb-ag-", allocation 501. Options: --eps N (a), --rounds R, --skip-a, --only-a, --ns-prefix P.
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyView } from '../src/agent/index.js';
import { Compiler } from '../src/compile/index.js';
import type { NodeConfig } from '../src/agent/config.js';
import type { NodeView } from '../src/core/view.js';
import type { DesiredState } from '../src/compile/desired.js';
import { allocation, planNr, nrIdText } from '../src/core/plan.js';
import { run, inNs } from '../src/kernel/exec.js';
import { namespacesWith } from '../src/sim/procs.js';

const args = process.argv.slice(2);
const argN = (name: string, d: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : d;
};
const EPS = argN('eps', 1000);
const ROUNDS = argN('rounds', 5);
const A = 501;
const P = '2001:db8:5e::/48';
// Its own namespaces only: other benches use "xb-" too (xb-seg, xb-n1 …) and must not lose theirs.
const PX = args.includes('--ns-prefix') ? args[args.indexOf('--ns-prefix') + 1]! : 'xb-ag-';
const ROOT = `${PX}root`;
const SEG = `${PX}seg`;
const alloc = allocation(P, A);
const state = mkdtempSync(join(tmpdir(), 'exitnode-bench-'));
const config: NodeConfig = {
  node: 'bn',
  namespacePrefix: `${PX}a-`,
  rootNamespace: ROOT,
  publicNamespace: ROOT,
  stateDir: state,
  uplink: { kind: 'veth', peerNamespace: SEG, bridge: 'pz0' },
  wireguard: 'none',
};

function sh(argv: string[], input?: string): Promise<void> {
  return run(argv, input).then((r) => {
    if (r.code !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr.trim().slice(0, 300)}`);
  });
}

async function cleanAll(): Promise<void> {
  const names = namespacesWith(PX);
  if (names.length) await run(['ip', '-force', '-batch', '-'], names.map((n) => `netns del ${n}`).join('\n') + '\n');
}

async function base(): Promise<void> {
  await cleanAll();
  await sh(['ip', '-batch', '-'], `netns add ${ROOT}\nnetns add ${SEG}\n`);
  await sh(inNs(SEG, ['ip', '-batch', '-']), 'link set lo up\nlink add pz0 type bridge\nlink set pz0 up\n');
  await sh(inNs(ROOT, ['ip', 'link', 'set', 'lo', 'up']));
  rmSync(state, { recursive: true, force: true });
}

/** A TN per ExitPoint; `remote` more NRs per TN on another node. */
function view(tns: { exit: number; remote: number[] }[], version: number): NodeView {
  return {
    version,
    node: { id: 'bn', publicIPv4: '192.0.2.1' },
    allocations: [
      { number: A, prefix: P, upstream: { ll: 'fe80::1', ipv4Gateway: '198.51.100.1', ipv4PrefixLength: 24 } },
    ],
    slots: [{ allocation: A, slot: 1, epoch: 1, ipv4: '198.51.100.10' }],
    networks: tns.map((t) => ({
      id: `t${nrIdText(t.exit)}`,
      allocation: A,
      exit: nrIdText(t.exit),
      resources: [{ id: nrIdText(t.exit), node: 'bn' }, ...t.remote.map((r) => ({ id: nrIdText(r), node: 'far' }))],
    })),
  };
}

// ---- the hand-written scripts: what an operator would type, batched per namespace ----------
const GW = `${PX}a-gw-1-${A}`;
const nsOf = (id: number): string => `${PX}a-net-${nrIdText(id)}-${A}`;

/** Builds the same gateway + ExitPoints from empty as the agent does, as one sh script. */
function scriptFromEmpty(tns: { exit: number; remote: number[] }[]): string {
  const out: string[] = [
    'set -e',
    `ip -batch - <<'E'`,
    `netns add ${GW}`,
    ...tns.map((t) => `netns add ${nsOf(t.exit)}`),
    'E',
  ];
  const gw: string[] = [`link add pub-1-${A} type veth peer name pz-1-${A} netns ${SEG}`];
  const root: string[] = [];
  const el6: string[] = [];
  const el4: string[] = [];
  const el4h: string[] = [];
  for (const t of tns) {
    const n = planNr(alloc, t.exit);
    gw.push(`link add ${n.GWtoEPName} type veth peer name ${n.EPPubName} netns ${n.Namespace.replace(/^/, `${PX}a-`)}`);
    root.push(
      `link add ${n.BridgeName} type bridge`,
      `link add vbr-${n.id}-${A} type veth peer name ${n.NRLocalName} netns ${nsOf(t.exit)}`,
    );
  }
  out.push(`nsenter --net=/run/netns/${GW} ip -batch - <<'E'`, ...gw, 'E');
  out.push(`nsenter --net=/run/netns/${ROOT} ip -batch - <<'E'`, ...root, 'E');
  out.push(
    `nsenter --net=/run/netns/${GW} sysctl -qw net.ipv4.conf.all.forwarding=1 net.ipv6.conf.all.forwarding=1 net.ipv6.conf.pub-1-${A}.ndisc_notify=1 net.ipv4.conf.pub-1-${A}.arp_notify=1`,
  );
  const rootCfg: string[] = [];
  const gwCfg: string[] = [
    'link set lo up',
    `link set pub-1-${A} addrgenmode none`,
    `link set pub-1-${A} up`,
    `addr add fe80::1000:0:0:1/64 dev pub-1-${A}`,
    `addr add 2001:db8:5e:0:1000::1/64 dev pub-1-${A}`,
    `addr add 198.51.100.10/24 dev pub-1-${A}`,
    `route add ::/0 via fe80::1 dev pub-1-${A} proto 77`,
    `route add 0.0.0.0/0 via 198.51.100.1 dev pub-1-${A} proto 77`,
  ];
  for (const t of tns) {
    const n = planNr(alloc, t.exit);
    const to = n.GWtoEPName;
    gwCfg.push(
      `link set ${to} addrgenmode none`,
      `link set ${to} up`,
      `addr add ${n.GWtoEPLL} dev ${to} nodad`,
      `addr add 10.1.0.1/32 dev ${to}`,
    );
    el6.push(`"${to}" . fe80::`);
    el4h.push(`"${to}" . 10.255.${t.exit >> 8}.${t.exit & 255}`);
    for (const id of [t.exit, ...t.remote]) {
      const m = planNr(alloc, id);
      gwCfg.push(
        `route add ${m.prefix} via fe80::${n.id}:1 dev ${to} proto 77`,
        `route add 10.${id >> 8}.${id & 255}.0/24 via 10.255.${t.exit >> 8}.${t.exit & 255} dev ${to} onlink proto 77`,
      );
      el6.push(`"${to}" . ${m.prefix.replace('/64', '')}`);
      el4.push(`"${to}" . 10.${id >> 8}.${id & 255}.0`);
    }
    rootCfg.push(
      `link set ${n.BridgeName} addrgenmode none`,
      `link set ${n.BridgeName} up`,
      `link set vbr-${n.id}-${A} addrgenmode none`,
      `link set vbr-${n.id}-${A} master ${n.BridgeName}`,
      `link set vbr-${n.id}-${A} up`,
    );
    const ep = nsOf(t.exit);
    out.push(`nsenter --net=/run/netns/${ep} sysctl -qw net.ipv4.conf.all.forwarding=1 net.ipv6.conf.all.forwarding=1`);
    out.push(
      `nsenter --net=/run/netns/${ep} ip -batch - <<'E'`,
      'link set lo up',
      `link set ${n.NRLocalName} up`,
      `link set ${n.EPPubName} addrgenmode none`,
      `link set ${n.EPPubName} up`,
      `addr add ${n.NRLocalIP6} dev ${n.NRLocalName} nodad`,
      `addr add ${n.NRLocalIP4} dev ${n.NRLocalName}`,
      `addr add ${n.EPPubLL} dev ${n.EPPubName} nodad`,
      `addr add ${n.EPPubIP4R} dev ${n.EPPubName}`,
      `route add ::/0 via fe80::1:${n.id} dev ${n.EPPubName} proto 77`,
      `route add 0.0.0.0/0 via 10.1.0.1 dev ${n.EPPubName} onlink proto 77`,
      'E',
    );
  }
  out.push(
    `nsenter --net=/run/netns/${SEG} ip -batch - <<'E'`,
    `link set pz-1-${A} master pz0`,
    `link set pz-1-${A} addrgenmode none`,
    `link set pz-1-${A} up`,
    'E',
  );
  out.push(`nsenter --net=/run/netns/${ROOT} ip -batch - <<'E'`, ...rootCfg, 'E');
  out.push(`nsenter --net=/run/netns/${GW} ip -batch - <<'E'`, ...gwCfg, 'E');
  out.push(
    `nsenter --net=/run/netns/${GW} nft -f - <<'E'`,
    'table ip exitnode-nat {',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    oifname "pub-1-${A}" ip saddr 10.0.0.0/8 snat to 198.51.100.10`,
    '  }',
    '}',
    'table inet exitnode-filter {',
    '  set src6 { type ifname . ipv6_addr; }',
    '  set src4 { type ifname . ipv4_addr; }',
    '  set src4h { type ifname . ipv4_addr; }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    '    iifname "to-*" meta nfproto ipv6 iifname . ip6 saddr & ffff:ffff:ffff:ffff:: != @src6 counter drop',
    '    iifname "to-*" meta nfproto ipv4 iifname . ip saddr & 255.255.255.0 != @src4 iifname . ip saddr != @src4h counter drop',
    '    iifname "to-*" oifname "to-*" meta nfproto ipv4 counter drop',
    '  }',
    '}',
    `add element inet exitnode-filter src6 { ${el6.join(', ')} }`,
    `add element inet exitnode-filter src4 { ${el4.join(', ')} }`,
    `add element inet exitnode-filter src4h { ${el4h.join(', ')} }`,
    'E',
  );
  return out.join('\n') + '\n';
}

async function timeScript(text: string): Promise<number> {
  const f = join(tmpdir(), `xb-script-${process.pid}.sh`);
  writeFileSync(f, text);
  const t0 = performance.now();
  await sh(['sh', f]);
  const ms = performance.now() - t0;
  rmSync(f, { force: true });
  return ms;
}

let previous: DesiredState | undefined;
/** The agent's compiler, as a daemon keeps it: unchanged TNs' objects are handed over. */
const compiler = new Compiler();

/** One agent pass; incremental (against the previous pass's desired state) or full (reads the kernel). */
async function timeAgent(v: NodeView, expectChange = true, incremental = false): Promise<number> {
  const t0 = performance.now();
  const r = await applyView(v, config, incremental && previous ? { previous, compiler } : { compiler });
  const ms = performance.now() - t0;
  if (r.failures.length) throw new Error(`agent failures: ${JSON.stringify(r.failures.slice(0, 5))}`);
  if (expectChange !== r.size > 0)
    throw new Error(`expected ${expectChange ? 'a change' : 'no change'}, plan size ${r.size}`);
  previous = r.desired;
  return ms;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const rows: string[][] = [];
function row(name: string, agent: number[], script: number[], goal: string, covers: string): void {
  const a = median(agent);
  const s = median(script);
  rows.push([name, a.toFixed(1), s.toFixed(1), (a / s).toFixed(2), goal, covers]);
  console.error(`  ${name}: agent ${a.toFixed(1)} ms, script ${s.toFixed(1)} ms (n=${agent.length})`);
}

async function printTable(rD = 0): Promise<void> {
  const head = ['figure', 'agent ms (median)', 'script ms (median)', 'ratio', 'goal', 'what the agent figure covers'];
  const table = [head, head.map(() => '---'), ...rows];
  console.log(table.map((r) => `| ${r.join(' | ')} |`).join('\n'));
  const load = (await run(['cat', '/proc/loadavg'])).stdout.split(' ').slice(0, 3).join(' ');
  console.log(
    `\nmachine: ${(await run(['nproc'])).stdout.trim()} cores, ${(await run(['uname', '-r'])).stdout.trim()}, load average ${load} at the end; rounds: (a) ${Math.max(1, Math.min(ROUNDS, 3))}, (b)(c) ${ROUNDS}, (d) ${rD}; scripts are sh + ip -batch/nft -f per namespace, run sequentially; the agent runs up to 4 processes at a time`,
  );
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error('bench:agent needs root (network namespaces)');
    process.exit(2);
  }
  try {
    // (a) EPS ExitPoints from empty: alternate script and agent, clean between.
    const epTns = Array.from({ length: EPS }, (_, i) => ({ exit: 0x1000 + i, remote: [] as number[] }));
    const rA = Math.max(1, Math.min(ROUNDS, 3));
    const aAgent: number[] = [];
    const aScript: number[] = [];
    for (let i = 0; i < (args.includes('--skip-a') ? 0 : rA); i++) {
      console.error(`(a) round ${i + 1}/${rA}: ${EPS} ExitPoints`);
      await base();
      aScript.push(await timeScript(scriptFromEmpty(epTns)));
      await base();
      aAgent.push(await timeAgent(view(epTns, 1)));
      if (i === rA - 1) await timeAgent(view(epTns, 1), false); // converged: the next pass is empty
    }
    if (aAgent.length)
      row(
        `(a) ${EPS} ExitPoints from empty`,
        aAgent,
        aScript,
        '≤ 1.5×',
        `observe+diff+apply: ${EPS + 1} namespaces, ${2 * EPS + 1} veth pairs, ${EPS} bridges, addresses, routes, sysctls, nft tables + ${4 * EPS} elements`,
      );

    // (b)(c)(d): 16 ExitPoints × 256 NRs; the last TN has 255 so that one more fills the slot.
    if (args.includes('--only-a')) return printTable();
    await base();
    const big = Array.from({ length: 16 }, (_, t) => ({
      exit: 0x1000 + t * 256,
      remote: Array.from({ length: 255 }, (_, k) => 0x1000 + t * 256 + 1 + k),
    }));
    big[15]!.remote.pop();
    const extra = 0x1fff;
    let ver = 10;
    await timeAgent(view(big, ver++));
    const withExtra = structuredClone(big);
    withExtra[15]!.remote.push(extra);
    const bAdd: number[] = [],
      bDel: number[] = [],
      sAdd: number[] = [],
      sDel: number[] = [],
      fAdd: number[] = [],
      fDel: number[] = [];
    const to = `to-1f00-${A}`;
    const addLines = `route add 2001:db8:5e:1fff::/64 via fe80::1f00:1 dev ${to} proto 77\nroute add 10.31.255.0/24 via 10.255.31.0 dev ${to} onlink proto 77\n`;
    const delLines = `route del 2001:db8:5e:1fff::/64 dev ${to} proto 77\nroute del 10.31.255.0/24 dev ${to} proto 77\n`;
    const nftAdd = `add element inet exitnode-filter src6 { "${to}" . 2001:db8:5e:1fff:: }\nadd element inet exitnode-filter src4 { "${to}" . 10.31.255.0 }\n`;
    const nftDel = nftAdd.replaceAll('add element', 'delete element');
    const script = (ip: string, nft: string): string =>
      `set -e\nnsenter --net=/run/netns/${GW} ip -batch - <<'E'\n${ip}E\nnsenter --net=/run/netns/${GW} nft -f - <<'E'\n${nft}E\n`;
    for (let i = 0; i < ROUNDS; i++) {
      sAdd.push(await timeScript(script(addLines, nftAdd)));
      sDel.push(await timeScript(script(delLines, nftDel)));
      bAdd.push(await timeAgent(view(withExtra, ver++), true, true));
      bDel.push(await timeAgent(view(big, ver++), true, true));
      fAdd.push(await timeAgent(view(withExtra, ver++)));
      fDel.push(await timeAgent(view(big, ver++)));
    }
    row(
      '(b) add one NR (4095 → 4096 routes), incremental pass',
      bAdd,
      sAdd,
      '≤ 50 ms',
      'compile 4096 NRs, diff against the previous pass, apply 2 routes (one ip batch) + 2 elements (one nft transaction)',
    );
    row('(b) remove one NR (4096 → 4095), incremental pass', bDel, sDel, '≤ 50 ms', 'same, removal');
    row(
      '(b) add one NR, full pass',
      fAdd,
      sAdd,
      '—',
      'as above, but re-reading the kernel first (19 namespaces, 8192 routes, 8000 nft elements)',
    );
    row('(b) remove one NR, full pass', fDel, sDel, '—', 'same, removal');

    // (c) no-op resync vs a script that reads the same state.
    const readAll =
      [GW, ...big.map((t) => nsOf(t.exit)), ROOT, SEG]
        .map(
          (n) =>
            `nsenter --net=/run/netns/${n} ip -json -d -batch - >/dev/null <<'E'\nlink show\naddr show\nroute show table all proto 77 root ::/0\nroute show table all proto 77 root 0.0.0.0/0\nnetconf show\nE`,
        )
        .join('\n') + `\nnsenter --net=/run/netns/${GW} nft -j list ruleset >/dev/null\n`;
    const cA: number[] = [],
      cS: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      cS.push(await timeScript(readAll));
      cA.push(await timeAgent(view(big, ver++), false));
    }
    row(
      '(c) no-op resync',
      cA,
      cS,
      '≤ 300 ms',
      'observe 19 namespaces (ip -json, nft -j, sysctl), compile, diff; nothing applied. Script: the same reads only',
    );

    // (d) remove one TN (its ExitPoint + 255 remote NRs); put it back between rounds (untimed).
    const dA: number[] = [],
      dS: number[] = [],
      dF: number[] = [];
    const gone = big[3]!;
    const n = planNr(alloc, gone.exit);
    const without = big.filter((t) => t !== gone);
    const els = (f: (id: number) => string): string => [gone.exit, ...gone.remote].map(f).join(', ');
    const dScript = `set -e\nnsenter --net=/run/netns/${GW} nft -f - <<'E'\ndelete element inet exitnode-filter src6 { "${n.GWtoEPName}" . fe80::, ${els((id) => `"${n.GWtoEPName}" . ${planNr(alloc, id).prefix.replace('/64', '')}`)} }\ndelete element inet exitnode-filter src4 { ${els((id) => `"${n.GWtoEPName}" . 10.${id >> 8}.${id & 255}.0`)} }\ndelete element inet exitnode-filter src4h { "${n.GWtoEPName}" . 10.255.${gone.exit >> 8}.${gone.exit & 255} }\nE\nnsenter --net=/run/netns/${GW} ip link del ${n.GWtoEPName}\nnsenter --net=/run/netns/${ROOT} ip -batch - <<'E'\nlink del ${n.BridgeName}\nlink del vbr-${n.id}-${A}\nE\nip netns del ${nsOf(gone.exit)}\n`;
    const rD = Math.max(1, Math.min(ROUNDS, 3));
    for (let i = 0; i < rD; i++) {
      dS.push(await timeScript(dScript));
      await timeAgent(view(big, ver++));
      dA.push(await timeAgent(view(without, ver++), true, true));
      await timeAgent(view(big, ver++));
      dF.push(await timeAgent(view(without, ver++)));
      await timeAgent(view(big, ver++));
    }
    row('(d) remove one TN, full pass', dF, dS, 'report', 'the same with the kernel re-read first');
    row(
      '(d) remove one TN (1 ExitPoint + 255 remote NRs), incremental',
      dA,
      dS,
      'report',
      `diff against the previous pass; apply: 514 nft elements in one transaction, ${n.GWtoEPName}, ${n.BridgeName}, vbr-${n.id}-${A} deleted, namespace deleted`,
    );

    await printTable(rD);
  } finally {
    await cleanAll();
    rmSync(state, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
