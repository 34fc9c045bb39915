// The simulated farm's long-running members: the TNoDB server, one agent per node and, in front of
// each agent, its own relay to the server. Started and stopped here (through src/sim/procs.ts);
// `sim up|down` (farm.ts) and `sim fail|recover|partition|heal` (failover.ts) both use them.
//
// All agents run on the host and reach the server over its loopback, so a node cannot be cut from
// the server by its namespaces. Each node's agent talks instead to its own relay (`exitnode sim
// relay NODE`: a TCP forwarder on a loopback port of its own, recorded in the sim state); killing
// the relay is the partition (connections refused at once), starting it again on the same port
// heals it.
//
// Each agent runs in a mount namespace of its own, with the node's socket directory (STATE/wg/NODE)
// bound on /var/run/wireguard (procs.ts withWgDir): its wireguard-go processes, and its `wg`
// commands, see that node's sockets only. The directory stays across agent restarts and goes with
// `sim down`; anything else that runs `wg` for a node does it through wgCommand.

import { createConnection, createServer } from 'node:net';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ExitnodeError, q } from '../core/errors.js';
import { TnodbClient } from '../client/index.js';
import { SimErrors } from './errors.js';
import { alive, freePort, isOurs, startDetached, stopPid, tail, waitFor, withWgDir } from './procs.js';
import { agentServerUrl, loadState, readToken, saveState, type SimNodeState, type SimState } from './state.js';

export function adminClient(s: SimState): TnodbClient {
  return new TnodbClient({ server: s.server.url, token: readToken(s.server.adminTokenFile) });
}

export function nodeOf(s: SimState, id: string): SimNodeState {
  const n = s.nodes.find((x) => x.id === id);
  if (!n)
    throw new ExitnodeError(
      SimErrors.SIM_UNKNOWN_HOST,
      `no node ${q(id)}; nodes: ${s.nodes.map((x) => x.id).join(', ')}`,
    );
  return n;
}

export async function startServer(s: SimState): Promise<void> {
  if (s.server.pid && isOurs(s.server.pid, s.stateDir) && alive(s.server.pid)) return;
  s.server.pid = startDetached(['sim', 'serve', '--state', s.stateDir], s.server.logFile);
  saveState(s);
  const c = new TnodbClient({ server: s.server.url, timeoutMs: 1000 });
  await waitFor('the TNoDB server to answer', 30_000, async () => {
    if (!alive(s.server.pid!))
      throw new ExitnodeError(
        SimErrors.SIM_PROCESS,
        `the server exited; its log ${s.server.logFile}:\n${tail(s.server.logFile)}`,
      );
    return c.health().then(
      () => true,
      () => undefined,
    );
  });
}

export async function stopServer(s: SimState, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<boolean> {
  const was = await stopPid(s.server.pid, s.stateDir, signal);
  delete s.server.pid;
  saveState(s);
  return was;
}

/**
 * The sim's TNoDB server process itself (`exitnode sim serve`, started by startServer): serves
 * until SIGTERM or SIGINT. SAY gets the line that says where it listens.
 */
export async function runSimServer(stateDir: string, say: (line: string) => void): Promise<void> {
  const s = loadState(stateDir);
  // Loaded here, not at the top: the server (fastify, the store) is only needed by this process.
  const { startServer: startTnodb } = await import('../server/index.js');
  // The store's default timers (lease TTL 5 s) and a 1 s fencing margin, as a farm runs them;
  // EXITNODE_SIM_LEASE_TTL_MS and EXITNODE_SIM_SERVER_MARGIN_MS override them (faster failover
  // figures). A restarted server moves no slot for one TTL plus the margin (store start-up grace).
  const num = (name: string, def?: number): number | undefined => (process.env[name] ? Number(process.env[name]) : def);
  const srv = await startTnodb({
    data: s.server.dataDir,
    listen: s.server.listen,
    logger: false,
    leaseTtlMs: num('EXITNODE_SIM_LEASE_TTL_MS'),
    fenceMarginMs: num('EXITNODE_SIM_SERVER_MARGIN_MS', 1000),
  });
  say(`exitnode sim server listening on ${srv.url}`);
  await untilTerminated();
  // Agents hold keep-alive connections (and long-polls): drop them, or close() waits for
  // the 72 s keep-alive timeout.
  const closing = srv.close();
  srv.app.server.closeAllConnections();
  await closing;
}

function untilTerminated(): Promise<void> {
  return new Promise<void>((res) => {
    process.once('SIGTERM', res);
    process.once('SIGINT', res);
  });
}

export function startAgent(s: SimState, id: string): void {
  const n = nodeOf(s, id);
  if (n.pid && isOurs(n.pid, n.configFile) && alive(n.pid)) return;
  rmSync(join(n.stateDir, 'agent.json'), { force: true });
  if (n.wgDir) mkdirSync(n.wgDir, { recursive: true, mode: 0o700 });
  const env = (name: string, flag: string): string[] => (process.env[name] ? [flag, process.env[name]!] : []);
  n.pid = startDetached(
    [
      'agent',
      'run',
      '--config',
      n.configFile,
      '--server',
      agentServerUrl(s, n),
      '--token-file',
      n.tokenFile,
      '--metrics',
      '127.0.0.1:0',
      ...env('EXITNODE_SIM_RESYNC', '--resync'),
      ...env('EXITNODE_SIM_HEARTBEAT', '--heartbeat'),
      ...env('EXITNODE_SIM_FENCE_MARGIN', '--fence-margin'),
    ],
    n.logFile,
    n.wgDir ? { wgDir: n.wgDir } : {},
  );
  saveState(s);
}

export async function stopAgent(s: SimState, id: string, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<boolean> {
  const n = nodeOf(s, id);
  const was = await stopPid(n.pid, n.configFile, signal);
  delete n.pid;
  saveState(s);
  return was;
}

/** argv that runs a `wg` (or any) command ARGV with node N's wireguard-go sockets in view. */
export function wgCommand(n: Pick<SimNodeState, 'wgDir'>, argv: string[]): string[] {
  return n.wgDir ? withWgDir(n.wgDir, argv) : argv;
}

/** The running agent's /healthz (from the metrics address it wrote into its state directory). */
export async function agentHealth(stateDir: string): Promise<Record<string, unknown> | undefined> {
  try {
    const { metrics } = JSON.parse(readFileSync(join(stateDir, 'agent.json'), 'utf8')) as { metrics: string };
    const r = await fetch(`${metrics}/healthz`, { signal: AbortSignal.timeout(1500) });
    return (await r.json()) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** The marker on a relay's command line: which node, which farm. */
export function relayMarker(s: SimState, n: SimNodeState): string {
  return `relay-${n.id}@${s.stateDir}`;
}

export async function startRelay(s: SimState, id: string): Promise<void> {
  const n = nodeOf(s, id);
  if (n.relayPid && isOurs(n.relayPid, relayMarker(s, n)) && alive(n.relayPid)) return;
  n.relayPort ??= await freePort();
  n.relayPid = startDetached(
    ['sim', 'relay', relayMarker(s, n), String(n.relayPort), s.server.listen],
    join(s.stateDir, 'nodes', `${n.id}.relay.log`),
  );
  saveState(s);
  await waitFor(
    `the relay of ${n.id} to listen`,
    15_000,
    () =>
      new Promise<boolean | undefined>((res) => {
        const c = createConnection({ host: '127.0.0.1', port: n.relayPort! }, () => {
          c.destroy();
          res(true);
        });
        c.on('error', () => res(undefined));
      }),
    50,
  );
}

export async function stopRelay(s: SimState, id: string): Promise<boolean> {
  const n = nodeOf(s, id);
  const was = await stopPid(n.relayPid, relayMarker(s, n), 'SIGKILL');
  delete n.relayPid;
  saveState(s);
  return was;
}

/** The relay process itself: forwards every connection on 127.0.0.1:PORT to TARGET (HOST:PORT). */
export async function runRelay(port: number, target: string): Promise<void> {
  const i = target.lastIndexOf(':');
  const host = target.slice(0, i);
  const tport = Number(target.slice(i + 1));
  const srv = createServer((c) => {
    const u = createConnection({ host, port: tport });
    c.pipe(u).pipe(c);
    const end = (): void => {
      c.destroy();
      u.destroy();
    };
    c.on('error', end);
    u.on('error', end);
    c.on('close', end);
    u.on('close', end);
  });
  await new Promise<void>((res, rej) => {
    srv.once('error', rej);
    srv.listen(port, '127.0.0.1', () => res());
  });
  await untilTerminated();
}
