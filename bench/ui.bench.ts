// npm run bench:ui: the dashboard in Debian's Chromium (playwright-core, headless) against a real
// TNoDB server with stand-in agents (test/support/ui-farm.ts: they heartbeat and report, build
// nothing). Two farms in the same run: the baseline, 15 slots with no network, and the farm of
// the issue, 4000 tenant networks of 14 NRs each (56,000 NRs, ~3730 per slot: slot 15 holds only
// 3840 ids, and with 15 NRs a network the farm filled a slot at ~3500 networks).
//   first load     navigation start → the map painted with the overview (performance mark xn:map),
//                  and → the networks list (xn:networks) and a slot's NR list (xn:slot) painted
//   event → screen a farmer's slot reassignment sent (API call start) → the slot's tile in the page
//                  showing the new node (a MutationObserver in the page), through the event stream
// Figures go to stdout and artifacts/dashboard/bench-ui.json, with the load average: the machine
// is shared, so compare a run's two farms with each other rather than runs with runs.
// NETWORKS=… and NRS=… (per network) change the farm; LOADS=… and MOVES=… the repetitions.
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import type { Browser, Page } from 'playwright-core';
import { uiFarm, type UiFarm } from '../test/support/ui-farm.js';
import { artifact, browserUnavailable, launch } from '../test/support/browser.js';

const NETWORKS = Number(process.env.NETWORKS ?? 4000);
const NRS = Number(process.env.NRS ?? 14);
const LOADS = Number(process.env.LOADS ?? 5);
const MOVES = Number(process.env.MOVES ?? 20);

const why = browserUnavailable();
if (why) {
  console.error(`bench:ui needs Chromium: ${why}`);
  process.exit(1);
}

interface Figures {
  farm: string;
  networks: number;
  nrs: number;
  map: number[];
  networksList: number[];
  slotList: number[];
  eventToScreen: number[];
  load: string;
}

const stats = (xs: number[]): string => {
  if (!xs.length) return '-';
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return `median ${q(0.5).toFixed(0)} ms, p90 ${q(0.9).toFixed(0)} ms, min ${s[0]!.toFixed(0)}, max ${s[s.length - 1]!.toFixed(0)} (n=${s.length})`;
};

async function signedIn(browser: Browser, f: UiFarm, hash = ''): Promise<Page> {
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  await ctx.addInitScript((t) => sessionStorage.setItem('exitnode.token', t), f.farmToken);
  // tsx (esbuild, keepNames) wraps named functions of the callbacks passed to page.evaluate in
  // __name(fn, "name"), a helper that exists only in Node: give the page a no-op one.
  await ctx.addInitScript({ content: 'globalThis.__name = (fn) => fn;' });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  await page.goto(`${f.url}/ui/${hash}`);
  return page;
}

/** ms from navigation start to a performance mark of the page. */
async function markTime(page: Page, name: string): Promise<number> {
  await page.waitForFunction((n) => performance.getEntriesByName(n).length > 0, name, { timeout: 60_000 });
  return page.evaluate((n) => performance.getEntriesByName(n)[0]!.startTime, name);
}

async function measure(browser: Browser, f: UiFarm, label: string, networks: number, nrs: number): Promise<Figures> {
  const fig: Figures = {
    farm: label,
    networks,
    nrs,
    map: [],
    networksList: [],
    slotList: [],
    eventToScreen: [],
    load: '',
  };
  for (let i = 0; i < LOADS; i++) {
    for (const [hash, mark, into] of [
      ['', 'xn:map', fig.map],
      ['#/networks', 'xn:networks', fig.networksList],
      [`#/slot/${f.allocation}/1`, 'xn:slot', fig.slotList],
    ] as const) {
      const p = await signedIn(browser, f, hash);
      into.push(await markTime(p, mark));
      if (i === 0) await p.screenshot({ path: artifact(`bench-${label}-${mark.slice(3)}.png`) });
      await p.context().close();
    }
  }
  const page = await signedIn(browser, f);
  await markTime(page, 'xn:map');
  await page.waitForSelector('[data-testid=live][data-state=live]');
  // Reassign slot 1 back and forth between gw1 and gw15 (a farmer's assignment: slot.moved).
  let holder = 'gw1';
  for (let i = 0; i < MOVES; i++) {
    const to = holder === 'gw1' ? 'gw15' : 'gw1';
    await page.evaluate(
      ({ slot, to }) => {
        const w = window as unknown as { __seen?: Promise<number> };
        const el = document.querySelector(`[data-slot="${slot}"]`)!;
        w.__seen = new Promise((resolve) => {
          const check = (): boolean => {
            const now = document.querySelector(`[data-slot="${slot}"]`);
            if (now?.getAttribute('data-holder') !== to) return false;
            resolve(Date.now());
            return true;
          };
          const mo = new MutationObserver(() => check() && mo.disconnect());
          mo.observe(el.parentElement!, { subtree: true, attributes: true, childList: true });
        });
      },
      { slot: `${f.allocation}/1`, to },
    );
    const t0 = Date.now();
    await f.farmClient.assignSlot(f.allocation, 1, to);
    const seen = await page.evaluate(() => (window as unknown as { __seen: Promise<number> }).__seen);
    fig.eventToScreen.push(seen - t0);
    holder = to;
    await new Promise((r) => setTimeout(r, 300));
  }
  await page.context().close();
  fig.load = loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
  return fig;
}

const browser = await launch();
const results: Figures[] = [];
try {
  for (const [label, networks] of [
    ['empty', 0],
    ['full', NETWORKS],
  ] as const) {
    const t0 = performance.now();
    const f = await uiFarm({
      exits: 15,
      workers: Math.max(2, NRS - 1),
      networks,
      extraNrs: NRS - 1,
      tenants: 4,
      progress: (l) => console.log(l),
    });
    try {
      const o = await f.farmClient.request<{ networks: number; resources: number }>(
        'GET',
        `/v1/farms/${f.farm}/overview`,
      );
      console.log(
        `farm "${label}": ${o.networks} networks, ${o.resources} NRs, 15 slots (made in ${((performance.now() - t0) / 1000).toFixed(0)} s)`,
      );
      results.push(await measure(browser, f, label, o.networks, o.resources));
    } finally {
      await f.close();
    }
  }
} finally {
  await browser.close();
}

console.log(
  `\ndashboard in Chromium (headless), ${LOADS} loads each, ${MOVES} slot moves each; load average at the end of each:`,
);
for (const r of results) {
  console.log(`${r.farm} farm (${r.networks} networks, ${r.nrs} NRs), load average ${r.load}:`);
  console.log(`  first load, map painted:           ${stats(r.map)}`);
  console.log(`  first load, networks list painted: ${stats(r.networksList)}`);
  console.log(`  first load, slot 1's NRs painted:  ${stats(r.slotList)}`);
  console.log(`  event → screen (slot reassigned):  ${stats(r.eventToScreen)}`);
}
writeFileSync(artifact('bench-ui.json'), JSON.stringify({ at: new Date().toISOString(), results }, null, 2) + '\n');
