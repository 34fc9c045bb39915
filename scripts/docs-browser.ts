// Opens a TNoDB server's /docs in headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core, which never downloads a browser) and checks what a person would see: Swagger UI
// lists every route of the OpenAPI document (/docs/json), and the page asked nothing of any other
// host (the viewer's files come from the server itself).
//   node --import tsx scripts/docs-browser.ts URL [--screenshot FILE]     exit 1 on a failure
import { existsSync } from 'node:fs';

export const CHROMIUM = process.env.EXITNODE_CHROMIUM ?? '/usr/bin/chromium';

export interface DocsCheck {
  /** "GET /v1/farms/{name}" for every operation in /docs/json. */
  documented: string[];
  /** The same, as read from the rendered page. */
  shown: string[];
  missing: string[];
  /** Requests the page made to any other origin (each was refused). */
  foreign: string[];
  title: string;
}

export function chromiumReason(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `no Chromium at ${CHROMIUM} (apt-get install chromium)`;
}

export async function checkDocs(base: string, o: { screenshot?: string } = {}): Promise<DocsCheck> {
  const { chromium } = await import('playwright-core');
  const origin = new URL(base).origin;
  const doc = (await (await fetch(`${origin}/docs/json`)).json()) as { paths: Record<string, Record<string, unknown>> };
  const documented = Object.entries(doc.paths)
    .flatMap(([path, ops]) =>
      Object.keys(ops)
        .filter((m) => ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'].includes(m))
        .map((m) => `${m.toUpperCase()} ${path}`),
    )
    .sort();
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 2000 } });
    const foreign: string[] = [];
    await page.route('**/*', (route) => {
      const u = route.request().url();
      if (u.startsWith('data:') || new URL(u).origin === origin) return route.continue();
      foreign.push(u);
      return route.abort();
    });
    await page.goto(`${origin}/docs`, { waitUntil: 'load', timeout: 30_000 });
    await page.waitForSelector('.opblock-summary', { timeout: 30_000 });
    const shown = (
      await page.$$eval('.opblock-summary', (els) =>
        els.map((e) => {
          const m = e.querySelector('.opblock-summary-method')?.textContent?.trim() ?? '';
          const p = e.querySelector('.opblock-summary-path')?.getAttribute('data-path') ?? '';
          return `${m} ${p}`;
        }),
      )
    ).sort();
    const title = (await page.$eval('.info .title', (e) => e.childNodes[0]?.textContent ?? '')).trim();
    if (o.screenshot) await page.screenshot({ path: o.screenshot, fullPage: false });
    return { documented, shown, missing: documented.filter((r) => !shown.includes(r)), foreign, title };
  } finally {
    await browser.close();
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\/scripts\//, '/scripts/'))) {
  const [url, flag, file] = process.argv.slice(2);
  if (!url) {
    console.error('usage: docs-browser.ts URL [--screenshot FILE]');
    process.exit(2);
  }
  const why = chromiumReason();
  if (why) {
    console.error(`docs-browser: ${why}`);
    process.exit(1);
  }
  const r = await checkDocs(url, flag === '--screenshot' && file ? { screenshot: file } : {});
  console.log(
    `/docs in Chromium: "${r.title}", ${r.shown.length} operations shown of ${r.documented.length} in /docs/json; requests to other hosts: ${r.foreign.length}`,
  );
  for (const m of r.missing) console.log(`  not shown: ${m}`);
  for (const f of r.foreign) console.log(`  refused: ${f}`);
  process.exit(r.missing.length || r.foreign.length || !r.documented.length ? 1 : 0);
}
