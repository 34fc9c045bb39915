// The Kernel contract (test/kernel/contract.ts) on the real adapter (src/kernel/linux.ts), in
// throwaway namespaces "xk-" with wireguard-go, on the wall clock. Whatever the suite leaves (it
// fails half-way, say) goes afterwards: the namespaces of the prefix and the wireguard-go
// processes of its state directory, by PID.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootSkipReason } from '../support/root.js';
import { linuxKernel } from '../../src/kernel/linux.js';
import { systemClock } from '../../src/kernel/clock.js';
import { run } from '../../src/kernel/exec.js';
import { isWgProcess, runDir } from '../../src/kernel/observe.js';
import { observeVrrp, stopKeepalived } from '../../src/kernel/vrrp.js';
import { kernelContract } from '../kernel/contract.js';
import { alive } from '../../src/sim/procs.js';

const P = 'xk-';

async function removeAll(stateDir: string): Promise<void> {
  // keepalived first, by its pid file (checked against its command line), as the agent would.
  for (const v of observeVrrp(stateDir).values()) await stopKeepalived(stateDir, v.ns, v.pid);
  for (const f of (() => {
    try {
      return readdirSync(runDir(stateDir));
    } catch {
      return [];
    }
  })()) {
    const m = /^(wg-[0-9a-f]{4}-\d+)\.pid$/.exec(f);
    if (!m) continue;
    const pid = Number(readFileSync(join(runDir(stateDir), f), 'utf8').trim());
    if (pid > 1 && isWgProcess(pid, m[1]!)) process.kill(pid, 'SIGTERM');
  }
  const left = readdirSync('/run/netns').filter((n) => n.startsWith(P));
  if (left.length) await run(['ip', '-force', '-batch', '-'], left.map((n) => `netns del ${n}`).join('\n') + '\n');
  rmSync(stateDir, { recursive: true, force: true });
}

kernelContract(
  'Linux (throwaway namespaces)',
  P,
  async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'exitnode-xk-'));
    // A run before this one that died without its cleanup.
    const stale = readdirSync('/run/netns').filter((n) => n.startsWith(P));
    if (stale.length) await run(['ip', '-force', '-batch', '-'], stale.map((n) => `netns del ${n}`).join('\n') + '\n');
    return {
      kernel: linuxKernel,
      clock: systemClock,
      stateDir,
      cleanup: () => removeAll(stateDir),
      // sim/procs' alive: a zombie counts as gone (node reaps keepalived only when its event loop
      // next handles SIGCHLD, which may be after the stop step returned).
      alive,
    };
  },
  { skip: rootSkipReason(['nsenter', 'xargs', 'nft', 'wg', 'wireguard-go', 'ping', 'keepalived']) },
);
