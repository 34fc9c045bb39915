// The dashboard in a real browser (Debian's Chromium, driven by playwright-core) on the simulated
// farm (3 nodes, 2 exit-capable, 2 tenants; real server, real agents): `sim up` prints the URL and
// the token to sign in with; the map shows the slots and who answers; a `sim fail` of slot 1's
// holder appears in the history and the slot's answering node changes without a reload, then the
// failover with its measured cost; a stopped server shows as a lost connection until it is back;
// a tenant token sees its own network only. A screenshot of each main view is kept in
// artifacts/dashboard/. Namespaces "xd-", allocation 803, state /run/exitnode-sim-xd-test.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { requireRoot } from '../support/root.js';
import { artifact, browserUnavailable, launch } from '../support/browser.js';
import { run } from '../../src/kernel/exec.js';
import { loadState } from '../../src/sim/state.js';

const STATE = '/run/exitnode-sim-xd-test';
const A = 803;
const cli = (args: string[]): ReturnType<typeof run> =>
  run([process.execPath, 'bin/exitnode.js', ...args, '--state', STATE]);

after(async () => {
  if (!process.env.XD_KEEP) await cli(['sim', 'down', '--ns-prefix', 'xd-']);
});

/** The answering node shown on slot A/E's tile. */
const holderOn = (p: Page, slot: number): Promise<string | null> =>
  p.getAttribute(`[data-slot="${A}/${slot}"]`, 'data-holder');

test(
  'the dashboard on the simulated farm: map, a failover live, a lost connection, tenant isolation',
  { timeout: 300_000 },
  async (t) => {
    if (!requireRoot(t, ['nft', 'wg', 'wireguard-go', 'python3', 'nsenter'])) return;
    const why = browserUnavailable();
    if (why) {
      if (process.env.CI === 'true') throw new Error(why);
      return t.skip(why);
    }
    const up = await cli(['sim', 'up', '--ns-prefix', 'xd-', '--allocation', String(A), '--no-check']);
    assert.equal(up.code, 0, up.stdout + up.stderr);
    const m = /dashboard:\s+(http:\/\/127\.0\.0\.1:\d+\/ui\/)\s+sign in with the farm token: (xn_\S+)/.exec(up.stdout);
    assert.ok(m, `sim up prints the dashboard URL and the token:\n${up.stdout}`);
    const [, url, farmToken] = m as unknown as [string, string, string];
    const s = loadState(STATE);
    assert.equal(farmToken, readFileSync(s.server.farmTokenFile, 'utf8').trim());

    const browser = await launch();
    t.after(() => browser.close());
    const problems: string[] = [];
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (c) => {
      // A lost connection is expected while the server is stopped (step 3): the fetches fail.
      if (c.type() === 'error' && !/ERR_CONNECTION_REFUSED|Failed to load resource/.test(c.text()))
        problems.push(`console: ${c.text()}`);
    });

    await t.test('sign in with the farm token: the 15 slots, who answers, the latest events', async () => {
      await page.goto(url);
      await page.fill('#token', farmToken);
      await page.click('button[type=submit]');
      await page.waitForSelector(`[data-slot="${A}/15"]`);
      await page.waitForSelector('[data-testid=live][data-state=live]');
      assert.equal(await page.locator('.tile[data-slot]').count(), 15);
      assert.equal(await holderOn(page, 1), 'n1');
      assert.equal(await holderOn(page, 2), 'n2');
      assert.equal(await holderOn(page, 3), '');
      assert.match((await page.textContent(`[data-slot="${A}/1"]`)) ?? '', /1 \/ 4096 NRs|\d+ \/ 4096 NRs/);
      // The token is in this tab's session only.
      assert.equal(await page.evaluate(() => sessionStorage.getItem('exitnode.token')), farmToken);
      assert.equal(await page.evaluate(() => localStorage.length + document.cookie.length), 0);
      await page.waitForSelector(`[data-slot="${A}/1"][data-state=ok]`, { timeout: 15_000 });
      await page.screenshot({ path: artifact('map.png'), fullPage: true });
    });

    await t.test(
      'sim fail n1: slot.moved in the history and the answering node changes without a reload; the failover with its cost',
      async () => {
        await page.evaluate(() => ((window as unknown as { __noReload: boolean }).__noReload = true));
        const failed = await cli(['sim', 'fail', 'n1']);
        assert.equal(failed.code, 0, failed.stderr);
        const t0 = Date.now();
        await page.waitForSelector(`[data-slot="${A}/1"][data-holder=n2]`, { timeout: 30_000 });
        const moved = Date.now() - t0;
        await page.waitForSelector('[data-testid=recent-events] [data-kind="slot.moved"]', { timeout: 5_000 });
        assert.match(
          (await page.textContent('[data-testid=recent-events]')) ?? '',
          new RegExp(`slot ${A}/1 moved n1 → n2`),
        );
        await page.waitForSelector('[data-testid=recent-events] [data-kind=failover]', { timeout: 30_000 });
        assert.equal(
          await page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload),
          true,
          'no reload',
        );
        t.diagnostic(`the tile showed n2 ${moved} ms after sim fail returned`);
        await page.screenshot({ path: artifact('map-after-failover.png'), fullPage: true });

        await page.click(`[data-slot="${A}/1"]`);
        await page.waitForSelector('[data-testid=answering]');
        assert.equal(await page.textContent('[data-testid=answering]'), 'n2');
        await page.waitForSelector('[data-testid=failovers] tbody tr');
        const row = (await page.textContent('[data-testid=failovers] tbody tr')) ?? '';
        assert.match(row, /n1 → n2/);
        assert.match(row, /holder went silent/);
        const cost = /(\d+\.\d) s/.exec(row);
        assert.ok(cost && Number(cost[1]) > 0 && Number(cost[1]) < 60, `the failover's cost is shown: ${row}`);
        t.diagnostic(`failover cost shown: ${row}`);
        await page.waitForSelector('[data-testid=slot-nrs] .vrow');
        await page.screenshot({ path: artifact('slot.png'), fullPage: true });

        await page.click('[data-tab=events]');
        await page.waitForSelector('[data-testid=events] [data-kind="slot.moved"]');
        await page.waitForSelector('[data-testid=events] [data-kind="node.silent"]');
        await page.selectOption('[data-testid=filter-kind]', 'failover');
        await page.waitForFunction(() => {
          const rows = [...document.querySelectorAll('[data-testid=events] [data-kind]')];
          return rows.length > 0 && rows.every((r) => r.getAttribute('data-kind') === 'failover');
        });
        await page.selectOption('[data-testid=filter-kind]', '');
        await page.waitForSelector('[data-testid=events] [data-kind="nr.added"]');
        await page.screenshot({ path: artifact('events.png'), fullPage: true });

        await page.click('[data-tab=nodes]');
        await page.waitForSelector('[data-node=n1].down');
        assert.match((await page.textContent('[data-node=n2]')) ?? '', /ok/);
        await page.screenshot({ path: artifact('nodes.png'), fullPage: true });
      },
    );

    await t.test(
      'the server stops: the page shows the lost connection, and goes live again when it is back',
      async () => {
        assert.equal((await cli(['sim', 'stop', 'server'])).code, 0);
        await page.waitForSelector('[data-testid=connection-lost]', { timeout: 15_000 });
        assert.match((await page.textContent('[data-testid=connection-lost]')) ?? '', /Connection to TNoDB lost/);
        await page.screenshot({ path: artifact('connection-lost.png') });
        assert.equal((await cli(['sim', 'start', 'server'])).code, 0);
        await page.waitForSelector('[data-testid=live][data-state=live]', { timeout: 30_000 });
        assert.equal(await page.locator('[data-testid=connection-lost]').count(), 0);
      },
    );

    await t.test('upstream and explain', async () => {
      await page.click('[data-tab=upstream]');
      await page.selectOption('[data-testid=router]', 'frr');
      await page.waitForFunction(() =>
        /ipv6 route .*:1000::\/52 fe80::1000:0:0:1/.test(
          (document.querySelector('[data-testid=upstream-text]') as HTMLTextAreaElement)?.value ?? '',
        ),
      );
      await page.screenshot({ path: artifact('upstream.png'), fullPage: true });
      const w = s.workloads.find((x) => x.node === 'n3')!;
      await page.click('[data-tab=explain]');
      await page.fill('[data-testid=explain-input]', w.addr6);
      await page.press('[data-testid=explain-input]', 'Enter');
      await page.waitForSelector('[data-testid=explain-result]');
      assert.match(
        (await page.textContent('[data-testid=explain-result]')) ?? '',
        new RegExp(`NR ${w.nr}.*node n3`, 's'),
      );
      await page.screenshot({ path: artifact('explain.png'), fullPage: true });
    });

    await t.test('a tenant token sees its own network only', async () => {
      const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
      const tp = await ctx.newPage();
      tp.on('pageerror', (e) => problems.push(`tenant page error: ${e.message}`));
      const [t1, t2] = s.tenants;
      await tp.goto(url);
      await tp.fill('#token', readFileSync(t1!.tokenFile, 'utf8').trim());
      await tp.click('button[type=submit]');
      await tp.waitForSelector(`[data-network="${t1!.network}"]`);
      assert.equal(await tp.locator('[data-network]').count(), 1);
      assert.equal(await tp.locator(`[data-network="${t2!.network}"]`).count(), 0);
      assert.equal(await tp.locator('[data-tab=map]').count(), 0, 'no farm map for a tenant');
      assert.equal(await tp.locator('[data-tab=nodes]').count(), 0);
      // Its services (issue 13): the IPv6 inbound policy and the IPv4 port forwards.
      await tp.waitForFunction(
        (id) =>
          /IPv6 inbound: open/.test(
            document.querySelector(`[data-network="${id}"] [data-testid=services]`)?.textContent ?? '',
          ),
        t1!.network,
      );
      await tp.screenshot({ path: artifact('tenant-networks.png'), fullPage: true });
      await tp.click('[data-tab=events]');
      await tp.waitForSelector('[data-testid=events] [data-kind="network.created"]');
      const nets = await tp.$$eval('[data-testid=events] .ev-row', (rows) => rows.map((r) => r.textContent ?? ''));
      assert.ok(
        nets.every((x) => !x.includes(t2!.network)),
        "no event of the other tenant's network",
      );
      assert.ok(
        nets.every((x) => !/slot\.moved|node\./.test(x)),
        'no farm events',
      );
      const other = s.workloads.find((x) => x.tenant === t2!.name)!;
      await tp.click('[data-tab=explain]');
      await tp.fill('[data-testid=explain-input]', other.addr6);
      await tp.press('[data-testid=explain-input]', 'Enter');
      await tp.waitForSelector('[data-testid=explain-error]');
      assert.match((await tp.textContent('[data-testid=explain-error]')) ?? '', /not an address of your networks/);
      await ctx.close();
    });

    assert.deepEqual(problems, [], 'no page errors, no CSP violations');
  },
);
