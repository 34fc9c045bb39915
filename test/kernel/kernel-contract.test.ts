// The Kernel contract (test/kernel/contract.ts) on the in-memory fake, with a clock that moves
// by itself as the suite sleeps (duplicate address detection takes its 1000 ms of that clock).
import { FakeKernel } from '../../src/kernel/fake.js';
import { ManualClock } from '../../src/kernel/fake-clock.js';
import { kernelContract } from './contract.js';

kernelContract('the in-memory fake', 'xk-', async () => {
  const clock = new ManualClock({ auto: true });
  return {
    kernel: new FakeKernel({ now: () => clock.now() }),
    clock,
    stateDir: '/nonexistent/exitnode-fake-state',
    cleanup: async () => undefined,
  };
});
