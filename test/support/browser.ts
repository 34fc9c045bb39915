// Debian's Chromium driven by playwright-core, for the dashboard's browser test and bench:ui. No
// browser is ever downloaded: the Debian package (scripts/install.sh) at /usr/bin/chromium,
// headless, without the sandbox (the tests run as root). Screenshots go to artifacts/dashboard/
// (gitignored), kept after the run as the test's artefacts.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.EXITNODE_CHROMIUM ?? '/usr/bin/chromium';
export const ARTIFACTS = join(new URL('../..', import.meta.url).pathname, 'artifacts', 'dashboard');

/** Why the browser cannot run here, or undefined. */
export function browserUnavailable(): string | undefined {
  return existsSync(CHROMIUM)
    ? undefined
    : `${CHROMIUM} is missing (apt-get install chromium; scripts/install.sh does)`;
}

export async function launch(): Promise<Browser> {
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
}

export function artifact(name: string): string {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}
