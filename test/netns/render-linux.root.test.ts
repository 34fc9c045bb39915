// The Linux renderer's script, run by a real kernel: a throwaway namespace "xrl-up-PID" plays the
// upstream router and holds the named interface (swp1), a veth whose peer sits in "xrl-gw-PID",
// which plays slot 1's gateway. The test runs the rendered script with `ip netns exec … sh FILE`,
// reads the kernel back (`ip -json -6 route`, `ip -json -6 addr`) and requires exactly one route
// per slot with the plan's next hop on swp1; runs it again to prove that nothing changes; switches
// to --via global to prove "replace" converges; and pings the gateway's /52 across the veth to
// prove the routes carry traffic. Both namespaces are deleted afterwards, also on failure.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

interface Route { dst: string; gateway?: string; dev?: string; protocol?: string }
interface Addr { local: string; prefixlen: number; scope: string }

function routes(): Route[] {
  return (JSON.parse(ip('-n', UP, '-json', '-6', 'route', 'show')) as Route[]).map(({ dst, gateway, dev, protocol }) => ({ dst, gateway, dev, protocol }));
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
  return SLOTS.map((e) => ({ dst: slotPrefix(A, e).toString(), gateway: (via === 'll' ? gwPubLL(e) : gwPubIP6(A, e)).toString(), dev: IFACE, protocol: 'static' }));
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
    const left = ip('netns', 'list').split('\n').map((l) => l.split(' ')[0]).filter((n) => n === UP || n === GW);
    if (left.length) throw new Error(`namespaces left behind: ${left.join(', ')}`);
  });

  it('installs exactly one route per slot via GWPubLL dev swp1, and the upstream addresses', () => {
    const r = runScript({});
    assert.equal(r.status, 0, r.stderr);
    const all = routes();
    const ours = all.filter((x) => x.protocol !== 'kernel').sort(byDst);
    assert.deepEqual(ours, expected('ll').sort(byDst));
    // Besides ours, only the kernel's own on-link routes of swp1's addresses.
    assert.deepEqual(all.filter((x) => x.protocol === 'kernel').map((x) => `${x.dst} ${x.dev}`).sort(), ['2001:db8:5e::/64 swp1', 'fe80::/64 swp1']);
    const a = addrs();
    assert.ok(a.some((x) => x.local === '2001:db8:5e::1' && x.prefixlen === 64 && x.scope === 'global'), JSON.stringify(a));
    assert.ok(a.some((x) => x.local === 'fe80::1' && x.prefixlen === 64 && x.scope === 'link'), JSON.stringify(a));
  });

  it('changes nothing when run a second time', () => {
    const beforeRoutes = routes();
    const beforeAddrs = addrs();
    const r = runScript({});
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(routes(), beforeRoutes);
    assert.deepEqual(addrs(), beforeAddrs);
  });

  it('carries traffic: slot 1\'s /52 is reachable through its gateway', () => {
    // The gateway namespace holds GWPubLL of slot 1 and one address inside slot 1's /52.
    const target = slotPrefix(A, 1).network.add(1).toString();
    ip('-n', GW, 'addr', 'add', `${gwPubLL(1)}/64`, 'dev', 'pz0', 'nodad');
    ip('-n', GW, 'addr', 'add', `${target}/128`, 'dev', 'lo');
    ip('-n', GW, '-6', 'route', 'add', 'default', 'via', 'fe80::1', 'dev', 'pz0');
    // The script's addresses go through duplicate address detection; wait until they may be used.
    const deadline = Date.now() + 10_000;
    while (ip('-n', UP, '-6', 'addr', 'show', 'dev', IFACE, 'tentative').trim() !== '' && Date.now() < deadline) spawnSync('sleep', ['0.2']);
    const ping = spawnSync('ip', ['netns', 'exec', UP, 'ping', '-6', '-c', '1', '-W', '3', target], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(ping.status, 0, `${ping.stdout}${ping.stderr}`);
  });

  it('converges to --via global (GWPubIP6, on-link in the segment) with the same one route per slot', () => {
    const r = runScript({ via: 'global' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(routes().filter((x) => x.protocol !== 'kernel').sort(byDst), expected('global').sort(byDst));
  });
});
