// What `exitnode doctor` asks of the host's programs: which are installed, in which version, and
// whether a device exists. The agent runs no program itself (src/agent/doctor.ts asks here).
import { inNs, run } from './exec.js';

/** The programs the agent runs, with the flag that prints each one's version. */
const VERSION_ARGV = {
  ip: ['ip', '-V'],
  nft: ['nft', '-v'],
  wg: ['wg', '--version'],
  nsenter: ['nsenter', '--version'],
  sysctl: ['sysctl', '--version'],
  'wireguard-go': ['wireguard-go', '--version'],
  keepalived: ['keepalived', '--version'],
} as const;
export type Tool = keyof typeof VERSION_ARGV;

async function versionOf(argv: readonly string[]): Promise<string | undefined> {
  try {
    const r = await run([...argv]);
    const text = `${r.stdout}\n${r.stderr}`.split('\n').find((l) => /\d+\.\d+/.test(l));
    return r.code === 0 || text ? (text ?? '').trim() : undefined;
  } catch {
    return undefined;
  }
}

/** The version line TOOL prints, or undefined when it is not installed. */
export function toolVersion(tool: Tool): Promise<string | undefined> {
  return versionOf(VERSION_ARGV[tool]);
}

/** Whether this iproute2 prints JSON for `ip netconf` (the readers need it). */
export async function ipHasNetconfJson(): Promise<boolean> {
  // No ip at all is reported as such, not as a missing feature.
  if ((await versionOf(['ip', '-json', 'link', 'show', 'lo'])) === undefined) return true;
  return (await run(['ip', '-json', 'netconf', 'show'])).stdout.startsWith('[');
}

/** Whether device DEV exists in namespace NS ("" = the host's own). */
export async function linkExists(ns: string, dev: string): Promise<boolean> {
  return (await run(inNs(ns, ['ip', 'link', 'show', 'dev', dev]))).code === 0;
}
