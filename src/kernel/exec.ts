// The only place that starts programs: always an argv array, never a shell string. A namespace is
// entered with `nsenter --net=/run/netns/NAME`, measured on this machine at ~2.3 ms per process
// whatever the number of namespaces, where `ip -n NAME` grows to 3.8 ms with 1000 of them.

import { spawn } from 'node:child_process';
import { ExitnodeError } from '../core/errors.js';
import { KernelErrors } from './errors.js';

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export const NETNS_DIR = '/run/netns';

/** argv that runs CMD inside namespace NS ("" = the host's own namespace, as the agent runs). */
export function inNs(ns: string, cmd: string[]): string[] {
  return ns === '' ? cmd : ['nsenter', `--net=${NETNS_DIR}/${ns}`, ...cmd];
}

export function run(argv: string[], input?: string, env?: NodeJS.ProcessEnv): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT')
        reject(
          new ExitnodeError(
            KernelErrors.KERNEL_TOOL_MISSING,
            `${argv[0]} is not installed (needed for ${argv.join(' ').slice(0, 80)})`,
          ),
        );
      else reject(e);
    });
    child.on('close', (code) =>
      resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
    );
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

/** Runs with retries while the kernel reports an interrupted dump (a table changed mid-listing). */
export async function runDump(argv: string[], input?: string): Promise<Result> {
  let r = await run(argv, input);
  for (let i = 0; i < 5 && /Dump (was|is) interrupted|dump interrupted/i.test(r.stderr); i++)
    r = await run(argv, input);
  return r;
}

/** Runs FN over ITEMS with at most N at a time (the machine has 2 cores; processes are the cost). */
export async function pool<T, R>(items: T[], n: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}

/** Splits concatenated JSON values (ip -json -batch prints one per command). */
export function splitJson(text: string): unknown[] {
  // Fast path: ip -json prints each command's list on one line.
  try {
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as unknown);
  } catch {
    /* a value spans lines: scan */
  }
  const out: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inStr = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inStr) {
      if (c === '\\') i++;
      else if (c === '"') inStr = false;
      continue;
    }
    if (c === '"') inStr = true;
    else if (c === '[' || c === '{') {
      if (depth++ === 0) start = i;
    } else if (c === ']' || c === '}') {
      if (--depth === 0) out.push(JSON.parse(text.slice(start, i + 1)));
    }
  }
  return out;
}
