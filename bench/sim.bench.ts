// npm run bench:sim (root): a simulated farm (3 nodes, 2 exit-capable, 2 tenants; namespaces
// "xb-", allocation 602) is brought up with the CLI, then 20 API changes (NR removed, added, …)
// are timed from the API write to every agent having applied them. Baseline in the same run: the
// server waking a bare long-poll for the same change, i.e. the part the agent cannot beat.
// The farm is removed afterwards, also on failure.
import { run } from '../src/kernel/exec.js';
import { loadState } from '../src/sim/state.js';
import { measureChanges, summarize } from '../src/sim/measure.js';

const STATE = '/run/exitnode-sim-xb';
const COUNT = Number(process.env.CHANGES ?? 20);
const cli = (args: string[]): ReturnType<typeof run> => run([process.execPath, 'bin/exitnode.js', ...args]);

await cli(['sim', 'down', '--state', STATE, '--ns-prefix', 'xb-']);
try {
  const t0 = performance.now();
  const up = await cli(['sim', 'up', '--ns-prefix', 'xb-', '--allocation', '602', '--state', STATE, '--no-check']);
  const upMs = performance.now() - t0;
  if (up.code !== 0) throw new Error(`sim up failed:\n${up.stdout}\n${up.stderr}`);
  const t1 = performance.now();
  const check = await cli(['sim', 'check', '--state', STATE]);
  const checkMs = performance.now() - t1;
  console.log(
    `sim up (3 nodes, 2 exit-capable, 2 tenants), without its check: ${(upMs / 1000).toFixed(1)} s; sim check: ${(checkMs / 1000).toFixed(1)} s (${check.stdout.trim().split('\n').pop()})`,
  );
  const s = loadState(STATE);
  for (const [tenant, node] of [
    ['t2', 'n3'],
    ['t1', 'n2'],
  ] as const) {
    const timings = await measureChanges(s, { tenant, node, count: COUNT });
    console.log(`changes of ${tenant}'s NR on ${node} (a node ${node === 'n3' ? 'without' : 'with'} a gateway):`);
    console.log(
      summarize(timings)
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n'),
    );
  }
} finally {
  await cli(['sim', 'down', '--state', STATE, '--ns-prefix', 'xb-']);
}
