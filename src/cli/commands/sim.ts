// exitnode sim up|check|status|exec|down|stop|start: the simulated farm (src/sim).
import { existsSync, readFileSync } from 'node:fs';
import { ExitnodeError, q } from '../../core/errors.js';
import { flag, opt, parse, usageError } from '../args.js';
import type { Io } from '../io.js';

export const summary =
  'simulated farm on this host: real server, real agents, namespaces; up, check, status, exec, down';
export const usage = [
  'exitnode sim up [--nodes 3] [--exit-nodes 2] [--slots N] [--tenants 2] [--nat-node] [--failover lease|vrrp] [--candidates N] [--prefix 2001:db8:5e::/48] [--allocation 1] [--ns-prefix sim-] [--state DIR]',
  '         --nat-node: one more node, not exit-capable, without a public address behind a NAT of its own',
  "         --failover, --candidates: the allocation's failover mode and candidates per slot (vrrp: stage 2; default: the server's)",
  '       exitnode sim check [--json] [--state DIR]',
  '       exitnode sim status [--json] [--state DIR]',
  '       exitnode sim exec HOST [--state DIR] -- COMMAND…   (HOST: inet, up, seg, n1…, a workload such as t1n2, or a namespace name)',
  '       exitnode sim stop server|NODE [--kill] [--state DIR]   |   exitnode sim start server|NODE [--state DIR]',
  '       exitnode sim fail NODE | recover NODE | partition NODE | heal NODE [--state DIR]',
  '         fail: kill its agent and cut its links; recover: agent back, then links; partition: cut it from the server only; heal: undo',
  '       exitnode sim cut-vrrp NODE NODE | heal-vrrp [NODE NODE] [--state DIR]',
  '         cut-vrrp: drop VRRP adverts between two nodes on the segment (both still reach the upstream); heal-vrrp: undo (all cuts without nodes)',
  '       exitnode sim down [--state DIR] [--ns-prefix sim-]',
  '  state directory: --state, else $EXITNODE_SIM_STATE, else /run/exitnode-sim',
].join('\n');

const OPTIONS = {
  nodes: { type: 'string' },
  'exit-nodes': { type: 'string' },
  slots: { type: 'string' },
  tenants: { type: 'string' },
  prefix: { type: 'string' },
  allocation: { type: 'string' },
  'ns-prefix': { type: 'string' },
  state: { type: 'string' },
  json: { type: 'boolean' },
  kill: { type: 'boolean' },
  'no-check': { type: 'boolean' },
  'nat-node': { type: 'boolean' },
  failover: { type: 'string' },
  candidates: { type: 'string' },
} as const;

function failoverMode(v: string): 'lease' | 'vrrp' {
  if (v !== 'lease' && v !== 'vrrp') throw usageError(`--failover ${q(v)} must be "lease" or "vrrp"`, usage);
  return v;
}

function int(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw usageError(`--${name} ${q(v)} must be a whole number`, usage);
  return Number(v);
}

export async function run(argv: string[], io: Io): Promise<number> {
  const [verb, ...rest0] = argv;
  const dd = rest0.indexOf('--');
  const rest = dd === -1 ? rest0 : rest0.slice(0, dd);
  const command = dd === -1 ? [] : rest0.slice(dd + 1);
  const p = parse(rest, OPTIONS, usage);
  // Loaded here, not at the top: `exitnode help` loads every command module for its summary.
  const [{ DEFAULT_STATE_DIR, loadState }, farm, daemons, failover, procs, { checkText }] = await Promise.all([
    import('../../sim/state.js'),
    import('../../sim/farm.js'),
    import('../../sim/daemons.js'),
    import('../../sim/failover.js'),
    import('../../sim/procs.js'),
    import('../../sim/check.js'),
  ]);
  const stateDir = opt(p, 'state') ?? process.env.EXITNODE_SIM_STATE ?? DEFAULT_STATE_DIR;
  const json = flag(p, 'json');
  switch (verb) {
    case 'up': {
      const t0 = Date.now();
      const s = await farm
        .up({
          stateDir,
          ...(opt(p, 'ns-prefix') ? { nsPrefix: opt(p, 'ns-prefix')! } : {}),
          ...(opt(p, 'prefix') ? { prefix: opt(p, 'prefix')! } : {}),
          nodes: int(opt(p, 'nodes'), 'nodes'),
          exitNodes: int(opt(p, 'exit-nodes'), 'exit-nodes'),
          tenants: int(opt(p, 'tenants'), 'tenants'),
          allocation: int(opt(p, 'allocation'), 'allocation'),
          slots: int(opt(p, 'slots'), 'slots'),
          natNode: flag(p, 'nat-node'),
          ...(opt(p, 'failover') !== undefined ? { failover: failoverMode(opt(p, 'failover')!) } : {}),
          candidates: int(opt(p, 'candidates'), 'candidates'),
          progress: (l) => io.out(l),
        })
        .catch((e: unknown) => {
          // What was built stays for a look (sim status, sim exec, the logs in the state directory).
          if (e instanceof ExitnodeError && e.code !== 'SIM_RUNNING' && existsSync(stateDir))
            io.err(
              `sim up stopped; what it built is still there: exitnode sim down${stateDir === DEFAULT_STATE_DIR ? '' : ` --state ${stateDir}`} removes it (logs in ${stateDir})`,
            );
          throw e;
        });
      let ok = true;
      if (!flag(p, 'no-check')) {
        io.out('sim check (every cell: exitnode sim check):');
        const { standby, report: r } = await failover.checkLive(s);
        if (standby.length) io.out(`  ${standbyText(standby)}`);
        io.out(checkText(r, { compact: true }));
        ok = r.ok;
      }
      const st = stateDir === DEFAULT_STATE_DIR ? '' : ` --state ${stateDir}`;
      io.out(
        [
          `the simulated farm is up in ${((Date.now() - t0) / 1000).toFixed(1)} s${ok ? '' : ' (but sim check FAILED: see above)'}.`,
          `  API:          ${s.server.url}   (OpenAPI at ${s.server.url}/docs; loopback only)`,
          `  dashboard:    ${s.server.url}/ui/   sign in with the farm token: ${readFileSync(s.server.farmTokenFile, 'utf8').trim()}`,
          `  admin token:  ${s.server.adminTokenFile}   farm token: ${s.server.farmTokenFile}   tenant tokens: ${stateDir}/tenant-N.token`,
          `  e.g.          curl -H "authorization: Bearer $(cat ${s.server.farmTokenFile})" ${s.server.url}/v1/farms/${s.farm}`,
          `  next:         exitnode sim status${st}; exitnode sim check${st}; exitnode sim exec t1n2${st} -- ping -6 ${'2001:db8:ffff::2'}; exitnode sim down${st}`,
        ].join('\n'),
      );
      return ok ? 0 : 1;
    }
    case 'check': {
      const { moved, leftOut, standby, report: r } = await failover.checkLive(loadState(stateDir));
      if (moved.length && !json)
        io.out(
          `workloads moved beside their ExitPoint's new node, or re-attached to a rebuilt bridge: ${moved.join(', ')}`,
        );
      if (leftOut.length && !json) io.out(`left out (their node failed: sim recover NODE): ${leftOut.join(', ')}`);
      if (standby.length && !json) io.out(standbyText(standby));
      io.out(json ? JSON.stringify(r, null, 2) : checkText(r));
      return r.ok ? 0 : 1;
    }
    case 'status': {
      const r = await farm.status(stateDir);
      io.out(
        json
          ? JSON.stringify(
              {
                server: r.server,
                nodes: r.nodes,
                failover: r.state.failover ?? null,
                slots: r.state.slots.map((x) => ({
                  ...x,
                  holder: r.holders?.[x.slot] ?? null,
                  candidates: r.candidates?.[x.slot] ?? null,
                  answering: r.answering[x.slot] ?? [],
                })),
                vrrpCuts: failover.vrrpCuts(r.state),
                tenants: r.state.tenants,
                workloads: r.state.workloads,
                url: r.state.server.url,
              },
              null,
              2,
            )
          : farm.statusText(r),
      );
      return r.server.healthy && r.nodes.every((n) => n.running) ? 0 : 1;
    }
    case 'exec': {
      const host = p.positionals[0];
      if (!host || !command.length) throw usageError('sim exec needs HOST -- COMMAND…', usage);
      const st = loadState(stateDir);
      const ns = farm.hostNamespace(st, host);
      const node = st.nodes.find((n) => ns === n.ns || ns.startsWith(`${n.ns}-`));
      const r = await procs.runAttached(ns, command, node?.wgDir ? { wgDir: node.wgDir } : {});
      if (r.error) io.err(`exitnode: ${r.error}`);
      return r.code;
    }
    case 'stop':
    case 'start': {
      const s = loadState(stateDir);
      const what = p.positionals[0];
      if (!what) throw usageError(`sim ${verb} needs "server" or a node id`, usage);
      if (verb === 'stop') {
        const was =
          what === 'server'
            ? await daemons.stopServer(s, flag(p, 'kill') ? 'SIGKILL' : 'SIGTERM')
            : await daemons.stopAgent(s, what, flag(p, 'kill') ? 'SIGKILL' : 'SIGTERM');
        io.out(`${what}: ${was ? 'stopped' : 'was not running'}`);
      } else {
        if (what === 'server') await daemons.startServer(s);
        else daemons.startAgent(s, what);
        io.out(`${what}: started`);
      }
      return 0;
    }
    case 'down': {
      const r = await farm.down({ stateDir, ...(opt(p, 'ns-prefix') ? { nsPrefix: opt(p, 'ns-prefix')! } : {}) });
      io.out(
        r.processes || r.namespaces || r.files
          ? `removed: ${r.processes} processes, ${r.namespaces} namespaces, state ${r.files ? stateDir : '(none)'}`
          : 'nothing to remove',
      );
      if (r.lingering.length) {
        io.err(
          `exitnode: still running after SIGKILL and 10 s: ${r.lingering.map((x) => `${x.pid} (${x.what})`).join(', ')}`,
        );
        return 1;
      }
      return 0;
    }
    case 'fail':
    case 'recover':
    case 'partition':
    case 'heal': {
      const s = loadState(stateDir);
      const id = p.positionals[0];
      if (!id) throw usageError(`sim ${verb} needs a node id`, usage);
      const f = failover;
      const t0 = Date.now();
      if (verb === 'fail') {
        const r = await f.fail(s, id);
        io.out(`${id}: failed — agent ${r.killed ? 'killed' : 'was not running'}, links cut: ${r.cut.join(', ')}`);
      } else if (verb === 'recover') {
        const r = await f.recover(s, id);
        io.out(
          `${id}: recovered in ${((Date.now() - t0) / 1000).toFixed(1)} s — agent running${r.removed.length ? `, removed gateways it no longer holds: ${r.removed.join(', ')}` : ''}, links restored`,
        );
      } else if (verb === 'partition') {
        await f.partition(s, id);
        io.out(
          `${id}: cut from the server (its relay on 127.0.0.1:${s.nodes.find((n) => n.id === id)!.relayPort} stopped); the data plane stays connected`,
        );
      } else {
        await f.heal(s, id);
        io.out(`${id}: reaches the server again`);
      }
      return 0;
    }
    case 'cut-vrrp':
    case 'heal-vrrp': {
      const s = loadState(stateDir);
      const [a, b] = p.positionals;
      if (verb === 'cut-vrrp') {
        if (!a || !b || p.positionals.length !== 2) throw usageError('sim cut-vrrp needs two node ids', usage);
        await failover.cutVrrp(s, a, b);
        io.out(
          `VRRP between ${a} and ${b} dropped on the segment; everything else passes (sim heal-vrrp ${a} ${b} undoes it)`,
        );
      } else {
        if (p.positionals.length !== 0 && p.positionals.length !== 2)
          throw usageError('sim heal-vrrp takes two node ids, or none for every cut', usage);
        const healed = await failover.healVrrp(s, a, b);
        io.out(
          healed.length
            ? `VRRP passes again between ${healed.map((x) => x.join(' and ')).join(', ')}`
            : 'no VRRP cut to heal',
        );
      }
      return 0;
    }
    case 'relay': {
      // Internal: a node's relay to the server (sim up starts one per node). MARKER PORT TARGET.
      const [, port, target] = p.positionals;
      await daemons.runRelay(Number(port), target!);
      return 0;
    }
    case 'serve': {
      // Internal: the sim's TNoDB server process (sim up starts it detached).
      await daemons.runSimServer(stateDir, (l) => io.out(l));
      return 0;
    }
    default:
      throw usageError(
        verb === undefined ? 'missing verb (up, check, status, exec, down)' : `unknown verb ${q(verb)}`,
        usage,
      );
  }
}

/** Workloads on a standby candidate's copy of an ExitPoint NR: left out of sim check, and why. */
function standbyText(list: readonly string[]): string {
  return `left out (on a standby's copy of an ExitPoint NR, which stays silent until its gateway is VRRP master): ${list.join(', ')}`;
}
