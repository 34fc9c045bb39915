// The agent's own HTTP endpoint: GET /healthz (the daemon's state as JSON; 200 when the applied
// view is the newest and healthy, else 503) and GET /metrics (Prometheus text). Its address goes
// into STATE/agent.json, where `exitnode agent status` and the simulation find it.

import { createServer, type Server } from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExitnodeError, q } from '../core/errors.js';
import type { AgentContext } from './context.js';
import { AgentErrors } from './errors.js';
import { slotKey } from './slot.js';

/** The /healthz document. */
export function healthReport(ctx: AgentContext): Record<string, unknown> {
  const s = ctx.state;
  const ok =
    s.appliedVersion !== undefined &&
    s.appliedVersion === s.view?.version &&
    !s.lastPass?.failures.length &&
    s.health.values().every((h) => h.healthy) &&
    s.vrrp.values().every((v) => v.state !== 'FAULT');
  return {
    status: ok ? 'ok' : 'degraded',
    node: s.node,
    pid: process.pid,
    appliedVersion: s.appliedVersion ?? null,
    viewVersion: s.view?.version ?? null,
    viewSource: s.viewSource ?? null,
    appliedAt: s.appliedAt ?? null,
    serverReachable: s.serverReachable,
    lastServerContact: s.lastServerContact ?? null,
    lastPass: s.lastPass ?? null,
    leases: s.leases,
    lastHeartbeatOk: s.lastHeartbeatOk ?? null,
    servedSlots: s.view ? ctx.servable(s.view).slots : [],
    slots: s.leases.map((l) => ({
      slot: slotKey(l),
      epoch: l.epoch,
      served: s.served.has(l),
      deadlineInMs: l.deadline !== undefined ? l.deadline - ctx.clock.now() : null,
      health: s.health.get(l) ?? null,
      ...(l.movingTo ? { movingTo: l.movingTo } : {}),
      ...(s.released.get(l) !== undefined ? { released: true } : {}),
    })),
    fenced: s.fenced.toJSON(),
    // Stage 2: keepalived's state of each candidate slot's gateway.
    vrrp: s.vrrp.entries().map(([ref, v]) => ({
      slot: slotKey(ref),
      state: v.state,
      priority: v.priority,
      since: v.since || null,
      seenAt: v.at,
      notifyToLinksMs: v.linksMs ?? null,
      exitLinks: v.links,
      ...(v.drained ? { stepDown: true } : {}),
    })),
  };
}

/** Listens on ADDR (HOST:PORT; port 0 picks one) and writes STATE/agent.json; resolves with the URL. */
export async function listen(ctx: AgentContext, addr: string): Promise<{ server: Server; url: string }> {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(addr);
  if (!m || Number(m[3]) > 65535)
    throw new ExitnodeError(AgentErrors.CONFIG_INVALID, `--metrics ${q(addr)} must be HOST:PORT (e.g. 127.0.0.1:9464)`);
  const host = m[1] ?? m[2]!;
  const server = createServer((req, res) => {
    if (req.url === '/healthz') {
      const h = healthReport(ctx);
      res
        .writeHead(h.status === 'ok' ? 200 : 503, { 'content-type': 'application/json' })
        .end(JSON.stringify(h) + '\n');
    } else if (req.url === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(ctx.metrics.text());
    } else res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: /healthz, /metrics\n');
  });
  await new Promise<void>((res, rej) => {
    server.once('error', (e) =>
      rej(
        new ExitnodeError(
          AgentErrors.CONFIG_INVALID,
          `cannot listen on --metrics ${q(addr)}: ${(e as NodeJS.ErrnoException).code ?? e.message}`,
        ),
      ),
    );
    server.listen(Number(m[3]), host, () => res());
  });
  const a = server.address();
  const port = typeof a === 'object' && a ? a.port : Number(m[3]);
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  mkdirSync(ctx.config.stateDir, { recursive: true, mode: 0o700 });
  writeFileSync(
    join(ctx.config.stateDir, 'agent.json'),
    JSON.stringify({ pid: process.pid, node: ctx.config.node, metrics: url, server: ctx.server }) + '\n',
    { mode: 0o600 },
  );
  return { server, url };
}
