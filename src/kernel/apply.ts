// Writers: execute a plan step by step in phase order. Within a phase, steps of different
// namespaces run side by side; a failure is recorded per object and never stops the other steps
// (nor the later phases): the next pass re-observes and converges (DESIGN.md section 6).

import { generateKeyPairSync } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import {
  keyFileName,
  logFileName,
  parsePidFileName,
  pidFileName,
  wgConfFileName,
  wgSocketName,
  WG_SOCKET_DIR,
} from '../core/ownership.js';
import { objectText, type ObjectRef } from '../reconcile/objects.js';
import { Phase, type Plan, type Step } from '../reconcile/plan.js';
import { inNs, NETNS_DIR, pool, run } from './exec.js';
import { isWgProcess, keysDir, runDir } from './observe.js';
import { keepalivedArgv, reloadKeepalived, startKeepalived, stopKeepalived } from './vrrp.js';
import { NOTIFY_SCRIPT, VRRP_FILES, vrrpDir } from '../compile/keepalived.js';

export interface StepFailure {
  /** The objects (namespace, link, address, route, table, interface) that failed: one, or all of a failed step's. */
  objects: ObjectRef[];
  /** The kernel's or the program's own words. */
  reason: string;
}

export interface ApplyOptions {
  stateDir: string;
  /** Steps of one phase run at most this many at a time. */
  concurrency?: number;
  /** Called before each step runs (tests use it to stop an apply midway). */
  onStep?: (s: Step) => void;
}

const WG_ENV = { ...process.env, WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: '1' };

/** The command a step runs, as argv (and what goes to its standard input). */
export function commandOf(s: Step, stateDir: string): { argv: string[]; input?: string } {
  switch (s.tool) {
    case 'ip':
      return { argv: inNs(s.ns, ['ip', '-force', '-batch', '-']), input: s.lines.join('\n') + '\n' };
    case 'nft':
      return { argv: inNs(s.ns, ['nft', '-f', '-']), input: s.lines.join('\n') + '\n' };
    case 'sysctl':
      return { argv: inNs(s.ns, ['sysctl', '-q', '-w', ...s.lines]) };
    case 'wg-start':
      return s.kernel
        ? { argv: inNs(s.ns, ['ip', 'link', 'add', s.name, 'type', 'wireguard']) }
        : { argv: inNs(s.ns, ['wireguard-go', '-f', s.name]) };
    case 'wg':
      return {
        argv: inNs(s.ns, ['wg', 'syncconf', s.name, join(runDir(stateDir), wgConfFileName(s.name))]),
        input: s.conf.replace('[Interface]\n', `[Interface]\nPrivateKey = <${join(keysDir(stateDir), s.keyFile)}>\n`),
      };
    case 'keygen':
      return { argv: ['(x25519 keygen)', join(keysDir(stateDir), s.keyFile)] };
    case 'kill':
      return { argv: ['kill', String(s.pid)] };
    case 'rm':
      return { argv: ['rm', '-f', join(s.file.endsWith('.key') ? keysDir(stateDir) : runDir(stateDir), s.file)] };
    case 'vrrp-start':
      return { argv: keepalivedArgv(stateDir, s.ns), input: s.vrrp.config };
    case 'vrrp-reload':
      return { argv: ['kill', '-HUP', String(s.pid)], input: s.vrrp.config };
    case 'vrrp-stop':
      return { argv: s.pid !== undefined ? ['kill', String(s.pid)] : ['rm', '-rf', vrrpDir(stateDir, s.ns)] };
  }
}

/** A word for a POSIX shell: as is when it has nothing the shell would read, else in single quotes. */
export function shellWord(a: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`;
}

/** The plan as the exact commands it runs, for --dry-run (private keys shown as their file).
 *  Every word and path is quoted for the shell, so that the output is safe to paste. */
export function planText(p: Plan, stateDir: string): string {
  const out: string[] = [];
  for (const s of p.steps) {
    const { argv, input } = commandOf(s, stateDir);
    const cmd = argv.map(shellWord).join(' ');
    if (s.tool === 'wg-start' && !s.kernel)
      out.push(
        `WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 setsid ${cmd} >${shellWord(join(runDir(stateDir), logFileName(s.name)))} 2>&1 &  # PID into ${shellWord(join(runDir(stateDir), pidFileName(s.name)))}`,
      );
    else if (s.tool === 'keygen')
      out.push(
        `umask 077; wg genkey >${shellWord(argv[1]!)}  # the agent generates it in-process (X25519), never on a command line`,
      );
    else if (s.tool === 'vrrp-start' || s.tool === 'vrrp-reload') {
      const dir = vrrpDir(stateDir, s.ns);
      out.push(
        `mkdir -p -m 0700 ${shellWord(dir)}`,
        `cat >${shellWord(join(dir, VRRP_FILES.notify))} <<'EOF'\n${NOTIFY_SCRIPT}EOF`,
        `chmod 0700 ${shellWord(join(dir, VRRP_FILES.notify))}`,
        `cat >${shellWord(join(dir, VRRP_FILES.config))} <<'EOF'\n${s.vrrp.config}EOF`,
        s.tool === 'vrrp-start' ? `setsid ${cmd} >>${shellWord(join(dir, VRRP_FILES.log))} 2>&1 &` : cmd,
      );
    } else if (s.tool === 'vrrp-stop' && s.pid !== undefined)
      out.push(`${cmd}  # and wait for it`, `rm -rf ${shellWord(vrrpDir(stateDir, s.ns))}`);
    else if (s.tool === 'wg')
      out.push(
        `cat >${shellWord(argv[argv.length - 1]!)} <<'EOF'  # mode 0600, removed after use\n${input}EOF\n${cmd}`,
      );
    else if (input !== undefined) out.push(`${cmd} <<'EOF'\n${input}EOF`);
    else out.push(cmd);
  }
  return out.join('\n');
}

/** Splits `ip -force -batch` diagnostics into per-line failures ("Command failed -:N"). */
export function batchFailures(stderr: string, objects: readonly ObjectRef[], lines: string[]): StepFailure[] {
  const out: StepFailure[] = [];
  let msg: string[] = [];
  for (const l of stderr.split('\n')) {
    const m = /^Command failed -:(\d+)$/.exec(l.trim());
    if (m) {
      const i = Number(m[1]) - 1;
      const o = objects[i];
      out.push({
        objects: o ? [o] : [],
        reason: `${o ? '' : `line ${i + 1}: `}${msg.join('; ') || 'failed'} (ip ${lines[i] ?? ''})`,
      });
      msg = [];
    } else if (l.trim()) msg.push(l.trim());
  }
  return out;
}

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 5));
  }
  return cond();
}

/** Starts wireguard-go in NS, detached, and records its PID: teardown ends it by PID. */
async function startWireguardGo(ns: string, name: string, stateDir: string): Promise<string | undefined> {
  mkdirSync(runDir(stateDir), { recursive: true, mode: 0o700 });
  const sock = join(WG_SOCKET_DIR, wgSocketName(name));
  const log = openSync(join(runDir(stateDir), logFileName(name)), 'w', 0o600);
  // nsenter execs wireguard-go in place, so the PID we get is wireguard-go's own. -f keeps it in
  // the foreground (no self-daemonising fork whose PID we would have to hunt for); detached puts
  // it in its own session, so it outlives the agent.
  const child = spawn(inNs(ns, ['wireguard-go', '-f', name])[0]!, inNs(ns, ['wireguard-go', '-f', name]).slice(1), {
    detached: true,
    stdio: ['ignore', log, log],
    env: WG_ENV,
  });
  closeSync(log);
  let exited: number | null = null;
  child.on('exit', (c) => (exited = c ?? 1));
  child.on('error', () => (exited = 127));
  child.unref();
  if (child.pid) writeFileSync(join(runDir(stateDir), pidFileName(name)), `${child.pid}\n`, { mode: 0o600 });
  // Ready when its UAPI socket exists (then the TUN exists too and can be moved).
  const ok = await waitFor(() => exited !== null || existsSync(sock), 5000);
  if (!ok || exited !== null) {
    let tail = '';
    try {
      tail = readFileSync(join(runDir(stateDir), logFileName(name)), 'utf8')
        .trim()
        .split('\n')
        .filter((l) => !/[│┌└]/.test(l))
        .slice(-2)
        .join('; ');
    } catch {
      /* no log */
    }
    return `wireguard-go ${exited !== null ? `exited with status ${exited}` : 'did not create its socket within 5 s'}${tail ? `: ${tail}` : ''}`;
  }
  return undefined;
}

/** A WireGuard private key: X25519, generated here, never leaves the node. */
export function generatePrivateKey(): { privateKey: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const d = privateKey.export({ format: 'jwk' }).d!;
  const x = publicKey.export({ format: 'jwk' }).x!;
  return {
    privateKey: Buffer.from(d, 'base64url').toString('base64'),
    publicKey: Buffer.from(x, 'base64url').toString('base64'),
  };
}

async function execStep(s: Step, stateDir: string): Promise<StepFailure[]> {
  const fail = (reason: string): StepFailure[] => [{ objects: s.objects, reason }];
  switch (s.tool) {
    case 'ip': {
      if (s.ns !== '' && !existsSync(join(NETNS_DIR, s.ns))) return fail(`namespace ${s.ns} does not exist`);
      const { argv, input } = commandOf(s, stateDir);
      const r = await run(argv, input);
      if (r.code === 0) return [];
      const f = batchFailures(r.stderr, s.objects, s.lines);
      return f.length ? f : fail(r.stderr.trim() || `ip exited with ${r.code}`);
    }
    case 'nft':
    case 'sysctl': {
      if (s.ns !== '' && !existsSync(join(NETNS_DIR, s.ns))) return fail(`namespace ${s.ns} does not exist`);
      const { argv, input } = commandOf(s, stateDir);
      const r = await run(argv, input);
      return r.code === 0 ? [] : fail(`${s.tool}: ${r.stderr.trim().split('\n').slice(0, 3).join('; ')}`);
    }
    case 'wg-start': {
      if (s.kernel) {
        const r = await run(commandOf(s, stateDir).argv);
        return r.code === 0 ? [] : fail(r.stderr.trim());
      }
      const e = await startWireguardGo(s.ns, s.name, stateDir);
      return e ? fail(e) : [];
    }
    case 'keygen': {
      mkdirSync(keysDir(stateDir), { recursive: true, mode: 0o700 });
      const { privateKey } = generatePrivateKey();
      // wx: never overwrite a key another pass wrote meanwhile.
      try {
        writeFileSync(join(keysDir(stateDir), s.keyFile), `${privateKey}\n`, { mode: 0o600, flag: 'wx' });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return fail((e as Error).message);
      }
      return [];
    }
    case 'wg': {
      let key: string;
      try {
        key = readFileSync(join(keysDir(stateDir), s.keyFile), 'utf8').trim();
      } catch (e) {
        return fail(`cannot read the private key: ${(e as Error).message}`);
      }
      const conf = s.conf.replace('[Interface]\n', `[Interface]\nPrivateKey = ${key}\n`);
      // wg cannot fopen /dev/stdin when it is a socket (as node's pipes are): a 0600 file beside
      // the keys, removed at once, keeps the key off every command line.
      mkdirSync(runDir(stateDir), { recursive: true, mode: 0o700 });
      const file = join(runDir(stateDir), wgConfFileName(s.name));
      writeFileSync(file, conf, { mode: 0o600 });
      try {
        // syncconf, not setconf: setconf replaces every peer, which drops the sessions and the
        // endpoint a roaming peer (a node behind NAT, which the view gives none) was learned at —
        // nothing reached it again until its next keepalive or rekey (15-25 s). syncconf changes
        // only what differs and leaves both alone.
        const r = await run(inNs(s.ns, ['wg', 'syncconf', s.name, file]));
        return r.code === 0 ? [] : fail(r.stderr.trim());
      } finally {
        rmSync(file, { force: true });
      }
    }
    case 'kill': {
      if (isWgProcess(s.pid, s.name)) {
        try {
          process.kill(s.pid, 'SIGTERM');
        } catch (e) {
          return fail((e as Error).message);
        }
        await waitFor(() => !isWgProcess(s.pid, s.name), 2000);
      }
      return [];
    }
    case 'rm': {
      const dir = s.file.endsWith('.key') ? keysDir(stateDir) : runDir(stateDir);
      rmSync(join(dir, s.file), { force: true });
      const wg = parsePidFileName(s.file);
      if (wg) rmSync(join(dir, logFileName(wg)), { force: true });
      return [];
    }
    case 'vrrp-start': {
      const e = await startKeepalived(stateDir, s.vrrp, NOTIFY_SCRIPT);
      return e ? fail(e) : [];
    }
    case 'vrrp-reload': {
      const e = reloadKeepalived(stateDir, s.vrrp, s.pid, NOTIFY_SCRIPT);
      return e ? fail(e) : [];
    }
    case 'vrrp-stop': {
      const e = await stopKeepalived(stateDir, s.ns, s.pid);
      return e ? fail(e) : [];
    }
  }
}

/** Executes a plan; returns every object that failed, with the kernel's reason. */
export async function applyPlan(p: Plan, opts: ApplyOptions): Promise<StepFailure[]> {
  const failures: StepFailure[] = [];
  // nft names interfaces by string only, so a gateway's nft transaction does not wait for the
  // ip batches of the same pass: both run in one group (22 ms of nft hide the ip batch).
  const group = (ph: number): number => (ph === Phase.NFT ? Phase.CONFIGURE : ph);
  const phases = [...new Set(p.steps.map((s) => group(s.phase)))].sort((a, b) => a - b);
  for (const ph of phases) {
    // The nft transactions first: a gateway's takes 15-25 ms in the kernel (an element deletion
    // waits that long even in a small set), and node's thread is blocked while it starts each
    // process (2-20 ms): the ip batch is started behind the long step, not before it.
    const steps = p.steps
      .filter((s) => group(s.phase) === ph)
      .sort((x, y) => Number(y.tool === 'nft') - Number(x.tool === 'nft'));
    const res = await pool(steps, opts.concurrency ?? 4, async (s) => {
      opts.onStep?.(s);
      try {
        if (process.env.EXITNODE_TRACE) {
          const t0 = performance.now();
          const r = await execStep(s, opts.stateDir);
          process.stderr.write(
            `trace ${(performance.now() - t0).toFixed(1)} ms ${s.tool} ${s.ns} ${'lines' in s ? s.lines.length : 1} ${s.objects[0] ? objectText(s.objects[0]) : ''}\n`,
          );
          return r;
        }
        return await execStep(s, opts.stateDir);
      } catch (e) {
        return [{ objects: s.objects, reason: (e as Error).message }];
      }
    });
    for (const r of res) failures.push(...r);
  }
  return failures;
}

export { keyFileName };
