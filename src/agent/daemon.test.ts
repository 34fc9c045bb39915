// The agent daemon against the real TNoDB server (in-process, PGlite in a temporary directory),
// over the in-memory kernel (src/kernel/fake.ts) and a clock the test moves (src/kernel/fake-clock.ts):
// the daemon's own code runs every pass (compile, observe, diff, apply into the fake), probes the
// upstream through the fake, and fences through it (the real kernel: test/netns/sim.root.test.ts).
// long-poll → pass → key publication → the other node's view gets the key; heartbeats → leases;
// /healthz and /metrics; the SlotPolicy hook decides the slots a pass is given.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../server/index.js';
import { TnodbClient } from '../client/index.js';
import { FakeKernel } from '../kernel/fake.js';
import { ManualClock } from '../kernel/fake-clock.js';
import { gatewayNamespace, gatewayUplinkName, keyFileName, wgLinkName } from '../core/ownership.js';
import { AgentDaemon, type SlotPolicy } from './daemon.js';
import { publicKeyOf } from './index.js';
import type { NodeConfig } from './config.js';

const A = 699;
const ADMIN = 'xn_daemon-test-admin-token-000000000000000';
const dir = mkdtempSync(join(tmpdir(), 'exitnode-daemon-test-'));
let srv: RunningServer;
const tokens: Record<string, string> = {};
let network = '';
const clock = new ManualClock();

function config(node: string): NodeConfig {
  return {
    node,
    namespacePrefix: '',
    rootNamespace: '',
    publicNamespace: '',
    stateDir: join(dir, node),
    uplink: { kind: 'nic', device: 'eth1' },
    wireguard: 'userspace',
  };
}

/** A node's kernel: its uplink NIC eth1 cabled to the upstream router (fe80::1, 198.51.100.1). */
function nodeKernel(): FakeKernel {
  const k = new FakeKernel({ now: () => clock.now() });
  k.ip('', 'netns add upstream');
  k.cable({ ns: '', name: 'eth1' }, { ns: 'upstream', name: 'up0' });
  k.ip('upstream', 'link set up0 up', 'addr add fe80::1/64 dev up0 nodad', 'addr add 198.51.100.1/24 dev up0');
  return k;
}

/** The public key the node's kernel holds for NR ID's interface. */
function nodeKey(k: FakeKernel, node: string, id: string): string | undefined {
  const name = wgLinkName(id, A);
  const key = k.privateKeys(config(node).stateDir, [{ name, keyFile: keyFileName(name) }]).get(name);
  return key === undefined ? undefined : publicKeyOf(key);
}

/** The public keys of the peers of NR ID's WireGuard interface, as the node's kernel holds them. */
async function peerKeys(k: FakeKernel, node: string, id: string): Promise<string[]> {
  const c = config(node);
  const a = await k.observe(
    { node, namespacePrefix: '', namespaces: [], wireguard: [] },
    { namespacePrefix: '', stateDir: c.stateDir, kernelWireguard: false },
  );
  return (a.wireguard.get(wgLinkName(id, A))?.peers ?? []).map((p) => p.publicKey).sort();
}

/** Polls FN while moving the daemons' clock on (20 ms per round), up to MS of real time. */
async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 15000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) assert.fail(`${what}: not after ${ms} ms`);
    await clock.advance(20);
    await new Promise((r) => setTimeout(r, 10));
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
  const kernels = { g1: nodeKernel(), w1: nodeKernel() };
  const lines: string[] = [];
  const ds = (['g1', 'w1'] as const).map(
    (n) =>
      new AgentDaemon({
        config: config(`xd-${n}`),
        server: srv.url,
        token: tokens[n]!,
        kernel: kernels[n],
        clock,
        metrics: '127.0.0.1:0',
        heartbeatMs: 200,
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
    for (const r of net.resources) {
      const k = r.node === 'xd-g1' ? kernels.g1 : kernels.w1;
      assert.equal(r.publicKey, nodeKey(k, r.node, r.id), `the key of ${r.id} is its node's own`);
    }
    // Each daemon ends on the server's current version, with every peer key in the view it applied.
    for (const [i, n] of (['xd-g1', 'xd-w1'] as const).entries()) {
      const v = await admin.view(n);
      await until(`${n} applied ${v.version}`, () => ds[i]!.state.appliedVersion === v.version || undefined);
      const k = i === 0 ? kernels.g1 : kernels.w1;
      for (const r of net.resources.filter((x) => x.node === n))
        assert.deepEqual(
          await peerKeys(k, n, r.id),
          net.resources
            .filter((o) => o.id !== r.id)
            .map((o) => o.publicKey!)
            .sort(),
          `${n}'s last pass had every key`,
        );
    }
    const g1 = ds[0]!;
    await until('a lease from the heartbeat', () => g1.state.leases.length > 0 || undefined);
    assert.deepEqual(
      g1.state.leases.map((l) => [l.allocation, l.slot, l.epoch]),
      [[A, 1, 1]],
    );
    assert.ok(kernels.g1.namespaceExists(gatewayNamespace('', 1, A)), 'g1 built the gateway of its slot');
    await until('a probe round', () => (g1.state.health.values()[0]?.checkedAt ?? 0) > 0 || undefined);
    const h = await until('healthz ok', async () => {
      const x = (await (await fetch(`${g1.metricsUrl}/healthz`)).json()) as Record<string, unknown>;
      return x.status === 'ok' ? x : undefined;
    });
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
  const kernel = nodeKernel();
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
    kernel,
    clock,
    heartbeatMs: 200,
    policy: fenced,
    log: () => undefined,
  });
  try {
    await d.start();
    await until('a pass', () => d.state.lastPass !== undefined || undefined);
    assert.equal(d.state.view!.slots.length, 1, 'the view lists slot 1');
    assert.deepEqual(d.servable(d.state.view!).slots, [], 'the policy withholds it: its lease has less than 60 s left');
    assert.equal(d.state.served.size, 0, 'the pass was given no slot');
    assert.equal(kernel.namespaceExists(gatewayNamespace('', 1, A)), false, 'and built no gateway');
  } finally {
    await d.stop();
  }
});

test('a bad --metrics address is one catalogued error', async () => {
  const d = new AgentDaemon({
    config: config('xd-g1'),
    server: srv.url,
    token: tokens.g1!,
    kernel: nodeKernel(),
    clock,
    metrics: 'nope',
    log: () => undefined,
  });
  await assert.rejects(d.start(), /--metrics "nope" must be HOST:PORT/);
  await d.stop();
});

test('a gateway whose upstream stops answering is given up: unhealthy, released, fenced, removed', async () => {
  const kernel = nodeKernel();
  const lines: string[] = [];
  const events = (e: string) => lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.event === e);
  const d = new AgentDaemon({
    config: config('xd-g1'),
    server: srv.url,
    token: tokens.g1!,
    kernel,
    clock,
    heartbeatMs: 200,
    log: (l) => lines.push(l),
  });
  try {
    const t0 = clock.now();
    await d.start();
    // A verdict needs the uplink out of duplicate address detection (1 s on the fake's clock).
    const gw = gatewayNamespace('', 1, A);
    await until(
      'a probe round after DAD',
      async () =>
        ((await kernel.tentative(gw, gatewayUplinkName(1, A))) === false &&
          (d.state.health.values()[0]?.checkedAt ?? 0) > t0 + 1500) ||
        undefined,
    );
    assert.equal(d.state.health.values()[0]!.healthy, true, 'the upstream answers');
    assert.equal(d.state.health.values()[0]!.fails, 0);
    kernel.ip('upstream', 'link set up0 down');
    await until('the slot fenced', () => events('slot.fenced').length > 0 || undefined);
    const unhealthy = events('slot.unhealthy');
    assert.equal(unhealthy.length, 1);
    assert.match(String(unhealthy[0]!.reason), /does not answer on pub-1-699 \(2 rounds in a row\)/);
    assert.equal(events('slot.fenced')[0]!.reason, 'released (planned move or lost health)');
    await until('the gateway removed', () => !kernel.namespaceExists(gw) || undefined);
    assert.notEqual(await kernel.tentative('', 'eth1'), undefined, 'the NIC went home under its own name');
    await until('the release sent', () => events('slots.released').length > 0 || undefined);
  } finally {
    await d.stop();
  }
});
