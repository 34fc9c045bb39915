// The readers in real namespaces: 30 NR namespaces are read by xargs in groups (24 + 6), and
// every namespace's links and routes come back under its own name; a namespace that cannot be
// read (its /run/netns entry a plain file) sends its group back to one-by-one reads, where it
// alone is reported, by name. Namespaces "xp-o-", allocation 701.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireRoot } from '../support/root.js';
import { GROUP_SIZE, observe } from '../../src/kernel/observe.js';
import { run, inNs } from '../../src/kernel/exec.js';
import { namespacesWith } from '../../src/sim/procs.js';
import type { DesiredState } from '../../src/compile/desired.js';

const PX = 'xp-o-';
const A = 701;
const names = Array.from({ length: 30 }, (_, i) => `${PX}net-${(0x1000 + i).toString(16)}-${A}`);
const BROKEN = `/run/netns/${PX}net-10ff-${A}`;
const state = mkdtempSync(join(tmpdir(), 'exitnode-xp-observe-'));
const desired: DesiredState = { node: 'o1', namespacePrefix: PX, namespaces: [], wireguard: [] };
const opts = { namespacePrefix: PX, stateDir: state, kernelWireguard: false };

after(async () => {
  rmSync(BROKEN, { force: true });
  const left = namespacesWith(PX);
  if (left.length) await run(['ip', '-force', '-batch', '-'], left.map((n) => `netns del ${n}`).join('\n') + '\n');
  rmSync(state, { recursive: true, force: true });
});

test(
  'observe: namespaces read in groups keep their own links and routes; an unreadable one is named alone',
  { timeout: 60_000 },
  async (t) => {
    if (!requireRoot(t, ['nsenter', 'xargs'])) return;
    assert.ok(names.length > GROUP_SIZE, 'more than one group');
    const add = await run(['ip', '-batch', '-'], names.map((n) => `netns add ${n}`).join('\n') + '\n');
    assert.equal(add.code, 0, add.stderr);
    // Namespace i gets a veth pair and one route of ours naming i, so that a shifted group shows.
    for (const [i, n] of names.entries()) {
      const r = await run(
        inNs(n, ['ip', '-batch', '-']),
        `link add d${i} type veth peer name e${i}\nlink set e${i} up\nlink set d${i} up\nroute add 2001:db8:${i + 1}::/64 dev d${i} proto 77\n`,
      );
      assert.equal(r.code, 0, r.stderr);
    }
    const check = (a: Awaited<ReturnType<typeof observe>>): void => {
      for (const [i, n] of names.entries()) {
        const ns = a.namespaces.get(n);
        assert.ok(ns, `${n} read`);
        assert.deepEqual(ns.links.map((l) => l.name).sort(), [`d${i}`, `e${i}`, 'lo'].sort(), n);
        assert.deepEqual(
          ns.routes.map((r) => `${r.dst} ${r.dev}`),
          [`2001:db8:${i + 1}::/64 d${i}`],
          n,
        );
      }
    };
    const a = await observe(desired, opts);
    check(a);
    assert.equal(a.unreadable?.size, 0);

    writeFileSync(BROKEN, '');
    const b = await observe(desired, opts);
    check(b);
    assert.deepEqual([...(b.unreadable?.keys() ?? [])], [`${PX}net-10ff-${A}`]);
    assert.match(b.unreadable!.get(`${PX}net-10ff-${A}`)!, /10ff/);
  },
);
