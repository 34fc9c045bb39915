// The two production uplink modes, with a veth standing in for the NIC (the kernel moves and
// renames both the same way): "nic" moves the device into the gateway as pub-E-A and sends it
// home under its own name on down; "macvlan" adds pub-E-A on the parent and leaves the parent
// alone. Namespaces "xa-u", allocations 402 and 403.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireRoot } from '../support/root.js';
import { applyView, down } from '../../src/agent/index.js';
import type { NodeConfig } from '../../src/agent/config.js';
import { parseNodeView } from '../../src/core/view.js';
import { run, inNs } from '../../src/kernel/exec.js';

const ROOT = 'xa-uroot';
const PEER = 'xa-upeer';
const state = mkdtempSync(join(tmpdir(), 'exitnode-xa-uplink-'));

after(async () => {
  const r = await run(['ip', 'netns', 'list']);
  const names = r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith('xa-u'));
  if (names.length) await run(['ip', '-force', '-batch', '-'], names.map((n) => `netns del ${n}`).join('\n') + '\n');
  rmSync(state, { recursive: true, force: true });
});

const view = (A: number): ReturnType<typeof parseNodeView> =>
  parseNodeView({
    version: 1,
    node: { id: 'u1' },
    allocations: [
      {
        number: A,
        prefix: '2001:db8:5e::/48',
        upstream: { ll: 'fe80::1', ipv4Gateway: '198.51.100.1', ipv4PrefixLength: 24 },
      },
    ],
    slots: [{ allocation: A, slot: 1, epoch: 1, ipv4: '198.51.100.10' }],
    networks: [],
  });

const links = async (ns: string): Promise<string> => (await run(inNs(ns, ['ip', '-o', 'link', 'show']))).stdout;

test('uplink modes nic and macvlan', { timeout: 60_000 }, async (t) => {
  if (!requireRoot(t, ['nft', 'nsenter'])) return;
  await run(['ip', '-batch', '-'], `netns add ${ROOT}\nnetns add ${PEER}\n`);
  await run(
    inNs(ROOT, ['ip', '-batch', '-']),
    `link add nic0 type veth peer name far0 netns ${PEER}\nlink add eth7 type veth peer name far1 netns ${PEER}\n`,
  );

  await t.test('nic: moved in as pub-1-402, configured, and home again as nic0 on down', async () => {
    const config: NodeConfig = {
      node: 'u1',
      namespacePrefix: 'xa-un-',
      rootNamespace: ROOT,
      publicNamespace: ROOT,
      stateDir: join(state, 'nic'),
      uplink: { kind: 'nic', device: 'nic0' },
      wireguard: 'none',
    };
    // A live agent holding the node's lock: this pass refuses instead of racing it.
    mkdirSync(config.stateDir, { recursive: true });
    writeFileSync(join(config.stateDir, 'lock'), `${process.ppid}\n`);
    await assert.rejects(
      applyView(view(402), config),
      (e: Error & { code?: string }) => e.code === 'AGENT_BUSY' && e.message.includes(`pid ${process.ppid}`),
    );
    // A lock whose holder is gone (a SIGKILLed agent) is taken over.
    writeFileSync(join(config.stateDir, 'lock'), '2147483646\n');
    const r = await applyView(view(402), config);
    assert.deepEqual(r.failures, []);
    assert.equal(existsSync(join(config.stateDir, 'lock')), false, 'released');
    assert.doesNotMatch(await links(ROOT), /nic0/);
    const gw = 'xa-un-gw-1-402';
    const addrs = (await run(inNs(gw, ['ip', '-o', 'addr', 'show', 'dev', 'pub-1-402']))).stdout;
    assert.match(addrs, /2001:db8:5e:0:1000::1\/64/);
    assert.match(addrs, /198\.51\.100\.10\/24/);
    assert.equal((await applyView(view(402), config)).size, 0);
    const d = await down(config);
    assert.deepEqual(d.failures, []);
    assert.match(await links(ROOT), /nic0@/, 'the NIC is back under its own name');
    assert.doesNotMatch(await links(ROOT), /pub-1-402/);
  });

  await t.test('macvlan: pub-1-403 on eth7, the parent untouched by down', async () => {
    const config: NodeConfig = {
      node: 'u1',
      namespacePrefix: 'xa-um-',
      rootNamespace: ROOT,
      publicNamespace: ROOT,
      stateDir: join(state, 'mv'),
      uplink: { kind: 'macvlan', parent: 'eth7' },
      wireguard: 'none',
    };
    const r = await applyView(view(403), config);
    assert.deepEqual(r.failures, []);
    assert.match(await links('xa-um-gw-1-403'), /pub-1-403@.*macvlan|pub-1-403@/);
    assert.equal((await applyView(view(403), config)).size, 0);
    assert.deepEqual((await down(config)).failures, []);
    assert.match(await links(ROOT), /eth7@/);
    assert.equal((await run(['ip', 'netns', 'list'])).stdout.includes('xa-um-gw'), false);
  });
});
