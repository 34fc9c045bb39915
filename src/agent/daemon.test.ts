// The agent daemon against the real TNoDB server (in-process, PGlite in a temporary directory),
// with a fake kernel pass in place of applyView (the real one runs in test/netns/sim.root.test.ts):
// long-poll → pass → key publication → the other node's view gets the key; heartbeats → leases;
// /healthz and /metrics; the SlotPolicy hook decides the slots a pass is given; bad flags.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../server/index.js';
import { TnodbClient } from '../client/index.js';
import type { NodeView } from '../core/view.js';
import type { DesiredState } from '../compile/desired.js';
import { AgentDaemon, type SlotPolicy } from './daemon.js';
import type { PassResult } from './index.js';
import type { NodeConfig } from './config.js';
import { runVerb } from './daemon-cli.js';

const A = 699;
const ADMIN = 'xn_daemon-test-admin-token-000000000000000';
const dir = mkdtempSync(join(tmpdir(), 'exitnode-daemon-test-'));
let srv: RunningServer;
const tokens: Record<string, string> = {};
let network = '';

const keyOf = (name: string): string => Buffer.alloc(32, name).toString('base64');

function fakeApply(seen: NodeView[]): (v: NodeView, c: NodeConfig) => Promise<PassResult> {
  return async (v, c) => {
    seen.push(v);
    const publicKeys: Record<string, string> = {};
    for (const n of v.networks)
      for (const r of n.resources) if (r.node === c.node) publicKeys[`wg-${r.id}-${n.allocation}`] = keyOf(`${r.id}`);
    const desired: DesiredState = {
      node: c.node,
      namespacePrefix: c.namespacePrefix,
      namespaces: [],
      wireguard: [],
    } as unknown as DesiredState;
    return {
      version: v.version,
      plan: { steps: [] },
      size: 0,
      dryRun: false,
      failures: [],
      desired,
      observed: true,
      publicKeys,
      timings: { compileMs: 0, observeMs: 0, diffMs: 0, applyMs: 0 },
    };
  };
}

function config(node: string): NodeConfig {
  return {
    node,
    namespacePrefix: '',
    rootNamespace: '',
    publicNamespace: '',
    stateDir: join(dir, node),
    uplink: { kind: 'nic', device: 'eth1' },
    wireguard: 'none',
  };
}

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 15000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) assert.fail(`${what}: not after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

before(async () => {
  srv = await startServer({
    data: join(dir, 'server'),
    listen: '127.0.0.1:0',
    adminToken: ADMIN,
    noTokenFile: true,
    logger: false,
  });
  const admin = new TnodbClient({ server: srv.url, token: ADMIN });
  const farm = admin.as((await admin.createFarm('xd')).token);
  await farm.addAllocation({
    farm: 'xd',
    prefix: '2001:db8:5f::/48',
    number: A,
    ipv4: { addresses: ['198.51.100.11'], prefixLength: 24, gateway: '198.51.100.1' },
  });
  tokens.g1 = (await farm.addNode({ farm: 'xd', id: 'xd-g1', publicIPv4: '192.0.2.1', exitCapable: true })).token;
  tokens.w1 = (await farm.addNode({ farm: 'xd', id: 'xd-w1', publicIPv4: '192.0.2.2', exitCapable: false })).token;
  await farm.assignSlot(A, 1, 'xd-g1');
  await admin.as(tokens.g1).heartbeat('xd-g1');
  const tenant = admin.as((await admin.createTenant('xd-t')).token);
  network = (await tenant.createNetwork('net', A)).id;
  await tenant.addResource(network, 'xd-w1');
});

after(async () => {
  // Keep-alive sockets of this process's own fetch would hold the server open for its 72 s keep-alive timeout.
  const closing = srv?.close();
  srv?.app.server.closeAllConnections();
  await closing;
  rmSync(dir, { recursive: true, force: true });
});

test("two daemons: each applies its view, publishes its NR key, and sees the other's key in its next view", async () => {
  const seen: Record<string, NodeView[]> = { g1: [], w1: [] };
  const lines: string[] = [];
  const ds = (['g1', 'w1'] as const).map(
    (n) =>
      new AgentDaemon({
        config: config(`xd-${n}`),
        server: srv.url,
        token: tokens[n]!,
        metrics: '127.0.0.1:0',
        heartbeatMs: 200,
        apply: fakeApply(seen[n]!),
        log: (l) => lines.push(l),
      }),
  );
  try {
    for (const d of ds) await d.start();
    const admin = new TnodbClient({ server: srv.url, token: ADMIN });
    const net = await until('both keys published', async () => {
      const n = await admin.getNetwork(network);
      return n.resources.every((r) => r.publicKey) ? n : undefined;
    });
    for (const r of net.resources) assert.equal(r.publicKey, keyOf(r.id));
    // Each daemon ends on the server's current version, with every peer key in the view it applied.
    for (const [i, n] of (['xd-g1', 'xd-w1'] as const).entries()) {
      const v = await admin.view(n);
      await until(`${n} applied ${v.version}`, () => ds[i]!.state.appliedVersion === v.version || undefined);
      const last = seen[i === 0 ? 'g1' : 'w1']!.at(-1)!;
      assert.ok(
        last.networks[0]!.resources.every((r) => r.publicKey),
        `${n}'s last pass had every key`,
      );
    }
    const g1 = ds[0]!;
    await until('a lease from the heartbeat', () => g1.state.leases.length > 0 || undefined);
    assert.deepEqual(
      g1.state.leases.map((l) => [l.allocation, l.slot, l.epoch]),
      [[A, 1, 1]],
    );
    const h = (await (await fetch(`${g1.metricsUrl}/healthz`)).json()) as Record<string, unknown>;
    assert.equal(h.status, 'ok');
    assert.equal(h.serverReachable, true);
    assert.equal(h.appliedVersion, g1.state.view!.version);
    const m = await (await fetch(`${g1.metricsUrl}/metrics`)).text();
    assert.match(m, new RegExp(`^exitnode_agent_applied_view_version ${g1.state.view!.version}$`, 'm'));
    assert.match(m, /^exitnode_agent_lease_seconds_left\{allocation="699",epoch="1",slot="1"\} [0-9.]+$/m);
    assert.match(m, /^exitnode_agent_reconcile_seconds_count\{kind="full"\} \d+$/m);
    assert.equal((await fetch(`${g1.metricsUrl}/nope`)).status, 404);
    assert.ok(
      lines.some((l) => JSON.parse(l).event === 'key.published'),
      'a structured log line per published key',
    );
    assert.ok(lines.every((l) => typeof JSON.parse(l).ts === 'string'));
  } finally {
    for (const d of ds) await d.stop();
  }
  assert.equal(existsSync(join(dir, 'xd-g1', 'agent.json')), false, 'a stopped daemon removes its address file');
});

test('the SlotPolicy hook decides which slots a pass is given (the fencing issue plugs in here)', async () => {
  const seen: NodeView[] = [];
  const fenced: SlotPolicy = {
    servable: (v, st) =>
      v.slots.filter((s) =>
        st.leases.some((l) => l.slot === s.slot && l.epoch === s.epoch && l.expiresAt > Date.now() + 60_000),
      ),
  };
  const d = new AgentDaemon({
    config: config('xd-g1'),
    server: srv.url,
    token: tokens.g1!,
    heartbeatMs: 200,
    apply: fakeApply(seen),
    policy: fenced,
    log: () => undefined,
  });
  try {
    await d.start();
    await until('a pass', () => seen.length > 0 || undefined);
    assert.equal(d.state.view!.slots.length, 1, 'the view lists slot 1');
    assert.deepEqual(seen.at(-1)!.slots, [], 'the policy withheld it: its lease has less than 60 s left');
  } finally {
    await d.stop();
  }
});

test('agent run: bad flags are one line and exit 2 (usage errors), never a stack trace', async () => {
  const cfg = join(dir, 'cfg.json');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(cfg, JSON.stringify(config('xd-g1')));
  const io = { out: () => undefined, err: () => undefined };
  for (const [args, re] of [
    [['--config', cfg, '--server', 'ftp://x', '--token', 't'], /--server "ftp:\/\/x" is not an http\(s\) URL/],
    [['--config', cfg, '--server', srv.url], /--token TOKEN or --token-file FILE/],
    [
      ['--config', cfg, '--server', srv.url, '--token', 't', '--resync', '0'],
      /--resync "0" must be a number of seconds > 0/,
    ],
  ] as const) {
    await assert.rejects(
      runVerb('run', [...args], io),
      (e: Error & { kind?: string }) => re.test(e.message) && e.kind === 'input',
    );
  }
  const d = new AgentDaemon({
    config: config('xd-g1'),
    server: srv.url,
    token: tokens.g1!,
    metrics: 'nope',
    log: () => undefined,
  });
  await assert.rejects(d.start(), /--metrics "nope" must be HOST:PORT/);
  await d.stop();
});
