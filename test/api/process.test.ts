// The server as a real process: the CLI client commands against it, graceful SIGTERM, restart
// with nothing lost, and SIGKILL in the middle of an allocation load (no half-made NR, no
// duplicate id after the restart) on PGlite and on a PostgreSQL server.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { TnodbClient } from '../../src/client/index.js';
import { isExitnodeError } from '../../src/core/index.js';
import { pgCluster, pgSkipReason } from '../support/pg.js';

const BIN = new URL('../../bin/exitnode.js', import.meta.url).pathname;

interface Child {
  proc: ChildProcess;
  url: string;
  out: string[];
  exited: Promise<number | null>;
}

async function serve(args: string[]): Promise<Child> {
  const proc = spawn(process.execPath, [BIN, 'server', '--listen', '127.0.0.1:0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: string[] = [];
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  const url = await new Promise<string>((resolve, reject) => {
    // A start that takes too long (PGlite's first initdb on a loaded machine) fails the test, and
    // the process goes too: left running it would keep writing into the directory being removed.
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`server did not start within 60 s: ${out.join('')}`));
    }, 60_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out.push(d.toString());
      const m = /listening on (http:\/\/\S+)/.exec(out.join(''));
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    proc.stderr!.on('data', (d: Buffer) => out.push(d.toString()));
    void exited.then((c) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${c}: ${out.join('')}`));
    });
  });
  return { proc, url, out, exited };
}

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('exitnode server as a process', () => {
  it('serves the CLI client commands, shuts down on SIGTERM, and restarts with nothing lost', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xts-proc-'));
    let c: Child | undefined;
    try {
      c = await serve(['--data', dir]);
      assert.match(c.out.join(''), /admin token created and written to .*admin\.token/);
      const admin = readFileSync(join(dir, 'admin.token'), 'utf8').trim();
      const S = ['--server', c.url];
      const farm = await cli('farm', 'create', 'xts-cli', ...S, '--token', admin, '--json');
      assert.equal(farm.code, 0, farm.err);
      const F = ['--token', JSON.parse(farm.out).token, ...S];
      const T = [
        '--token',
        JSON.parse((await cli('tenant', 'create', 'xts-clit', ...S, '--token', admin, '--json')).out).token,
        ...S,
      ];
      assert.equal(
        (
          await cli(
            'allocation',
            'add',
            '2001:db8:6100::/48',
            '--farm',
            'xts-cli',
            '--number',
            '961',
            '--ipv4',
            '192.0.2.31,192.0.2.32',
            '--ipv4-prefix-length',
            '24',
            '--ipv4-gateway',
            '192.0.2.1',
            ...F,
          )
        ).code,
        0,
      );
      assert.equal(
        (await cli('node', 'add', 'xts-cli-g', '--farm', 'xts-cli', '--exit', '--ipv4', '198.51.100.61', ...F)).code,
        0,
      );
      assert.equal((await cli('node', 'add', 'xts-cli-w', '--farm', 'xts-cli', ...F)).code, 0);
      const early = await cli('network', 'create', 'web', ...T);
      assert.equal(early.code, 2);
      assert.match(
        early.err,
        /^exitnode: no slot of any allocation has a node with a live lease; the farmer must assign one/,
      );
      const slot = await cli('slot', 'assign', '961', '1', 'xts-cli-g', ...F);
      assert.equal(slot.out, 'slot 1 of allocation 961 → node xts-cli-g, epoch 1, GWPubIP4 192.0.2.31/24');
      const net = JSON.parse((await cli('network', 'create', 'web', '--json', ...T)).out);
      assert.equal(net.exit, '1000');
      const add = await cli('network', 'add', net.id, 'xts-cli-w', '--idempotency-key', 'xts-k1', ...T);
      assert.equal(add.out, 'NR 1001 on node xts-cli-w: 2001:db8:6100:1001::/64');
      assert.equal(
        (await cli('network', 'add', net.id, 'xts-cli-w', '--idempotency-key', 'xts-k1', ...T)).out,
        add.out,
      );
      assert.match((await cli('network', 'show', net.id, ...T)).out, /1000\*\s+xts-cli-g\s+2001:db8:6100:1000::\/64/);
      assert.match((await cli('network', 'list', ...T)).out, new RegExp(`${net.id}\\s+web\\s+961\\s+1\\s+1000\\s+2`));
      const rmExit = await cli('network', 'rm', net.id, '1000', ...T);
      assert.equal(rmExit.code, 2);
      assert.match(rmExit.err, /ExitPoint/);
      const bad = await cli('slot', 'assign', '961', '16', 'xts-cli-g', ...F);
      assert.equal(bad.code, 2);
      assert.match(bad.err, /slot "16" is out of range/);
      const forbidden = await cli('slot', 'assign', '961', '2', 'xts-cli-g', ...T);
      assert.equal(forbidden.code, 2);
      assert.match(forbidden.err, /tenant token cannot do this/);
      assert.match((await cli('farm', 'status', 'xts-cli', ...F)).out, /961\s+2001:db8:6100::\/48\s+1\s+xts-cli-g\s+1/);

      c.proc.kill('SIGTERM');
      assert.equal(await c.exited, 0, 'graceful shutdown exits 0');
      const gone = await cli('network', 'list', ...T);
      assert.equal(gone.code, 1);
      assert.equal(gone.err, `exitnode: cannot reach server at ${c.url} (ECONNREFUSED)`);

      c = await serve(['--data', dir]);
      assert.match(c.out.join(''), /admin token: made on the first start/);
      const T2 = [...T.slice(0, 2), '--server', c.url];
      const after = JSON.parse((await cli('network', 'show', net.id, '--json', ...T2)).out);
      assert.deepEqual(after, {
        ...net,
        resources: [...net.resources, { id: '1001', node: 'xts-cli-w', prefix: '2001:db8:6100:1001::/64' }],
      });
    } finally {
      if (c && c.proc.exitCode === null) {
        c.proc.kill('SIGKILL');
        await c.exited;
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });

  for (const kind of ['PGlite', 'PostgreSQL'] as const) {
    it(
      `leaves no half-made NR and no duplicate after a SIGKILL during allocation load (${kind})`,
      { skip: kind === 'PostgreSQL' ? pgSkipReason() : undefined },
      async () => {
        const dir = mkdtempSync(join(tmpdir(), 'xts-kill-'));
        // No agent heartbeats here: a long lease keeps the slot assigned however slow the machine is.
        const dbArgs = [
          ...(kind === 'PGlite' ? ['--data', dir] : ['--db', await (await pgCluster()).createDb(), '--data', dir]),
          '--lease-ttl',
          '3600',
          // One token sends every request of the load: no rate limit for this test.
          '--rate-limit',
          'off',
        ];
        let c: Child | undefined;
        try {
          c = await serve(dbArgs);
          const admin = new TnodbClient({
            server: c.url,
            token: readFileSync(join(dir, 'admin.token'), 'utf8').trim(),
          });
          const number = kind === 'PGlite' ? 962 : 963;
          const farm = `xts-kill${number}`;
          const f = admin.as((await admin.createFarm(farm)).token);
          const tToken = (await admin.createTenant(`${farm}t`)).token;
          await admin.setTenantQuota(`${farm}t`, { networks: 40, nrs: 4096 });
          const t = admin.as(tToken);
          await f.addAllocation({ farm, prefix: `2001:db8:${number.toString(16)}0::/48`, number });
          await f.addNode({ farm, id: `${farm}-g`, exitCapable: true });
          const W = 40;
          for (let i = 0; i < W; i++) await f.addNode({ farm, id: `${farm}-w${i}`, exitCapable: false });
          await f.assignSlot(number, 4, `${farm}-g`);
          const nets: string[] = [];
          for (let i = 0; i < 40; i++) nets.push((await t.createNetwork(`n${i}`)).id);
          const jobs: { net: string; node: string; key: string }[] = [];
          for (const n of nets)
            for (let w = 0; w < W; w++) jobs.push({ net: n, node: `${farm}-w${w}`, key: `k-${n}-${w}` });
          const acked = new Map<string, string>();
          let next = 0;
          let killed = false;
          const load = Promise.all(
            Array.from({ length: 16 }, async () => {
              const cl = new TnodbClient({ server: c!.url, token: tToken });
              while (!killed && next < jobs.length) {
                const j = jobs[next++]!;
                try {
                  acked.set(j.key, (await cl.addResource(j.net, j.node, j.key)).id);
                } catch (e) {
                  if (!isExitnodeError(e) || e.code !== 'SERVER_UNREACHABLE') throw e;
                }
              }
            }),
          );
          while (acked.size < 200) await new Promise((r) => setTimeout(r, 5));
          c.proc.kill('SIGKILL');
          killed = true;
          await c.exited;
          await load;
          assert.ok(acked.size < jobs.length, 'the kill came in the middle of the load');

          c = await serve(dbArgs);
          const t2 = new TnodbClient({ server: c.url, token: tToken });
          const all = (await t2.listNetworks()).flatMap((n) => n.resources);
          const ids = all.map((r) => r.id);
          assert.equal(new Set(ids).size, ids.length, 'no id twice');
          for (const [key, id] of acked) assert.ok(ids.includes(id), `acknowledged NR ${id} (${key}) survived`);
          // The per-slot counter (kept by the same transactions) agrees with the rows: nothing half-made.
          const adm = new TnodbClient({ server: c.url, token: readFileSync(join(dir, 'admin.token'), 'utf8').trim() });
          assert.equal((await adm.getAllocation(number)).slots[3]!.nrs, all.length);
          // Retrying every request with its key: the acknowledged ones replay, the others complete, no duplicate.
          const final = new Map<string, string>();
          let k = 0;
          await Promise.all(
            Array.from({ length: 16 }, async () => {
              while (k < jobs.length) {
                const j = jobs[k++]!;
                final.set(j.key, (await t2.addResource(j.net, j.node, j.key)).id);
              }
            }),
          );
          for (const [key, id] of acked) assert.equal(final.get(key), id, `retry of ${key} returns the same NR`);
          const ids2 = (await t2.listNetworks()).flatMap((n) => n.resources.map((r) => r.id));
          assert.equal(ids2.length, 40 + jobs.length);
          assert.equal(new Set(ids2).size, ids2.length);
          assert.equal((await adm.getAllocation(number)).slots[3]!.nrs, ids2.length);
        } finally {
          if (c && c.proc.exitCode === null) {
            c.proc.kill('SIGKILL');
            await c.exited;
          }
          rmSync(dir, { recursive: true, force: true });
        }
      },
    );
  }
});
