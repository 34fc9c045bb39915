// npm run bench:polls — can one token's long-polls stall TNoDB? (issue 11)
// One `exitnode server` process on PGlite with its default limits. Two phases in one run:
//   baseline  no poll open; a tenant writes every 100 ms; /healthz and the heartbeats of 5 other
//             nodes are timed (BASELINE_S seconds);
//   polls     the same, plus POLLS (2,000) concurrent long-polls of one node's view by that node's
//             token, each asking again at once when answered 200 (as an agent does) and after
//             Retry-After when refused 429 (as a polite client does) (LOAD_S = 30 seconds).
// Every write changes the polled node's view, so that every held poll is woken every 100 ms.
// The probes (/healthz every 20 ms, each other node's heartbeat every 100 ms) and the tenant's
// writes run in a worker thread with their own connections, so that the 2,000 sockets of this
// thread do not delay them (nor count in their times).
// Printed: p50/p90/p99/max of each probe in both phases, the server's CPU time in each (and this
// bench's own, which shares the machine), what the polls got (200, 429 by code), the views the
// server built against the answers it sent (from its /metrics), the load average.
// BENCH_SERVER_NODE_ARGS: node options for the server, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p".
// Goal: /healthz and the heartbeats within 100 ms at p99 with the polls open; the excess polls 429.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { TnodbClient } from '../src/client/index.js';

const POLLS = Number(process.env.BENCH_POLLS ?? 2000);
const LOAD_S = Number(process.env.BENCH_LOAD_S ?? 30);
const BASELINE_S = Number(process.env.BENCH_BASELINE_S ?? 10);
const OTHERS = 5;
const WRITE_MS = 100;
const BIN = new URL('../bin/exitnode.js', import.meta.url).pathname;

interface Reply {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

function http(agent: Agent, base: URL, token: string, method: string, path: string, body?: unknown): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        agent,
        host: base.hostname,
        port: base.port,
        method,
        path,
        headers: {
          authorization: `Bearer ${token}`,
          ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, body: text, headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** The probe loop, as plain JavaScript for a worker thread: times /healthz and the heartbeats. */
const PROBE = `
const { parentPort, workerData } = require('node:worker_threads');
const { Agent, request } = require('node:http');
const { performance } = require('node:perf_hooks');
const { url, others, writer } = workerData;
const base = new URL(url);
const agent = new Agent({ keepAlive: true, maxSockets: 16 });
let on = false;
const lat = { healthz: [], heartbeat: [], writes: [] };
let errors = 0;
let writeErrors = 0;
let nr;
function call(method, path, token, body) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers = token ? { authorization: 'Bearer ' + token } : {};
    if (payload) Object.assign(headers, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
    const req = request({ agent, host: base.hostname, port: base.port, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve([res.statusCode, performance.now() - t0, text]));
    });
    req.on('error', () => resolve([0, performance.now() - t0, '']));
    req.end(payload);
  });
}
async function loop(every, fn) {
  while (on) {
    const t0 = performance.now();
    await fn();
    const left = every - (performance.now() - t0);
    if (left > 0) await new Promise((r) => setTimeout(r, left));
  }
}
parentPort.on('message', (m) => {
  if (m === 'start') {
    on = true;
    lat.healthz = []; lat.heartbeat = []; lat.writes = []; errors = 0; writeErrors = 0;
    void loop(20, async () => {
      const [s, ms] = await call('GET', '/healthz');
      if (s === 200) lat.healthz.push(ms); else errors++;
    });
    // The writer: add, remove, add, … an NR on the polled node (its view changes every time).
    const nrs = '/v1/networks/' + writer.network + '/resources';
    void loop(${WRITE_MS}, async () => {
      const [s, ms, text] = nr
        ? await call('DELETE', nrs + '/' + nr, writer.token)
        : await call('POST', nrs, writer.token, { node: writer.node });
      if (s === 204 || s === 200) nr = undefined;
      else if (s === 201) nr = JSON.parse(text).id;
      if (s >= 200 && s < 300) lat.writes.push(ms); else writeErrors++;
    });
    for (const o of others)
      void loop(100, async () => {
        const [s, ms] = await call('POST', '/v1/nodes/' + o.id + '/heartbeat', o.token);
        if (s === 200) lat.heartbeat.push(ms); else errors++;
      });
  } else if (m === 'stop') {
    on = false;
    setTimeout(() => parentPort.postMessage({ ...lat, errors, writeErrors }), 300);
  }
});
`;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]! : NaN;
}
const fmt = (xs: number[]): string =>
  `p50 ${pct(xs, 50).toFixed(1).padStart(6)}  p90 ${pct(xs, 90).toFixed(1).padStart(6)}  p99 ${pct(xs, 99)
    .toFixed(1)
    .padStart(7)}  max ${Math.max(...xs)
    .toFixed(1)
    .padStart(7)} ms (${xs.length})`;
const load = (): string =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

/** CPU time (user + system) the process has used, in ms (Linux /proc; NaN elsewhere). */
function cpuMs(pid: number | undefined): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime, in USER_HZ (100)
  } catch {
    return NaN;
  }
}

async function metric(base: URL, admin: string, name: string): Promise<number> {
  const r = await http(new Agent(), base, admin, 'GET', '/metrics');
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(r.body);
  return m ? Number(m[1]) : NaN;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'exitnode-bench-polls-'));
  // No agents: a long lease keeps the slot assigned for the whole run. Default limits otherwise.
  const proc = spawn(
    process.execPath,
    [
      ...(process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean),
      BIN,
      'server',
      '--listen',
      '127.0.0.1:0',
      '--lease-ttl',
      '3600',
      '--data',
      dir,
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const exited = new Promise((r) => proc.on('exit', r));
  let worker: Worker | undefined;
  try {
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      proc.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening on (\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      void exited.then(() => reject(new Error(`server exited: ${out}`)));
    });
    const adminToken = readFileSync(join(dir, 'admin.token'), 'utf8').trim();
    const admin = new TnodbClient({ server: url, token: adminToken });
    const number = 0xb0;
    const farm = 'bench-polls';
    const f = admin.as((await admin.createFarm(farm)).token);
    const tenantToken = (await admin.createTenant(`${farm}-t`)).token;
    const t = admin.as(tenantToken);
    await f.addAllocation({ farm, prefix: '2001:db8:b0::/48', number });
    await f.addNode({ farm, id: `${farm}-g`, publicIPv4: '198.51.100.1', exitCapable: true });
    await f.assignSlot(number, 1, `${farm}-g`);
    const victim = `${farm}-w`;
    const victimToken = (await f.addNode({ farm, id: victim, publicIPv4: '198.51.100.2', exitCapable: false })).token;
    const others: { id: string; token: string }[] = [];
    for (let i = 0; i < OTHERS; i++) {
      const id = `${farm}-o${i}`;
      others.push({ id, token: (await f.addNode({ farm, id, exitCapable: false })).token });
    }
    const net = await t.createNetwork('n');
    for (const o of others) await t.addResource(net.id, o.id);

    worker = new Worker(PROBE, {
      eval: true,
      workerData: { url, others, writer: { token: tenantToken, network: net.id, node: victim } },
    });
    interface Probed {
      healthz: number[];
      heartbeat: number[];
      writes: number[];
      errors: number;
      writeErrors: number;
    }
    const probe = async (seconds: number): Promise<Probed> => {
      worker!.postMessage('start');
      await new Promise((r) => setTimeout(r, seconds * 1000));
      const got = new Promise<Probed>((r) => worker!.once('message', r));
      worker!.postMessage('stop');
      return got;
    };

    const loadStart = load();
    console.log(
      `bench:polls — ${POLLS} long-polls by one node token, a write every ${WRITE_MS} ms; server ${url} (PGlite)`,
    );
    console.log(`load average at start: ${loadStart}`);

    // Phase 1: baseline, no polls.
    const cpu0 = cpuMs(proc.pid);
    const base = await probe(BASELINE_S);
    const cpuBase = (cpuMs(proc.pid) - cpu0) / BASELINE_S / 10;
    const loadBase = load();

    // Phase 2: the polls.
    const base2 = new URL(url);
    const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
    const got = new Map<string, number>();
    let polling = true;
    const buildsBefore = await metric(base2, adminToken, 'exitnode_view_builds_total');
    const hitsBefore = await metric(base2, adminToken, 'exitnode_view_cache_hits_total');
    let version = JSON.parse((await http(agent, base2, victimToken, 'GET', `/v1/nodes/${victim}/view`)).body)
      .version as number;
    let heldMax = 0;
    const poller = async (): Promise<void> => {
      let after = version;
      while (polling) {
        let r: Reply;
        try {
          r = await http(agent, base2, victimToken, 'GET', `/v1/nodes/${victim}/view?after=${after}&wait=25`);
        } catch {
          got.set('error', (got.get('error') ?? 0) + 1);
          await new Promise((res) => setTimeout(res, 1000));
          continue;
        }
        const code = r.status === 200 ? '200' : `${r.status} ${String(JSON.parse(r.body).error?.code)}`;
        got.set(code, (got.get(code) ?? 0) + 1);
        if (r.status === 200) {
          after = JSON.parse(r.body).version;
          version = Math.max(version, after);
        } else {
          const s = Number(r.headers['retry-after'] ?? 1);
          await new Promise((res) => setTimeout(res, (Number.isFinite(s) ? s : 1) * 1000));
        }
      }
    };
    const pollers = Array.from({ length: POLLS }, () => poller());
    const sampler = setInterval(() => {
      void metric(base2, adminToken, 'exitnode_longpolls_open').then((n) => (heldMax = Math.max(heldMax, n)));
    }, 1000);
    const cpu1 = cpuMs(proc.pid);
    const self1 = process.cpuUsage();
    const under = await probe(LOAD_S);
    const cpuUnder = (cpuMs(proc.pid) - cpu1) / LOAD_S / 10;
    const selfUnder = process.cpuUsage(self1);
    const cpuClient = (selfUnder.user + selfUnder.system) / 1000 / LOAD_S / 10;
    clearInterval(sampler);
    const loadEnd = load();
    const builds = (await metric(base2, adminToken, 'exitnode_view_builds_total')) - buildsBefore;
    const hits = (await metric(base2, adminToken, 'exitnode_view_cache_hits_total')) - hitsBefore;
    polling = false;
    proc.kill('SIGTERM'); // ends the held polls (graceful shutdown answers them)
    await Promise.race([Promise.all(pollers), new Promise((r) => setTimeout(r, 10_000))]);
    agent.destroy();

    console.log('');
    console.log(`baseline (no polls, ${BASELINE_S} s):`);
    console.log(`  GET /healthz                   ${fmt(base.healthz)}`);
    console.log(`  heartbeat of ${OTHERS} other nodes    ${fmt(base.heartbeat)}`);
    console.log(`  tenant writes                  ${fmt(base.writes)}   (${base.writeErrors} failed)`);
    console.log(
      `  probe errors ${base.errors}; server CPU ${cpuBase.toFixed(0)}% of a core; load average after: ${loadBase}`,
    );
    console.log(`with ${POLLS} long-polls open (${LOAD_S} s):`);
    console.log(`  GET /healthz                   ${fmt(under.healthz)}`);
    console.log(`  heartbeat of ${OTHERS} other nodes    ${fmt(under.heartbeat)}`);
    console.log(`  tenant writes                  ${fmt(under.writes)}   (${under.writeErrors} failed)`);
    console.log(
      `  probe errors ${under.errors}; server CPU ${cpuUnder.toFixed(0)}% of a core (this bench's ${cpuClient.toFixed(0)}%); load average after: ${loadEnd}`,
    );
    console.log(
      `  polls answered: ${[...got]
        .sort()
        .map(([k, n]) => `${k}: ${n}`)
        .join(', ')}; at most ${heldMax} held at once`,
    );
    console.log(
      `  views built: ${builds} for ${got.get('200') ?? 0} answers of 200 and ${under.writes.length} writes (cache hits ${hits})`,
    );
    const ok = (xs: number[]): string => (pct(xs, 99) < 100 ? 'PASS' : 'FAIL');
    console.log(
      `goal: /healthz p99 < 100 ms ${ok(under.healthz)}; heartbeats p99 < 100 ms ${ok(under.heartbeat)}; excess polls 429 ${
        [...got.keys()].some((k) => k.startsWith('429 LONG_POLL_LIMIT')) ? 'PASS' : 'FAIL'
      }`,
    );
  } finally {
    await worker?.terminate();
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
