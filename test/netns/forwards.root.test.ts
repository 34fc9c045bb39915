// Forwards and the IPv6 inbound policy end to end on the simulated farm (issue 13): 3 nodes (2
// exit-capable), 2 tenants, a real server and real agents. Real listeners (python3 sockets) on a
// workload that sits on a non-exit node, so packets cross the gateway, the ExitPoint and WireGuard:
//   1. GWPubIP4:port from the internet host reaches a TCP and a UDP service, which see the internet
//      host's own address;
//   2. closed policy: an unlisted port is dropped, an allowed one answers, the workload's own
//      outbound connection gets its replies; the other tenant (open) answers on every port;
//   3. stage-1 failover of the slot's holder: forwards and policy hold on the new gateway;
//   4. removing forwards, rules and the network leaves no nft element in the gateway.
// Namespaces "xfw-" (sim prefixes are letters and one "-"; xf- is the failover test's), allocation 813, state /run/exitnode-sim-xfw-test.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { requireRoot } from '../support/root.js';
import { run, inNs } from '../../src/kernel/exec.js';
import { parseNft } from '../../src/kernel/observe.js';
import { loadState, readToken, type SimState } from '../../src/sim/state.js';
import { waitConverged } from '../../src/sim/farm.js';
import { adminClient } from '../../src/sim/daemons.js';
import { fail } from '../../src/sim/failover.js';
import { waitMoved } from '../../src/sim/outage.js';
import { INTERNET4, INTERNET6 } from '../../src/sim/topology.js';
import { TnodbClient } from '../../src/client/index.js';

const STATE = '/run/exitnode-sim-xfw-test';
const P = 'xfw-';
const A = 813;
const cli = (args: string[]): ReturnType<typeof run> => run([process.execPath, 'bin/exitnode.js', ...args]);
const procs: ChildProcess[] = [];

after(async () => {
  for (const p of procs) if (p.pid && p.exitCode === null) p.kill('SIGKILL');
  if (!process.env.XF_KEEP) await cli(['sim', 'down', '--state', STATE, '--ns-prefix', P]);
});

/** TCP and UDP servers on every port given, both families: each answers with the peer's address. */
const SERVER = `
import socket, sys, threading
def peer(a):
    h = a[0]
    return h[7:] if h.startswith('::ffff:') else h
def tcp(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(('::', port)); s.listen(16)
    while True:
        c, a = s.accept(); c.sendall((peer(a) + '\\n').encode()); c.close()
def udp(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(('::', port))
    while True:
        d, a = s.recvfrom(2048); s.sendto((peer(a) + '\\n').encode(), a)
for arg in sys.argv[1:]:
    proto, port = arg.split('/')
    threading.Thread(target=tcp if proto == 'tcp' else udp, args=(int(port),), daemon=True).start()
print('ready', flush=True)
threading.Event().wait()
`;

/** One request: prints what the server answered, or FAIL and why. */
const CLIENT = `
import socket, sys
proto, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
fam = socket.AF_INET6 if ':' in host else socket.AF_INET
try:
    if proto == 'tcp':
        s = socket.create_connection((host, port), timeout=2); print(s.recv(100).decode().strip())
    else:
        s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(2); s.sendto(b'x', (host, port))
        print(s.recvfrom(100)[0].decode().strip())
except Exception as e:
    print('FAIL', type(e).__name__)
`;

async function serve(ns: string, ports: string[]): Promise<void> {
  const p = spawn('ip', ['netns', 'exec', ns, 'python3', '-u', '-c', SERVER, ...ports], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  procs.push(p);
  await new Promise<void>((res, rej) => {
    p.stdout!.once('data', () => res());
    p.once('exit', (c) => rej(new Error(`server in ${ns} exited ${c}`)));
  });
}

async function ask(ns: string, proto: 'tcp' | 'udp', host: string, port: number): Promise<string> {
  return (await run(inNs(ns, ['python3', '-c', CLIENT, proto, host, String(port)]))).stdout.trim();
}

/** Asks until the answer is WANT (the agents apply within a second or so), or fails with the last one. */
async function expect(what: string, fn: () => Promise<string>, want: string | RegExp, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  let got = '';
  for (;;) {
    got = await fn();
    if (typeof want === 'string' ? got === want : want.test(got)) return;
    if (Date.now() > end) assert.fail(`${what}: got ${JSON.stringify(got)}, want ${String(want)}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** The text elements (forwards, closed, allow) in the gateway of slot 1, wherever it is now. */
async function gatewayTexts(s: SimState): Promise<string[]> {
  const holder = (await adminClient(s).getAllocation(A)).slots[0]!.node!;
  const gw = `${s.nodes.find((n) => n.id === holder)!.ns}-gw-1-${A}`;
  const r = await run(inNs(gw, ['nft', '-j', 'list', 'ruleset']));
  assert.equal(r.code, 0, r.stderr);
  return parseNft(r.stdout).flatMap((t) =>
    Object.entries(t.texts ?? {}).flatMap(([set, els]) => els.map((e) => `${set} ${e}`)),
  );
}

test(
  'forwards and the inbound policy on the simulated farm: reach, drop, failover, removal',
  { timeout: 600_000 },
  async (t) => {
    if (!requireRoot(t, ['nft', 'wg', 'wireguard-go', 'python3', 'nsenter'])) return;
    const up = await cli([
      'sim',
      'up',
      '--state',
      STATE,
      '--ns-prefix',
      P,
      '--allocation',
      String(A),
      '--nodes',
      '3',
      '--exit-nodes',
      '2',
      '--tenants',
      '2',
    ]);
    assert.equal(up.code, 0, up.stdout + up.stderr);
    const s = loadState(STATE);
    const inet = `${P}inet`;
    const t1 = s.tenants.find((x) => x.slot === 1)!;
    const t2 = s.tenants.find((x) => x.slot === 2)!;
    const exitNode = s.slots.find((x) => x.slot === 1)!.node;
    // A workload on a node that is not the slot's: the forward crosses WireGuard.
    const w = s.workloads.find((x) => x.tenant === t1.name && !s.nodes.find((n) => n.id === x.node)!.exitCapable)!;
    const w2 = s.workloads.find((x) => x.tenant === t2.name)!;
    const c1 = new TnodbClient({ server: s.server.url, token: readToken(t1.tokenFile) });
    const c2 = new TnodbClient({ server: s.server.url, token: readToken(t2.tokenFile) });
    const pub4 = s.slots.find((x) => x.slot === 1)!.ipv4.split('/')[0]!;
    await serve(w.ns, ['tcp/80', 'tcp/8081', 'tcp/8082', 'udp/53']);
    await serve(w2.ns, ['tcp/8082']);
    await serve(inet, ['tcp/9000']);

    await t.test('GWPubIP4:port reaches TCP and UDP services on the workload, which see the real source', async () => {
      const ft = await c1.addForward(t1.network, { protocol: 'tcp', port: 8080, target: w.addr4, targetPort: 80 });
      const fu = await c1.addForward(t1.network, { protocol: 'udp', target: w.addr4, targetPort: 53 });
      assert.equal(ft.address, pub4);
      assert.equal(fu.port, 1024, 'the lowest free port');
      await waitConverged(s);
      await expect('tcp via the forward', () => ask(inet, 'tcp', pub4, 8080), INTERNET4);
      await expect('udp via the forward', () => ask(inet, 'udp', pub4, 1024), INTERNET4);
      assert.match(await ask(inet, 'tcp', pub4, 8081), /^FAIL/, 'a port without a forward answers nothing');
      // A public port is taken once per slot (two tenants on one slot: test/store/contract.test.ts).
      const other = await c1
        .addForward(t1.network, { protocol: 'tcp', port: 8080, target: w.addr4, targetPort: 81 })
        .then(
          () => 'made',
          (e: Error) => e.message,
        );
      assert.match(other, /taken/);
    });

    await t.test(
      'closed: unlisted ports dropped, allowed ones answer, replies to outbound pass; open answers',
      async () => {
        assert.equal(await ask(inet, 'tcp', w.addr6, 8082), INTERNET6, 'open: every port');
        await c1.setInbound(t1.network, 'closed');
        await c1.addInboundRule(t1.network, { protocol: 'tcp', ports: '8081' });
        await waitConverged(s);
        await expect('allowed tcp 8081', () => ask(inet, 'tcp', w.addr6, 8081), INTERNET6);
        await expect(
          'unlisted tcp 8082 dropped',
          () => ask(inet, 'tcp', w.addr6, 8082),
          /^FAIL (TimeoutError|timeout)/,
        );
        assert.equal(await ask(w.ns, 'tcp', INTERNET6, 9000), w.addr6, 'the outbound connection gets its replies');
        assert.equal(
          (await run(inNs(inet, ['ping', '-6', '-c', '1', '-W', '2', w.addr6]))).code,
          0,
          'ICMPv6 echo passes',
        );
        assert.equal(await ask(inet, 'tcp', w2.addr6, 8082), INTERNET6, 'the open network of the other tenant');
        assert.equal(await ask(inet, 'tcp', pub4, 8080), INTERNET4, 'IPv4 forwards are not the IPv6 policy');
        void c2;
      },
    );

    await t.test('after a failover of the slot, forwards and policy hold on the new gateway', async () => {
      await fail(s, exitNode);
      const moved = await waitMoved(s, 1, exitNode);
      assert.notEqual(moved.node, exitNode);
      await expect('tcp via the forward on the new gateway', () => ask(inet, 'tcp', pub4, 8080), INTERNET4, 60_000);
      await expect('udp via the forward on the new gateway', () => ask(inet, 'udp', pub4, 1024), INTERNET4);
      await expect('allowed tcp 8081 on the new gateway', () => ask(inet, 'tcp', w.addr6, 8081), INTERNET6);
      assert.match(await ask(inet, 'tcp', w.addr6, 8082), /^FAIL (TimeoutError|timeout)/, 'still closed');
    });

    await t.test('removal is total: the gateway keeps exactly the elements that remain', async () => {
      const before = await gatewayTexts(s);
      assert.ok(before.includes(`fwd4 tcp . 8080 : ${w.addr4} . 80`), before.join('\n'));
      await c1.removeForward(t1.network, 'tcp', 8080);
      const pol = await c1.getInbound(t1.network);
      for (const r of pol.rules) await c1.removeInboundRule(t1.network, r.id);
      await expect(
        'forward and rules gone',
        async () => (await gatewayTexts(s)).filter((e) => e.startsWith('fwd4') || e.startsWith('allow6')).join(', '),
        `fwd4 udp . 1024 : ${w.addr4} . 53`,
      );
      await expect(
        'closed without rules drops 8081',
        () => ask(inet, 'tcp', w.addr6, 8081),
        /^FAIL (TimeoutError|timeout)/,
      );
      await c1.deleteNetwork(t1.network);
      await expect('nothing left', async () => (await gatewayTexts(s)).join(', '), '');
    });
  },
);
