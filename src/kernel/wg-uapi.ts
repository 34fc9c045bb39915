// WireGuard's cross-platform configuration protocol (UAPI, wireguard.com/xplatform) on
// wireguard-go's socket /var/run/wireguard/NAME.sock, and `wg` for the kernel's links: the two
// things the stage-2 agent asks of a running interface at once, without a reconcile pass.
// - kick: start a handshake with every peer now. A persistent keepalive turned on (0 → 25) sends
//   a keepalive at once, and without a session that is a handshake initiation (wireguard-go's
//   handlePostConfig, the kernel's wg_peer_set_keepalive); the previous interval is restored.
// - endpoints: what each peer's endpoint is now (learned from its packets, behind NAT).

import { createConnection } from 'node:net';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { WG_SOCKET_DIR, wgSocketName } from '../core/ownership.js';
import { ExitnodeError } from '../core/errors.js';
import { KernelErrors } from './errors.js';
import { inNs, NETNS_DIR, run } from './exec.js';

/** One UAPI operation: REQUEST (ending in a blank line) → the answer up to its blank line. */
export function uapi(name: string, request: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(join(WG_SOCKET_DIR, wgSocketName(name)));
    let out = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(
        new ExitnodeError(
          KernelErrors.KERNEL_COMMAND_FAILED,
          `${name}: no answer on its UAPI socket within ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(request));
    sock.on('data', (d: string) => {
      out += d;
      if (/(^|\n)errno=-?\d+\n\n$/.test(out)) {
        clearTimeout(timer);
        sock.end();
        resolve(out);
      }
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      if (!/errno=/.test(out))
        reject(new ExitnodeError(KernelErrors.KERNEL_COMMAND_FAILED, `${name}: UAPI socket closed without an answer`));
    });
  });
}

export interface UapiPeer {
  /** base64, as everywhere else. */
  publicKey: string;
  endpoint?: string;
  keepalive: number;
}

/** Parses a `get=1` answer: the peers. */
export function parseUapiGet(text: string): UapiPeer[] {
  const peers: UapiPeer[] = [];
  let p: UapiPeer | undefined;
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const [k, v] = [line.slice(0, eq), line.slice(eq + 1)];
    if (k === 'public_key') peers.push((p = { publicKey: Buffer.from(v, 'hex').toString('base64'), keepalive: 0 }));
    else if (p && k === 'endpoint') p.endpoint = v;
    else if (p && k === 'persistent_keepalive_interval') p.keepalive = Number(v);
  }
  return peers;
}

function checkErrno(name: string, answer: string): void {
  const m = /errno=(-?\d+)/.exec(answer);
  if (!m || m[1] !== '0')
    throw new ExitnodeError(KernelErrors.KERNEL_COMMAND_FAILED, `${name}: UAPI set failed (errno=${m?.[1] ?? '?'})`);
}

function setKeepalive(peers: UapiPeer[], secs: (p: UapiPeer) => number): string {
  let req = 'set=1\n';
  for (const p of peers)
    req += `public_key=${Buffer.from(p.publicKey, 'base64').toString('hex')}\nupdate_only=true\npersistent_keepalive_interval=${secs(p)}\n`;
  return req + '\n';
}

/** Handshake now with every peer of wireguard-go interface NAME (see the head of this file). */
export async function uapiKick(name: string): Promise<void> {
  const peers = parseUapiGet(await uapi(name, 'get=1\n\n'));
  if (!peers.length) return;
  checkErrno(
    name,
    await uapi(
      name,
      setKeepalive(peers, () => 0),
    ),
  );
  checkErrno(
    name,
    await uapi(
      name,
      setKeepalive(peers, () => 25),
    ),
  );
  const restore = peers.filter((p) => p.keepalive !== 25);
  if (restore.length)
    checkErrno(
      name,
      await uapi(
        name,
        setKeepalive(restore, (p) => p.keepalive),
      ),
    );
}

/** Peer public key → endpoint of wireguard-go interface NAME (peers without one left out). */
export async function uapiEndpoints(name: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const p of parseUapiGet(await uapi(name, 'get=1\n\n'))) if (p.endpoint) out.set(p.publicKey, p.endpoint);
  return out;
}

/** The namespace that holds kernel WireGuard link wg-h-A: an NR namespace net-h-A of some prefix. */
function kernelWgNamespace(name: string): string | undefined {
  const suffix = name.replace(/^wg-/, 'net-');
  try {
    return readdirSync(NETNS_DIR).find((n) => n.endsWith(suffix));
  } catch {
    return undefined;
  }
}

async function wgDump(ns: string, name: string): Promise<UapiPeer[]> {
  const r = await run(inNs(ns, ['wg', 'show', name, 'dump']));
  if (r.code !== 0) throw new ExitnodeError(KernelErrors.KERNEL_COMMAND_FAILED, `${name}: ${r.stderr.trim()}`);
  return r.stdout
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split('\t'))
    .filter((f) => f.length >= 8)
    .map((f) => {
      const p: UapiPeer = { publicKey: f[0]!, keepalive: f[7] === 'off' ? 0 : Number(f[7]) };
      if (f[2] !== '(none)') p.endpoint = f[2]!;
      return p;
    });
}

/** The kernel link's kick: `wg set NAME peer KEY persistent-keepalive 0`, then 25, then as it was. */
export async function kernelKick(name: string): Promise<void> {
  const ns = kernelWgNamespace(name);
  if (ns === undefined) return;
  const peers = await wgDump(ns, name);
  const set = async (ps: UapiPeer[], secs: (p: UapiPeer) => number): Promise<void> => {
    if (!ps.length) return;
    const argv = ['wg', 'set', name];
    for (const p of ps) argv.push('peer', p.publicKey, 'persistent-keepalive', String(secs(p)));
    const r = await run(inNs(ns, argv));
    if (r.code !== 0) throw new ExitnodeError(KernelErrors.KERNEL_COMMAND_FAILED, `${name}: ${r.stderr.trim()}`);
  };
  await set(peers, () => 0);
  await set(peers, () => 25);
  await set(
    peers.filter((p) => p.keepalive !== 25),
    (p) => p.keepalive,
  );
}

export async function kernelEndpoints(name: string): Promise<Map<string, string>> {
  const ns = kernelWgNamespace(name);
  const out = new Map<string, string>();
  if (ns === undefined) return out;
  for (const p of await wgDump(ns, name)) if (p.endpoint) out.set(p.publicKey, p.endpoint);
  return out;
}
