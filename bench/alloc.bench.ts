// npm run bench:alloc — NR id allocations per second and latency (p50/p99), with 32 concurrent
// clients, each figure beside a baseline measured in the same run on the same driver:
//   1. embedded: one `exitnode server` process on PGlite, over HTTP (PGlite on the event loop, the
//      default, then in a worker thread); baseline GET /healthz (one trivial database round trip
//      through the same HTTP stack).
//   2. the same PGlite driver in-process: the allocator (store.addResource, one SQL call) against a
//      plain INSERT of pre-chosen ids into a scratch table.
//   3. PostgreSQL with two `exitnode server` processes sharing one database, clients alternating
//      between them; baseline GET /healthz on the same two processes.
//   4. the pg driver in-process: the allocator against a plain INSERT of pre-chosen ids.
// Goals (issue 3): >= 1000 allocations/s embedded, >= 2000/s on PostgreSQL, zero duplicates.
// The PostgreSQL cluster is a throwaway one (test/support/pg.ts) with durable settings (fsync on).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { TnodbClient } from '../src/client/index.js';
import { openStore, type Store } from '../src/store/index.js';
import { openPg, openPglite, type SqlClient } from '../src/store/sql.js';
import { pgCluster, pgUnavailable } from '../test/support/pg.js';

const CLIENTS = 32;
const WORKERS = 64;
/** Each network gets NRs on PER_NETWORK of the WORKERS nodes (a tenant network spans a few nodes). */
const PER_NETWORK = Number(process.env.BENCH_PER_NETWORK ?? 4);
const NETWORKS = Number(process.env.BENCH_NETWORKS ?? 1536); // x 4 NRs = 6144 allocations per run
const BIN = new URL('../bin/exitnode.js', import.meta.url).pathname;

interface Result {
  n: number;
  seconds: number;
  p50: number;
  p99: number;
}

function stats(lat: number[], seconds: number): Result {
  const s = [...lat].sort((a, b) => a - b);
  return {
    n: s.length,
    seconds,
    p50: s[Math.floor(s.length * 0.5)]!,
    p99: s[Math.min(s.length - 1, Math.floor(s.length * 0.99))]!,
  };
}

async function drive<T>(
  jobs: T[],
  concurrency: number,
  fn: (job: T, worker: number) => Promise<void>,
): Promise<Result> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      while (next < jobs.length) {
        const j = jobs[next++]!;
        const s = performance.now();
        await fn(j, w);
        lat.push(performance.now() - s);
      }
    }),
  );
  return stats(lat, (performance.now() - t0) / 1000);
}

function line(name: string, r: Result): string {
  return `  ${name.padEnd(44)} ${String(Math.round(r.n / r.seconds)).padStart(7)}/s   p50 ${r.p50.toFixed(2).padStart(6)} ms   p99 ${r.p99.toFixed(2).padStart(7)} ms   (median of ${ROUNDS} rounds of ${r.n})`;
}

interface Child {
  proc: ChildProcess;
  url: string;
  exited: Promise<unknown>;
}
async function serve(args: string[], env: Record<string, string> = {}): Promise<Child> {
  // No agents heartbeat here: a long lease keeps the slots assigned for the whole run. One tenant
  // token sends every request: the per-token rate limit (issue 11) is off for a throughput figure.
  const proc = spawn(
    process.execPath,
    [BIN, 'server', '--listen', '127.0.0.1:0', '--lease-ttl', '3600', '--rate-limit', 'off', ...args],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...env },
    },
  );
  const exited = new Promise((r) => proc.on('exit', r));
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    void exited.then(() => reject(new Error(`server exited: ${out}`)));
  });
  return { proc, url, exited };
}

/** A farm with 15 assigned slots, WORKERS nodes and NETWORKS networks; returns the allocation jobs. */
async function setup(admin: TnodbClient, number: number): Promise<{ tenantToken: string; jobs: [string, string][] }> {
  const farm = `bench${number}`;
  const f = admin.as((await admin.createFarm(farm)).token);
  const tenantToken = (await admin.createTenant(`${farm}t`)).token;
  // One tenant makes every NR here: far past the default quotas (issue 11), which the admin raises.
  await admin.setTenantQuota(`${farm}t`, { networks: NETWORKS, nrs: NETWORKS * (PER_NETWORK + 1) });
  const t = admin.as(tenantToken);
  await f.addAllocation({ farm, prefix: `2001:db8:${number.toString(16)}::/48`, number });
  for (let e = 1; e <= 15; e++) {
    await f.addNode({ farm, id: `${farm}-g${e}`, exitCapable: true });
    await f.assignSlot(number, e, `${farm}-g${e}`);
  }
  for (let w = 0; w < WORKERS; w++)
    await f.addNode({ farm, id: `${farm}-w${w}`, publicIPv4: `198.51.100.${w + 1}`, exitCapable: false });
  const nets: string[] = [];
  for (let i = 0; i < NETWORKS; i++) nets.push((await t.createNetwork(`n${i}`)).id);
  const jobs: [string, string][] = [];
  // Interleaved so that concurrent clients hit different networks and slots, as real tenants would.
  for (let k = 0; k < PER_NETWORK; k++)
    nets.forEach((n, i) => jobs.push([n, `${farm}-w${(i * 7 + k * 13) % WORKERS}`]));
  return { tenantToken, jobs };
}

/** Rounds alternate baseline and allocator; the figure printed is the round with the median rate. */
const ROUNDS = 3;
/** BENCH_ONLY=pglite or BENCH_ONLY=pg runs one half (each still with its same-run baselines). */
const ONLY = process.env.BENCH_ONLY;
function median(rs: Result[]): Result {
  return [...rs].sort((a, b) => a.n / a.seconds - b.n / b.seconds)[Math.floor(rs.length / 2)]!;
}
function chunks<T>(xs: T[], n: number): T[][] {
  const size = Math.ceil(xs.length / n);
  return Array.from({ length: n }, (_, i) => xs.slice(i * size, (i + 1) * size));
}

/**
 * The load generator: node:http on keep-alive connections (one per client, reused for every
 * request), far less CPU per request than fetch, so that on 2 cores the generator takes as little
 * as possible from the servers it measures. The baseline and the allocations use the same one.
 */
function httpClient(server: string, token: string): (method: string, path: string, body?: unknown) => Promise<string> {
  const u = new URL(server);
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
  return (method, path, body) =>
    new Promise<string>((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        {
          agent,
          host: u.hostname,
          port: u.port,
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
          res.on('data', (d: string) => {
            text += d;
          });
          res.on('end', () =>
            res.statusCode! < 300 ? resolve(text) : reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`)),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
}

async function httpRun(
  urls: string[],
  adminToken: string,
  number: number,
): Promise<{ alloc: Result; base: Result; dup: number }> {
  const admin = new TnodbClient({ server: urls[0]!, token: adminToken });
  const { tenantToken, jobs } = await setup(admin, number);
  const callers = urls.map((u) => httpClient(u, tenantToken));
  const clients = Array.from({ length: CLIENTS }, (_, i) => callers[i % callers.length]!);
  const bases: Result[] = [];
  const allocs: Result[] = [];
  for (const part of chunks(jobs, ROUNDS)) {
    bases.push(
      await drive(
        part.map(() => 0),
        CLIENTS,
        async (_j, w) => {
          await clients[w]!('GET', '/healthz');
        },
      ),
    );
    allocs.push(
      await drive(part, CLIENTS, async ([n, node], w) => {
        await clients[w]!('POST', `/v1/networks/${n}/resources`, { node });
      }),
    );
  }
  const base = median(bases);
  const alloc = median(allocs);
  const ids = (await admin.as(tenantToken).listNetworks()).flatMap((n) => n.resources.map((r) => r.id));
  return {
    alloc,
    base,
    dup:
      ids.length -
      new Set(ids).size +
      (ids.length === jobs.length + NETWORKS ? 0 : Math.abs(ids.length - jobs.length - NETWORKS)),
  };
}

async function storeRun(
  store: Store,
  db: SqlClient,
  number: number,
  concurrency: number,
): Promise<{ alloc: Result; base: Result }> {
  const farm = `sbench${number}`;
  await store.createFarm(farm);
  await store.createTenant(`${farm}t`);
  await store.setTenantQuota(`${farm}t`, { networks: NETWORKS, nrs: NETWORKS * (PER_NETWORK + 1) });
  await store.createAllocation({ farm, prefix: `2001:db8:${number.toString(16)}::/48`, number });
  for (let e = 1; e <= 15; e++) {
    await store.createNode({ farm, id: `${farm}-g${e}`, exitCapable: true });
    await store.assignSlot(number, e, `${farm}-g${e}`);
  }
  for (let w = 0; w < WORKERS; w++) await store.createNode({ farm, id: `${farm}-w${w}`, exitCapable: false });
  const nets: string[] = [];
  for (let i = 0; i < NETWORKS; i++)
    nets.push((await store.createNetwork({ tenant: `${farm}t`, name: `n${i}` })).network.id);
  const jobs: [string, string][] = [];
  for (let k = 0; k < PER_NETWORK; k++)
    nets.forEach((n, i) => jobs.push([n, `${farm}-w${(i * 7 + k * 13) % WORKERS}`]));
  await db.query(
    'CREATE TABLE IF NOT EXISTS bench_baseline (allocation int, nr_id int, network_id text, node_id text, PRIMARY KEY (allocation, nr_id))',
  );
  const bases: Result[] = [];
  const allocs: Result[] = [];
  let id = 0x1000;
  for (const part of chunks(jobs, ROUNDS)) {
    bases.push(
      await drive(part, concurrency, async ([n, node]) => {
        await db.query('INSERT INTO bench_baseline VALUES ($1, $2, $3, $4)', [number, id++, n, node]);
      }),
    );
    allocs.push(
      await drive(part, concurrency, async ([n, node]) => {
        await store.addResource({ tenant: `${farm}t`, network: n, node });
      }),
    );
  }
  return { alloc: median(allocs), base: median(bases) };
}

async function main(): Promise<void> {
  console.log(
    `bench:alloc — ${CLIENTS} concurrent clients, ${NETWORKS * PER_NETWORK} allocations per run over 15 slots (${NETWORKS} networks, each with NRs on ${PER_NETWORK} of ${WORKERS} nodes)`,
  );
  const dirs: string[] = [];
  const children: Child[] = [];
  try {
    // 1. embedded server over HTTP, PGlite on the event loop (the default) and in a worker thread
    let dir = '';
    for (const worker of ONLY === 'pg' ? [] : [false, true]) {
      dir = mkdtempSync(join(tmpdir(), 'xts-bench-'));
      dirs.push(dir);
      const c = await serve(['--data', dir], { EXITNODE_PGLITE_WORKER: worker ? '1' : '0' });
      children.push(c);
      const r1 = await httpRun([c.url], readFileSync(join(dir, 'admin.token'), 'utf8').trim(), worker ? 0x7a1 : 0x7a5);
      console.log(
        `\nembedded (PGlite${worker ? ' in a worker thread, EXITNODE_PGLITE_WORKER=1' : ' on the event loop, the default'}), one server process, over HTTP`,
      );
      console.log(line('baseline: GET /healthz (SELECT 1)', r1.base));
      console.log(line('POST /v1/networks/{id}/resources', r1.alloc));
      console.log(`  duplicates: ${r1.dup}`);
      c.proc.kill('SIGTERM');
      await c.exited;
    }

    // 2. PGlite in-process
    if (ONLY !== 'pg') {
      dir = mkdtempSync(join(tmpdir(), 'xts-bench-'));
      dirs.push(dir);
      const pgl = await openPglite(join(dir, 'inproc'));
      const s2 = await openStore({ dataDir: join(dir, 'inproc2'), leaseTtlMs: 3_600_000 });
      // The store has its own PGlite; the baseline needs the same driver, so it gets a twin database.
      const r2 = await storeRun(s2, pgl, 0x7a2, CLIENTS);
      console.log('\nembedded (PGlite), in-process, no HTTP');
      console.log(line('baseline: plain INSERT of pre-chosen ids', r2.base));
      console.log(line('allocator: store.addResource (one SQL call)', r2.alloc));
      await s2.close();
      await pgl.close();
    }
    if (ONLY === 'pglite') return;

    const why = pgUnavailable();
    if (why) {
      console.log(`\nPostgreSQL: skipped (${why})`);
      return;
    }
    const cluster = await pgCluster({ fast: false });
    // 3. two server processes on one PostgreSQL
    const url = await cluster.createDb('bench');
    const d2 = [mkdtempSync(join(tmpdir(), 'xts-bench-')), mkdtempSync(join(tmpdir(), 'xts-bench-'))];
    dirs.push(...d2);
    const pair = [await serve(['--db', url, '--data', d2[0]!]), await serve(['--db', url, '--data', d2[1]!])];
    children.push(...pair);
    const token = readFileSync(join(d2[0]!, 'admin.token'), 'utf8').trim();
    const r3 = await httpRun(
      pair.map((p) => p.url),
      token,
      0x7a3,
    );
    console.log('\nPostgreSQL (durable: fsync on), two server processes, clients alternating, over HTTP');
    console.log(line('baseline: GET /healthz (SELECT 1)', r3.base));
    console.log(line('POST /v1/networks/{id}/resources', r3.alloc));
    console.log(`  duplicates: ${r3.dup}`);
    for (const p of pair) {
      p.proc.kill('SIGTERM');
      await p.exited;
    }

    // 4. pg driver in-process
    const url4 = await cluster.createDb('bench');
    const s4 = await openStore({ url: url4, poolSize: 20, leaseTtlMs: 3_600_000 });
    const db4 = await openPg(url4, { max: 20 });
    const r4 = await storeRun(s4, db4, 0x7a4, CLIENTS);
    console.log('\nPostgreSQL, pg driver in-process, no HTTP');
    console.log(line('baseline: plain INSERT of pre-chosen ids', r4.base));
    console.log(line('allocator: store.addResource (one SQL call)', r4.alloc));
    await s4.close();
    await db4.close();
    cluster.stop();
  } finally {
    for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

await main();
