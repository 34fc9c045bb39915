// The Linux renderer's script, run by a real kernel: a throwaway namespace "xrl-up-PID" plays the
// upstream router and holds the named interface (swp1), a veth whose peer sits in "xrl-gw-PID",
// which plays slot 1's gateway. The test runs the rendered script with `ip netns exec … sh FILE`,
// reads the kernel back (`ip -json -6 route`, `ip -json -6 addr`) and requires exactly one route
// per slot with the plan's next hop on swp1; runs it again to prove that nothing changes; switches
// to --via global to prove "replace" converges; and pings the gateway's /52 across the veth to
// prove the routes carry traffic. Both namespaces are deleted afterwards, also on failure.
// The FRR and BIRD outputs get the same treatment from the real daemons (zebra + staticd, bird)
// started inside their own namespaces: beyond the parsers' syntax checks, this proves that the
// daemons accept the link-local address and next hops and install exactly the expected routes.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootSkipReason } from '../support/root.js';
import { gwPubIP6, gwPubLL, allocation, slotPrefix } from '../../src/core/index.js';
import { renderUpstream, type UpstreamInput } from '../../src/render/index.js';

const skip = rootSkipReason(['ip', 'ping']);
const UP = `xrl-up-${process.pid}`;
const GW = `xrl-gw-${process.pid}`;
const IFACE = 'swp1';
const PREFIX = '2001:db8:5e::/48';
const SLOTS = [1, 2, 15];
const A = allocation(PREFIX, 200);

function ip(...args: string[]): string {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
  return r.stdout;
}

interface Route {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
}
interface Addr {
  local: string;
  prefixlen: number;
  scope: string;
}

function routes(): Route[] {
  return (JSON.parse(ip('-n', UP, '-json', '-6', 'route', 'show')) as Route[]).map(
    ({ dst, gateway, dev, protocol }) => ({ dst, gateway, dev, protocol }),
  );
}

function addrs(): Addr[] {
  const links = JSON.parse(ip('-n', UP, '-json', '-6', 'addr', 'show', 'dev', IFACE)) as { addr_info: Addr[] }[];
  return links.flatMap((l) => l.addr_info.map(({ local, prefixlen, scope }) => ({ local, prefixlen, scope })));
}

const dir = mkdtempSync(join(tmpdir(), 'xrl-linux-'));

function runScript(input: Partial<UpstreamInput>): { status: number | null; stderr: string } {
  const file = join(dir, 'upstream.sh');
  writeFileSync(file, renderUpstream({ prefix: PREFIX, slots: SLOTS, router: 'linux', iface: IFACE, ...input }));
  const r = spawnSync('ip', ['netns', 'exec', UP, 'sh', file], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stderr: r.stderr };
}

function expected(via: 'll' | 'global'): Route[] {
  return SLOTS.map((e) => ({
    dst: slotPrefix(A, e).toString(),
    gateway: (via === 'll' ? gwPubLL(e) : gwPubIP6(A, e)).toString(),
    dev: IFACE,
    protocol: 'static',
  }));
}

const byDst = (a: Route, b: Route): number => a.dst.localeCompare(b.dst);

describe('Linux renderer in a network namespace', { skip }, () => {
  before(() => {
    ip('netns', 'add', UP);
    ip('netns', 'add', GW);
    ip('-n', UP, 'link', 'add', IFACE, 'type', 'veth', 'peer', 'name', 'pz0', 'netns', GW);
    ip('-n', GW, 'link', 'set', 'lo', 'up');
    ip('-n', GW, 'link', 'set', 'pz0', 'up');
  });
  after(() => {
    spawnSync('ip', ['netns', 'del', UP]);
    spawnSync('ip', ['netns', 'del', GW]);
    rmSync(dir, { recursive: true, force: true });
    const left = ip('netns', 'list')
      .split('\n')
      .map((l) => l.split(' ')[0])
      .filter((n) => n === UP || n === GW);
    if (left.length) throw new Error(`namespaces left behind: ${left.join(', ')}`);
  });

  it('installs exactly one route per slot via GWPubLL dev swp1, and the upstream addresses', () => {
    const r = runScript({});
    assert.equal(r.status, 0, r.stderr);
    const all = routes();
    const ours = all.filter((x) => x.protocol !== 'kernel').sort(byDst);
    assert.deepEqual(ours, expected('ll').sort(byDst));
    // Besides ours, only the kernel's own on-link routes of swp1's addresses.
    assert.deepEqual(
      all
        .filter((x) => x.protocol === 'kernel')
        .map((x) => `${x.dst} ${x.dev}`)
        .sort(),
      ['2001:db8:5e::/64 swp1', 'fe80::/64 swp1'],
    );
    const a = addrs();
    assert.ok(
      a.some((x) => x.local === '2001:db8:5e::1' && x.prefixlen === 64 && x.scope === 'global'),
      JSON.stringify(a),
    );
    assert.ok(
      a.some((x) => x.local === 'fe80::1' && x.prefixlen === 64 && x.scope === 'link'),
      JSON.stringify(a),
    );
  });

  it('changes nothing when run a second time', () => {
    const beforeRoutes = routes();
    const beforeAddrs = addrs();
    const r = runScript({});
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(routes(), beforeRoutes);
    assert.deepEqual(addrs(), beforeAddrs);
  });

  it("carries traffic: slot 1's /52 is reachable through its gateway", () => {
    // The gateway namespace holds GWPubLL of slot 1 and one address inside slot 1's /52.
    const target = slotPrefix(A, 1).network.add(1).toString();
    ip('-n', GW, 'addr', 'add', `${gwPubLL(1)}/64`, 'dev', 'pz0', 'nodad');
    ip('-n', GW, 'addr', 'add', `${target}/128`, 'dev', 'lo');
    ip('-n', GW, '-6', 'route', 'add', 'default', 'via', 'fe80::1', 'dev', 'pz0');
    // The script's addresses go through duplicate address detection; wait until they may be used.
    const deadline = Date.now() + 10_000;
    while (ip('-n', UP, '-6', 'addr', 'show', 'dev', IFACE, 'tentative').trim() !== '' && Date.now() < deadline)
      spawnSync('sleep', ['0.2']);
    const ping = spawnSync('ip', ['netns', 'exec', UP, 'ping', '-6', '-c', '1', '-W', '3', target], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(ping.status, 0, `${ping.stdout}${ping.stderr}`);
  });

  it('converges to --via global (GWPubIP6, on-link in the segment) with the same one route per slot', () => {
    const r = runScript({ via: 'global' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      routes()
        .filter((x) => x.protocol !== 'kernel')
        .sort(byDst),
      expected('global').sort(byDst),
    );
  });
});

// --- the routing daemons -----------------------------------------------------------------------

/** A daemon started inside a namespace; `ip netns exec` execs it, so the PID is the daemon's. */
function startDaemon(ns: string, argv: string[], log: string[]): ChildProcess {
  const p = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  p.stdout!.on('data', (d: Buffer) => log.push(d.toString()));
  p.stderr!.on('data', (d: Buffer) => log.push(d.toString()));
  return p;
}

async function stopDaemon(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((res) => p.once('exit', () => res()));
  p.kill('SIGTERM');
  if (await Promise.race([exited.then(() => true), sleep(3000).then(() => false)])) return;
  p.kill('SIGKILL');
  await exited;
}

async function waitFor<T>(what: string, probe: () => T | undefined, log: string[], ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; daemon output:\n${log.join('')}`);
    await sleep(100);
  }
}

function nsRoutes(ns: string): Route[] {
  return (JSON.parse(ip('-n', ns, '-json', '-6', 'route', 'show')) as Route[]).map(
    ({ dst, gateway, dev, protocol }) => ({ dst, gateway, dev, protocol }),
  );
}

function nsAddrs(ns: string, dev: string): string[] {
  const links = JSON.parse(ip('-n', ns, '-json', '-6', 'addr', 'show', 'dev', dev)) as { addr_info: Addr[] }[];
  return links.flatMap((l) => l.addr_info.map((a) => `${a.local}/${a.prefixlen}`));
}

/** A namespace holding IFACE (a veth whose peer stays beside it, up) and a temp directory. */
function daemonNamespace(ns: string, owner?: string): { dir: string; cleanup: () => void } {
  ip('netns', 'add', ns);
  ip('-n', ns, 'link', 'set', 'lo', 'up');
  ip('-n', ns, 'link', 'add', IFACE, 'type', 'veth', 'peer', 'name', 'pz0');
  ip('-n', ns, 'link', 'set', IFACE, 'up');
  ip('-n', ns, 'link', 'set', 'pz0', 'up');
  const d = mkdtempSync(join(tmpdir(), `${ns}-`));
  if (owner) {
    const uid = Number(spawnSync('id', ['-u', owner], { encoding: 'utf8' }).stdout);
    const gid = Number(spawnSync('id', ['-g', owner], { encoding: 'utf8' }).stdout);
    chownSync(d, uid, gid);
  }
  return {
    dir: d,
    cleanup: () => {
      spawnSync('ip', ['netns', 'del', ns]);
      rmSync(d, { recursive: true, force: true });
      if (
        ip('netns', 'list')
          .split('\n')
          .some((l) => l.split(' ')[0] === ns)
      )
        throw new Error(`namespace ${ns} left behind`);
    },
  };
}

const FRR_BIN = '/usr/lib/frr';
const frrSkip =
  rootSkipReason(['ip', 'vtysh', `${FRR_BIN}/zebra`, `${FRR_BIN}/staticd`]) ??
  (spawnSync('id', ['frr']).status !== 0 ? 'no frr user (Debian package frr)' : undefined);

describe('FRR output applied by zebra and staticd in a namespace', { skip: frrSkip }, () => {
  const NS = `xrl-frr-${process.pid}`;
  const log: string[] = [];
  let zebra: ChildProcess | undefined;
  let staticd: ChildProcess | undefined;
  let env: ReturnType<typeof daemonNamespace>;
  before(() => {
    env = daemonNamespace(NS, 'frr');
  });
  after(async () => {
    await stopDaemon(staticd);
    await stopDaemon(zebra);
    env.cleanup();
  });

  it('installs one static route per slot via GWPubLL on swp1 and sets the upstream addresses', async () => {
    const d = env.dir;
    // Daemons run as frr (whose group frrvty owns the vty sockets); -P 0: no TCP vty port.
    const common = [
      '-u',
      'frr',
      '-g',
      'frr',
      '-z',
      join(d, 'zserv.api'),
      '--vty_socket',
      d,
      '-P',
      '0',
      '-f',
      '/dev/null',
    ];
    zebra = startDaemon(NS, [`${FRR_BIN}/zebra`, ...common, '-i', join(d, 'zebra.pid')], log);
    await waitFor('zebra', () => (existsSync(join(d, 'zebra.vty')) ? true : undefined), log);
    staticd = startDaemon(NS, [`${FRR_BIN}/staticd`, ...common, '-i', join(d, 'staticd.pid')], log);
    await waitFor('staticd', () => (existsSync(join(d, 'staticd.vty')) ? true : undefined), log);
    writeFileSync(join(d, 'vtysh.conf'), '');
    writeFileSync(
      join(d, 'upstream.conf'),
      renderUpstream({ prefix: PREFIX, slots: SLOTS, router: 'frr', iface: IFACE }),
    );
    const v = spawnSync(
      'ip',
      ['netns', 'exec', NS, 'vtysh', '--vty_socket', d, '--config_dir', d, '-f', join(d, 'upstream.conf')],
      { encoding: 'utf8', timeout: 20_000 },
    );
    assert.equal(v.status, 0, `${v.stdout}${v.stderr}`);
    const want = expected('ll').sort(byDst);
    const got = await waitFor(
      'the static routes',
      () => {
        const r = nsRoutes(NS)
          .filter((x) => x.protocol !== 'kernel')
          .sort(byDst);
        return r.length >= want.length ? r : undefined;
      },
      log,
    );
    assert.deepEqual(got, want);
    const a = nsAddrs(NS, IFACE);
    assert.ok(a.includes('2001:db8:5e::1/64') && a.includes('fe80::1/64'), JSON.stringify(a));
  });
});

const birdSkip = rootSkipReason(['ip', 'bird']);

describe('BIRD output run by bird in a namespace', { skip: birdSkip }, () => {
  const NS = `xrl-bird-${process.pid}`;
  const log: string[] = [];
  let bird: ChildProcess | undefined;
  let env: ReturnType<typeof daemonNamespace>;
  before(() => {
    env = daemonNamespace(NS);
  });
  after(async () => {
    await stopDaemon(bird);
    env.cleanup();
  });

  it('exports exactly one route per slot via GWPubLL on swp1 to the kernel', async () => {
    const d = env.dir;
    // BIRD sets no addresses (its output says so); the OS does. The IPv4 address is where BIRD
    // takes its router id from, as on a farm router that also routes the allocation's IPv4 block.
    ip('-n', NS, 'addr', 'add', '192.0.2.1/24', 'dev', IFACE);
    ip('-n', NS, '-6', 'addr', 'add', '2001:db8:5e::1/64', 'dev', IFACE);
    ip('-n', NS, '-6', 'addr', 'add', 'fe80::1/64', 'dev', IFACE);
    writeFileSync(join(d, 'bird.conf'), renderUpstream({ prefix: PREFIX, slots: SLOTS, router: 'bird', iface: IFACE }));
    bird = startDaemon(
      NS,
      ['bird', '-f', '-c', join(d, 'bird.conf'), '-s', join(d, 'bird.ctl'), '-P', join(d, 'bird.pid')],
      log,
    );
    const want = expected('ll')
      .map((r) => ({ ...r, protocol: 'bird' }))
      .sort(byDst);
    const got = await waitFor(
      'the exported routes',
      () => {
        const r = nsRoutes(NS)
          .filter((x) => x.protocol !== 'kernel')
          .sort(byDst);
        return r.length >= want.length ? r : undefined;
      },
      log,
    );
    assert.deepEqual(got, want);
  });
});
