// Stage 2 in the agent daemon (DESIGN.md 8.2), in the style of daemon.test.ts: two candidate
// daemons of one vrrp slot over the in-memory kernel and a clock the test moves.
// until i10-store lands: TNoDB is a stand-in HTTP server here (views with candidates, sealTo,
// sealedKey and learnedEndpoint; node keys, public keys and sealed keys as the contract says);
// then these run against the real server like daemon.test.ts.
// keepalived's side is scripted by the test (Keepalived below): which state, when.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeKernel } from '../kernel/fake.js';
import type { Kernel } from '../kernel/kernel.js';
import { ManualClock } from '../kernel/fake-clock.js';
import { gatewayNamespace, keyFileName, nrNamespace, wgLinkName } from '../core/ownership.js';
import { AgentDaemon } from './daemon.js';
import { publicKeyOf } from './index.js';
import type { NodeConfig } from './config.js';
import type { VrrpKernel } from './vrrp.js';
import { nodeKeyFile } from './node-key.js';

const A = 698;
const EXIT = '1001';
const REMOTE = '1002';
const REMOTE_KEY = 'D+492J9+vzlqyM/VtMRueXVpAjQtOvhx/X2icjkc3gQ=';
const WG = wgLinkName(EXIT, A);
const GW = gatewayNamespace('', 1, A);
const EP_NS = nrNamespace('', EXIT, A);
const dir = mkdtempSync(join(tmpdir(), 'exitnode-vrrp-test-'));
const clock = new ManualClock();

type VState = 'MASTER' | 'BACKUP' | 'FAULT' | 'STOPPED';

type Status = { state: VState; priority: number; since: number };

/**
 * keepalived as the test scripts it: the Kernel's stage-2 methods over one FakeKernel, the rest of
 * the Kernel the fake's own (a Proxy, so that it holds whether or not the fake models VRRP itself).
 */
class Keepalived implements VrrpKernel {
  states = new Map<string, Status>();
  watchers = new Set<() => void>();
  calls: { setLinksUp: { ns: string; dev: string; up: boolean }[][]; kick: string[][]; drain: string[] } = {
    setLinksUp: [],
    kick: [],
    drain: [],
  };
  endpoints = new Map<string, Map<string, string>>();
  readonly kernel: Kernel;

  constructor(readonly fake: FakeKernel) {
    const own = new Set(['vrrpStates', 'watchVrrp', 'vrrpDrain', 'setLinksUp', 'wgKick', 'wgEndpoints']);
    this.kernel = new Proxy(fake, {
      get: (t, p) => {
        const v: unknown = own.has(String(p)) ? Reflect.get(this, p) : Reflect.get(t, p);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(own.has(String(p)) ? this : t) : v;
      },
    });
  }
  vrrpStates(): Map<string, Status> {
    return new Map(this.states);
  }
  watchVrrp(_stateDir: string, onChange: (states: Map<string, Status>) => void): () => void {
    const w = (): void => onChange(this.vrrpStates());
    this.watchers.add(w);
    return () => this.watchers.delete(w);
  }
  async vrrpDrain(_stateDir: string, ns: string): Promise<void> {
    this.calls.drain.push(ns);
  }
  async setLinksUp(items: readonly { ns: string; dev: string; up: boolean }[]): Promise<void> {
    this.calls.setLinksUp.push([...items]);
    for (const i of items) this.fake.ip(i.ns, `link set ${i.dev} ${i.up ? 'up' : 'down'}`);
  }
  async wgKick(names: readonly string[]): Promise<void> {
    this.calls.kick.push([...names]);
  }
  async wgEndpoints(names: readonly string[]): Promise<Map<string, Map<string, string>>> {
    return new Map(names.filter((n) => this.endpoints.has(n)).map((n) => [n, this.endpoints.get(n)!]));
  }
  /** keepalived's notify: the state file changes. */
  notify(ns: string, state: VState, priority: number): void {
    this.states.set(ns, { state, priority, since: clock.now() });
    for (const w of this.watchers) w();
  }
}

/** until i10-store lands: the TNoDB side of stage 2 for one slot with candidates v1, v2. */
class StandIn {
  server!: Server;
  url = '';
  version = 1;
  down = false;
  nodeKeys: Record<string, string> = {};
  exitKey?: string;
  keyPublishers: string[] = [];
  sealed: Record<string, string> = {};
  learned?: string;
  stepDown = new Set<string>();
  beats: Record<string, Record<string, unknown>[]> = { v1: [], v2: [] };
  private waiters: (() => void)[] = [];

  cands = ['v1', 'v2'];

  view(node: string): Record<string, unknown> {
    const cands = this.cands;
    const mine = cands.includes(node);
    return {
      version: this.version,
      node: { id: node, publicIPv4: node === 'v1' ? '192.0.2.1' : '192.0.2.2' },
      allocations: [
        {
          number: A,
          prefix: '2001:db8:60::/48',
          upstream: { ll: 'fe80::1', ipv4Gateway: '198.51.100.1', ipv4PrefixLength: 24 },
        },
      ],
      slots: (mine ? [0] : []).map(() => ({
        allocation: A,
        slot: 1,
        epoch: 1,
        ipv4: '198.51.100.11',
        candidates: cands,
        priority: node === 'v1' ? 250 : 200,
        ...(this.stepDown.has(node) ? { stepDown: true } : {}),
      })),
      sealTo: Object.entries(this.nodeKeys)
        .filter(([n]) => n !== node)
        .map(([n, key]) => ({ node: n, key })),
      networks: (mine ? [0] : []).map(() => ({
        id: 'net1',
        allocation: A,
        exit: EXIT,
        resources: [
          {
            id: EXIT,
            node: cands[0],
            endpoint: '198.51.100.11:4097',
            ...(this.exitKey ? { publicKey: this.exitKey } : {}),
            ...(this.sealed[node] ? { sealedKey: this.sealed[node] } : {}),
          },
          {
            id: REMOTE,
            node: 'v3',
            publicKey: REMOTE_KEY,
            ...(this.learned ? { learnedEndpoint: this.learned } : {}),
          },
        ],
      })),
    };
  }

  bump(): void {
    this.version++;
    for (const w of this.waiters.splice(0)) w();
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => void this.answer(req.method!, req.url!, body ? JSON.parse(body) : undefined, req, res));
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    const a = this.server.address();
    this.url = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  }

  private async answer(
    method: string,
    url: string,
    body: Record<string, unknown> | undefined,
    req: { headers: Record<string, unknown> },
    res: import('node:http').ServerResponse,
  ): Promise<void> {
    const send = (code: number, v?: unknown): void => {
      res.writeHead(code, { 'content-type': 'application/json' }).end(v === undefined ? '' : JSON.stringify(v));
    };
    if (this.down) return send(503, { error: { code: 'DOWN', message: 'stand-in outage' } });
    const node = String(req.headers.authorization).replace('Bearer ', '');
    const u = new URL(url, 'http://x');
    let m: RegExpExecArray | null;
    if (method === 'GET' && (m = /^\/v1\/nodes\/([^/]+)\/view$/.exec(u.pathname))) {
      const afterV = u.searchParams.get('after');
      if (afterV !== null && Number(afterV) >= this.version)
        await new Promise<void>((r) => {
          this.waiters.push(r);
          setTimeout(r, 200);
        });
      return send(200, this.view(m[1]!));
    }
    if (method === 'POST' && /\/heartbeat$/.test(u.pathname)) {
      this.beats[node]?.push(body ?? {});
      const eps = (body?.endpoints as { endpoint: string }[] | undefined) ?? [];
      if (eps[0] && eps[0].endpoint !== this.learned) {
        this.learned = eps[0].endpoint;
        this.bump();
      }
      return send(200, { slots: [], now: clock.now() });
    }
    if (method === 'POST' && /\/report$/.test(u.pathname)) return send(204);
    if (method === 'PUT' && (m = /^\/v1\/nodes\/([^/]+)\/node-key$/.exec(u.pathname))) {
      this.nodeKeys[m[1]!] = String(body!.publicKey);
      this.bump();
      return send(204);
    }
    if (method === 'PUT' && /\/resources\/1001\/key$/.test(u.pathname)) {
      this.keyPublishers.push(node);
      this.exitKey = String(body!.publicKey);
      this.bump();
      return send(204);
    }
    if (method === 'PUT' && /\/resources\/1001\/sealed$/.test(u.pathname)) {
      if (node !== 'v1') return send(403, { error: { code: 'FORBIDDEN', message: 'not the exit NR node' } });
      for (const k of body!.keys as { node: string; sealed: string }[]) this.sealed[k.node] = k.sealed;
      this.bump();
      return send(204);
    }
    send(404, { error: { code: 'NOT_FOUND', message: `${method} ${url}` } });
  }
}

const tnodb = new StandIn();

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

function nodeKernel(): Keepalived {
  const k = new FakeKernel({ now: () => clock.now() });
  k.ip('', 'netns add upstream');
  k.cable({ ns: '', name: 'eth1' }, { ns: 'upstream', name: 'up0' });
  k.ip('upstream', 'link set up0 up', 'addr add fe80::1/64 dev up0 nodad', 'addr add 198.51.100.1/24 dev up0');
  return new Keepalived(k);
}

const exitPriv = (k: FakeKernel, node: string): string | undefined =>
  k.privateKeys(config(node).stateDir, [{ name: WG, keyFile: keyFileName(WG) }]).get(WG);

async function peers(
  k: FakeKernel,
  node: string,
): Promise<{ publicKey: string; endpoint?: string; keepalive?: number }[]> {
  const a = await k.observe(
    { node, namespacePrefix: '', namespaces: [], wireguard: [] },
    { namespacePrefix: '', stateDir: config(node).stateDir, kernelWireguard: false },
  );
  return a.wireguard.get(WG)?.peers ?? [];
}

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

before(() => tnodb.start());
after(async () => {
  tnodb.server.closeAllConnections();
  await new Promise((r) => tnodb.server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

/** The two candidates' kernels: they outlive the daemons (a restart finds what the last one built). */
let kernels: { v1: Keepalived; v2: Keepalived };

test('two candidates: node keys, one shared sealed ExitPoint key, VRRP master/backup, endpoints, outage, stepDown', async () => {
  kernels = { v1: nodeKernel(), v2: nodeKernel() };
  const lines: string[] = [];
  const events = (node: string, e: string): Record<string, unknown>[] =>
    lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.node === node && l.event === e);
  const ds = (['v1', 'v2'] as const).map(
    (n) =>
      new AgentDaemon({
        config: config(n),
        server: tnodb.url,
        token: n,
        kernel: kernels[n].kernel,
        clock,
        metrics: '127.0.0.1:0',
        heartbeatMs: 200,
        waitS: 1,
        healthCheck: false,
        log: (l) => lines.push(l),
      }),
  );
  const [d1, d2] = ds as [AgentDaemon, AgentDaemon];
  try {
    // v2 starts first: with no sealed key yet it leaves the ExitPoint's WireGuard link out and
    // never makes a key of its own.
    await d2.start();
    await until('v2 passed', () => d2.state.lastPass !== undefined || undefined);
    assert.equal(exitPriv(kernels.v2.fake, 'v2'), undefined, 'no exit key of its own on the second candidate');
    assert.ok(kernels.v2.fake.namespaceExists(EP_NS), 'the ExitPoint namespace is built all the same');
    assert.ok(kernels.v2.fake.namespaceExists(GW), 'and the gateway');
    await d1.start();
    for (const n of ['v1', 'v2']) {
      await until(`${n} node key published`, () => tnodb.nodeKeys[n]);
      assert.equal((statSync(nodeKeyFile(config(n).stateDir)).mode & 0o777).toString(8), '600');
    }
    // v1 (first) generates, publishes and seals; v2 opens the sealed key: one key on both.
    await until('exit key published', () => tnodb.exitKey);
    await until('sealed to v2', () => tnodb.sealed.v2);
    const k2 = await until('v2 wrote the sealed key', () => exitPriv(kernels.v2.fake, 'v2'));
    assert.equal(k2, exitPriv(kernels.v1.fake, 'v1'), 'both candidates hold the same ExitPoint key');
    assert.equal(publicKeyOf(k2), tnodb.exitKey);
    assert.deepEqual(tnodb.keyPublishers, ['v1'], 'only the first candidate publishes the exit key');
    assert.equal(events('v2', 'key.unsealed').length, 1);
    const p2 = await until('v2 configured the ExitPoint', async () => {
      const p = await peers(kernels.v2.fake, 'v2');
      return p.length ? p : undefined;
    });
    assert.deepEqual(
      p2.map((p) => [p.publicKey, p.keepalive]),
      [[REMOTE_KEY, 25]],
      'every peer of a floating ExitPoint gets a keepalive',
    );

    // keepalived: v1 MASTER, v2 BACKUP. The links switch at once, the master kicks a handshake.
    kernels.v1.notify(GW, 'MASTER', 250);
    kernels.v2.notify(GW, 'BACKUP', 200);
    await until('v1 links up', () => kernels.v1.calls.setLinksUp.length > 0 || undefined);
    assert.deepEqual(kernels.v1.calls.setLinksUp.at(-1), [{ ns: EP_NS, dev: WG, up: true }]);
    assert.deepEqual(kernels.v1.calls.kick.at(-1), [WG]);
    await until('v2 links down', () => kernels.v2.calls.setLinksUp.length > 0 || undefined);
    assert.deepEqual(kernels.v2.calls.setLinksUp.at(-1), [{ ns: EP_NS, dev: WG, up: false }]);
    assert.equal(kernels.v2.calls.kick.length, 0, 'a backup never kicks');
    const t = events('v1', 'vrrp.transition').at(-1)!;
    assert.equal(t.to, 'MASTER');
    assert.equal(typeof t.notifyToLinksMs, 'number', 'the log line has the time from notify to links up');

    // The master reports its state and the endpoints its ExitPoints learnt; v2's next view has it.
    kernels.v1.endpoints.set(WG, new Map([[REMOTE_KEY, '203.0.113.9:40000']]));
    await until(
      'v1 heartbeat with endpoints',
      () => tnodb.beats.v1!.some((b) => (b.endpoints as unknown[] | undefined)?.length) || undefined,
    );
    const beat = tnodb.beats.v1!.filter((b) => b.endpoints).at(-1)!;
    assert.deepEqual(beat.endpoints, [{ network: 'net1', nr: REMOTE, endpoint: '203.0.113.9:40000' }]);
    assert.deepEqual(
      (beat.vrrp as Record<string, unknown>[]).map((v) => [v.allocation, v.slot, v.state, v.priority]),
      [[A, 1, 'MASTER', 250]],
    );
    await until(
      'v2 uses the learned endpoint',
      async () => (await peers(kernels.v2.fake, 'v2')).some((p) => p.endpoint === '203.0.113.9:40000') || undefined,
    );
    assert.ok(
      tnodb.beats.v2!.some((b) => (b.vrrp as { state: string }[] | undefined)?.[0]?.state === 'BACKUP'),
      'the backup reports its state too',
    );
    assert.ok(!tnodb.beats.v2!.some((b) => b.endpoints), 'only the master reports endpoints');

    // /healthz and /metrics show each candidate slot's state.
    const h = (await (await fetch(`${d1.metricsUrl}/healthz`)).json()) as { vrrp: Record<string, unknown>[] };
    assert.deepEqual(
      h.vrrp.map((v) => [v.slot, v.state, v.priority]),
      [[`${A}/1`, 'MASTER', 250]],
    );
    const m = await (await fetch(`${d2.metricsUrl}/metrics`)).text();
    assert.match(m, new RegExp(`^exitnode_agent_vrrp_state\\{allocation="${A}",slot="1",state="BACKUP"\\} 1$`, 'm'));
    assert.match(m, new RegExp(`^exitnode_agent_vrrp_state\\{allocation="${A}",slot="1",state="MASTER"\\} 0$`, 'm'));

    // A TNoDB outage far longer than any lease: nothing is fenced, the gateway stays.
    tnodb.down = true;
    const t0 = clock.now();
    await until('a long outage', () => clock.now() - t0 > 12_000 || undefined, 30_000);
    assert.equal(events('v1', 'slot.fenced').length, 0, 'a vrrp slot is never fenced by its lease');
    assert.ok(kernels.v1.fake.namespaceExists(GW) && kernels.v2.fake.namespaceExists(GW));
    assert.equal(d1.state.served.size, 1);
    tnodb.down = false;

    // Dual master resolved by TNoDB: stepDown → priority 0 once; a BACKUP afterwards.
    tnodb.stepDown.add('v1');
    tnodb.bump();
    await until('v1 drained', () => kernels.v1.calls.drain.length > 0 || undefined);
    for (let i = 0; i < 10; i++) await clock.advance(200);
    assert.deepEqual(kernels.v1.calls.drain, [GW], 'drained once');
    kernels.v1.notify(GW, 'BACKUP', 0);
    kernels.v2.notify(GW, 'MASTER', 200);
    await until('v2 links up', () => kernels.v2.calls.setLinksUp.at(-1)?.[0]?.up || undefined);
    await until('v1 links down', () => kernels.v1.calls.setLinksUp.at(-1)?.[0]?.up === false || undefined);
    assert.deepEqual(tnodb.keyPublishers, ['v1'], 'a promotion publishes no key');
  } finally {
    for (const d of ds) await d.stop();
  }
});

test("a restarted master's first pass already knows it is master: its ExitPoint links are never switched down", async () => {
  const k = kernels.v2;
  assert.equal(k.states.get(GW)?.state, 'MASTER', 'v2 is master since the first test');
  k.calls.setLinksUp.length = 0;
  const lines: string[] = [];
  const d = new AgentDaemon({
    config: config('v2'),
    server: tnodb.url,
    token: 'v2',
    kernel: k.kernel,
    clock,
    heartbeatMs: 200,
    waitS: 1,
    healthCheck: false,
    log: (l) => lines.push(l),
  });
  try {
    await d.start();
    await until('the saved view applied', () => d.passCount() > 0 || undefined);
    for (let i = 0; i < 10; i++) await clock.advance(100);
    const first = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.event === 'vrrp.state');
    assert.equal(first?.state, 'MASTER', "keepalived's state taken before the first pass");
    assert.ok(
      k.calls.setLinksUp.every((c) => c.every((x) => x.up)),
      'no switch down of the links on a restart of the master',
    );
    assert.ok(
      !lines.some((l) => (JSON.parse(l) as { event: string }).event === 'vrrp.transition'),
      'no transition: nothing changed',
    );
  } finally {
    await d.stop();
  }
});

test('a candidate the view no longer lists gives the slot up: gateway and ExitPoint removed', async () => {
  const k = kernels.v1;
  const lines: string[] = [];
  const d = new AgentDaemon({
    config: config('v1'),
    server: tnodb.url,
    token: 'v1',
    kernel: k.kernel,
    clock,
    heartbeatMs: 200,
    waitS: 1,
    healthCheck: false,
    log: (l) => lines.push(l),
  });
  try {
    await d.start();
    await until('serving the slot', () => d.state.served.size === 1 || undefined);
    tnodb.cands = ['v2'];
    tnodb.bump();
    await until('gateway removed', () => (!k.fake.namespaceExists(GW) && !k.fake.namespaceExists(EP_NS)) || undefined);
    // The pass of the new view may remove it before the fence timer looks; a fence, if any, says why.
    const f = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.event === 'slot.fenced');
    for (const x of f) assert.equal(x.reason, 'no longer a candidate (the view leaves the slot out)');
    assert.equal(exitPriv(k.fake, 'v1'), undefined, 'no key file left behind');
  } finally {
    await d.stop();
    tnodb.cands = ['v1', 'v2'];
  }
});
