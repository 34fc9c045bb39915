// Issue 11 with real processes and sockets: one data directory, one server (item 4, PGlite on
// the event loop and in a worker thread, a stale lock after kill -9); /metrics on its own
// loopback address without a token (item 8); errors of Node's HTTP parser in the API's error
// shape (item 11).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../../src/server/index.js';
import { openStore } from '../../src/store/index.js';
import { isExitnodeError } from '../../src/core/index.js';
import { ADMIN } from './helpers.js';

const BIN = new URL('../../bin/exitnode.js', import.meta.url).pathname;

interface Child {
  proc: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

function spawnServer(args: string[], env: Record<string, string> = {}): Child {
  const proc = spawn(process.execPath, [BIN, 'server', '--listen', '127.0.0.1:0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const chunks: string[] = [];
  proc.stdout!.on('data', (d: Buffer) => chunks.push(d.toString()));
  proc.stderr!.on('data', (d: Buffer) => chunks.push(d.toString()));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return { proc, out: () => chunks.join(''), exited };
}

async function until(c: Child, re: RegExp, ms = 60_000): Promise<RegExpMatchArray> {
  const end = Date.now() + ms;
  for (;;) {
    const m = re.exec(c.out());
    if (m) return m;
    if (c.proc.exitCode !== null || Date.now() > end) throw new Error(`no ${re} (exit ${c.proc.exitCode}): ${c.out()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stop(c: Child | undefined): Promise<void> {
  if (c && c.proc.exitCode === null && c.proc.signalCode === null) {
    c.proc.kill('SIGKILL');
    await c.exited;
  }
}

describe('item 4: one data directory, one server', () => {
  for (const worker of [false, true]) {
    it(`a second server on the directory refuses to start; after kill -9 the next takes the lock over (PGlite${worker ? ' in a worker thread' : ''})`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'xts-lock-'));
      const env: Record<string, string> = worker ? { EXITNODE_PGLITE_WORKER: '1' } : {};
      let a: Child | undefined;
      let c: Child | undefined;
      try {
        a = spawnServer(['--data', dir], env);
        await until(a, /listening on http/);
        const b = spawnServer(['--data', dir], env);
        assert.equal(await b.exited, 2, b.out());
        const lines = b.out().trimEnd().split('\n');
        assert.equal(lines.length, 1, b.out());
        assert.match(
          lines[0]!,
          new RegExp(`^exitnode: the data directory ".*pgdata" is in use by process ${a.proc.pid} \\(since `),
        );
        assert.ok(a.proc.exitCode === null, 'the first server still runs');

        a.proc.kill('SIGKILL');
        await a.exited;
        c = spawnServer(['--data', dir], env);
        await until(c, /listening on http/);
        assert.match(
          c.out(),
          new RegExp(`took over the lock .*pgdata\\.lock of process ${a.proc.pid} .*which is gone`),
        );
        c.proc.kill('SIGTERM');
        assert.equal(await c.exited, 0);
        assert.ok(!existsSync(join(dir, 'pgdata.lock')), 'a clean shutdown removes the lock');
      } finally {
        await stop(a);
        await stop(c);
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('holds in-process too: a second store on the directory is refused until the first closes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xts-lock-'));
    try {
      for (const pgliteWorker of [false, true]) {
        const s1 = await openStore({ dataDir: join(dir, 'db'), pgliteWorker });
        await assert.rejects(openStore({ dataDir: join(dir, 'db'), pgliteWorker: !pgliteWorker }), (e: unknown) => {
          assert.ok(isExitnodeError(e));
          assert.equal(e.code, 'DATA_DIR_LOCKED');
          assert.match(e.message, /in use by this process already/);
          return true;
        });
        await s1.close();
        const s2 = await openStore({ dataDir: join(dir, 'db'), pgliteWorker });
        await s2.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('item 8: metrics on their own loopback address', () => {
  it('serves /metrics there without a token; the API still wants the admin token', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xts-met-'));
    const srv = await startServer({
      data: dir,
      listen: '127.0.0.1:0',
      metricsListen: '127.0.0.1:0',
      adminToken: ADMIN,
      noTokenFile: true,
    });
    try {
      assert.match(srv.metricsUrl!, /^http:\/\/127\.0\.0\.1:\d+$/);
      const m = await fetch(`${srv.metricsUrl}/metrics`);
      assert.equal(m.status, 200);
      assert.match(await m.text(), /# TYPE exitnode_nrs gauge/);
      assert.equal((await fetch(`${srv.metricsUrl}/v1/farms`)).status, 404, 'nothing but /metrics there');
      assert.equal((await fetch(`${srv.url}/metrics`)).status, 401);
    } finally {
      await srv.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Sends raw bytes and returns what comes back until the server closes. */
function raw(url: string, bytes: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(port), hostname);
    let got = '';
    s.on('data', (d) => (got += d.toString()));
    s.on('error', reject);
    s.on('close', () => resolve(got));
    s.setTimeout(10_000, () => s.destroy());
    s.write(bytes);
  });
}

describe("item 11: errors of Node's HTTP parser come back in the API's error shape", () => {
  it('431 for headers too large, 400 for bad framing, with {error: {code, message}}', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xts-parse-'));
    const srv = await startServer({ data: dir, listen: '127.0.0.1:0', adminToken: ADMIN, noTokenFile: true });
    try {
      const cases: [string, number, string][] = [
        [`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'HEADERS_TOO_LARGE'],
        ['GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', 400, 'BAD_REQUEST'],
        ['POST /v1/farms HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400, 'BAD_REQUEST'],
        ['GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n', 400, 'BAD_REQUEST'],
        ['BREW /healthz HTCPCP/1.0\r\n\r\n', 400, 'BAD_REQUEST'],
      ];
      for (const [bytes, status, code] of cases) {
        const res = await raw(srv.url, bytes);
        const [head, body] = res.split('\r\n\r\n');
        assert.match(head!, new RegExp(`^HTTP/1.1 ${status} `), JSON.stringify(bytes.slice(0, 80)));
        assert.match(head!, /content-type: application\/json/i);
        const e = JSON.parse(body!).error;
        assert.equal(e.code, code);
        assert.equal(typeof e.message, 'string');
        assert.ok(e.message.length > 0 && !e.message.includes('\n'));
      }
      assert.equal((await fetch(`${srv.url}/healthz`)).status, 200, 'the server still answers');
    } finally {
      await srv.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
