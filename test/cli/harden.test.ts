// Issue 11, the CLI: every client command takes --token-file (item 10); every bad argument is
// exit 2 and one line (item 10); what the server sends is escaped before it reaches the
// terminal, and explain --iface refuses a newline (item 5); --dry-run output is safe to paste.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { startServer, type RunningServer } from '../../src/server/index.js';

const BIN = new URL('../../bin/exitnode.js', import.meta.url).pathname;
// The tests say which token they give; none comes from the environment.
for (const k of ['EXITNODE_TOKEN', 'EXITNODE_TOKEN_FILE', 'EXITNODE_SERVER']) delete process.env[k];

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

function oneLine(r: { code: number; err: string; out: string }, re: RegExp, what: string): void {
  assert.equal(r.code, 2, `${what}: exit ${r.code} ${r.err}`);
  assert.equal(r.out, '', what);
  assert.equal(r.err.trimEnd().split('\n').length, 1, `${what}: ${r.err}`);
  assert.match(r.err, re, what);
}

/** A loopback port nobody listens on (fetch refuses well-known ones such as 1). */
async function closedPort(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const a = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
}
const CLOSED = await closedPort();

const dir = mkdtempSync(join(tmpdir(), 'xts-cli-harden-'));
const tokenFile = join(dir, 'token');
writeFileSync(tokenFile, 'xn_not-a-real-token-0000000000\n', { mode: 0o600 });
after(() => rmSync(dir, { recursive: true, force: true }));

describe('item 10: every client command takes --token-file', () => {
  const NET = 'tn-000000000000';
  const commands = [
    ['farm', 'create', 'x'],
    ['farm', 'status', 'x'],
    ['farm', 'quota', 'x'],
    ['tenant', 'create', 'x'],
    ['tenant', 'quota', 'x', '--nrs', '10'],
    ['allocation', 'add', '2001:db8::/48', '--farm', 'x'],
    ['allocation', 'show', '1'],
    ['allocation', 'list'],
    ['node', 'add', 'n1', '--farm', 'x'],
    ['node', 'show', 'n1'],
    ['network', 'create', 'x'],
    ['network', 'add', NET, 'n1'],
    ['network', 'rm', NET, '1001'],
    ['network', 'delete', NET],
    ['network', 'show', NET],
    ['network', 'list'],
    ['slot', 'assign', '1', '1', 'n1'],
    ['slot', 'move', '1/1', '--to', 'n1'],
    ['slot', 'list', '1'],
  ];
  for (const argv of commands)
    it(`${argv.slice(0, 2).join(' ')} --token-file FILE`, async () => {
      // Nobody listens there: the arguments are accepted and the request is tried.
      const r = await cli(...argv, '--token-file', tokenFile, '--server', CLOSED);
      assert.equal(r.code, 1, r.err);
      assert.equal(r.err, `exitnode: cannot reach server at ${CLOSED} (ECONNREFUSED)`);
    });

  it('agent --help lists --token-file', async () => {
    const r = await cli('agent', '--help');
    assert.equal(r.code, 0);
    assert.match(r.out, /agent run --config FILE --server URL --token-file FILE/);
  });
});

describe('item 10: a bad argument is exit 2 and one line', () => {
  const T = ['--token-file', tokenFile];
  it('--server notaurl', async () => {
    oneLine(
      await cli('farm', 'status', 'x', '--server', 'notaurl', ...T),
      /--server "notaurl" is not an http\(s\) URL/,
      'url',
    );
    oneLine(await cli('network', 'list', '--server', 'ftp://h/', ...T), /--server "ftp:\/\/h\/"/, 'ftp');
  });
  it('--lease-ttl -1 names the rule, not "ambiguous"', async () => {
    const r = await cli('server', '--lease-ttl', '-1');
    oneLine(r, /--lease-ttl "-1" must be a number of seconds/, 'lease-ttl');
    assert.doesNotMatch(r.err, /ambiguous/);
    oneLine(await cli('slot', 'move', '1/1', '--to', 'n', '--wait', '-5', ...T), /--wait "-5" must be seconds/, 'wait');
  });
  it("a newline in --idempotency-key is the caller's, not the server's", async () => {
    const r = await cli('network', 'create', 'x', '--idempotency-key', 'a\nb', '--server', CLOSED, ...T);
    oneLine(r, /--idempotency-key "a\\nb" must be 1 to 200 printable ASCII characters/, 'key');
    assert.doesNotMatch(r.err, /cannot reach/);
  });
  it('server --data on a file says so, without a raw EEXIST', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    const r = await cli('server', '--data', file, '--listen', '127.0.0.1:0');
    oneLine(r, /the data directory ".*a-file" is a file, not a directory/, 'file');
    assert.doesNotMatch(r.err, /EEXIST:/);
  });
  it('server --data /proc/self/nope ends at once with one line', () => {
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [BIN, 'server', '--data', '/proc/self/nope', '--listen', '127.0.0.1:0'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(r.status, 2, `exit ${r.status} signal ${r.signal} after ${Date.now() - t0} ms: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^exitnode: the data directory "\/proc\/self\/nope" cannot be created \(ENOENT\)\n$/);
  });
  it('an unknown action is called so, not a missing name', async () => {
    for (const c of ['farm', 'tenant', 'node']) {
      const r = await cli(c, 'frobnicate', ...T);
      oneLine(r, /unknown action "frobnicate" \(one of: /, c);
      assert.doesNotMatch(r.err, /missing/);
    }
  });
  it('a token file that cannot be read, or holds no token', async () => {
    oneLine(
      await cli('network', 'list', '--token-file', join(dir, 'nope')),
      /cannot read --token-file ".*nope": ENOENT/,
      'missing',
    );
    const bad = join(dir, 'bad-token');
    writeFileSync(bad, 'two words\n');
    oneLine(await cli('network', 'list', '--token-file', bad), /does not hold a token/, 'bad');
  });
  it('no token: the message names the scope the command needs', async () => {
    oneLine(
      await cli('farm', 'create', 'x', '--server', CLOSED),
      /this command needs an admin token: give --token-file FILE/,
      'farm',
    );
    oneLine(await cli('network', 'list', '--server', CLOSED), /needs a tenant token/, 'tenant');
  });
});

describe("item 10: the server's refusal names the scope it needs", () => {
  let srv: RunningServer;
  let sdir: string;
  before(async () => {
    sdir = mkdtempSync(join(tmpdir(), 'xts-cli-srv-'));
    srv = await startServer({ data: sdir, listen: '127.0.0.1:0' });
  });
  after(async () => {
    await srv.close();
    rmSync(sdir, { recursive: true, force: true });
  });
  it('a farm token creating a farm is told it needs an admin token', async () => {
    const admin = join(sdir, 'admin.token');
    const f = await cli('farm', 'create', 'xts-scope', '--server', srv.url, '--token-file', admin, '--json');
    assert.equal(f.code, 0, f.err);
    writeFileSync(join(sdir, 'farm.token'), JSON.parse(f.out).token);
    const r = await cli('farm', 'create', 'xts-other', '--server', srv.url, '--token-file', join(sdir, 'farm.token'));
    oneLine(r, /^exitnode: a farm token cannot do this; it needs an admin token$/, 'scope');
    assert.ok(readFileSync(admin, 'utf8').startsWith('xn_'));
  });
});

describe('item 5: nothing from the server reaches the terminal raw', () => {
  let fake: Server;
  let url: string;
  const ESC = '\u001b';
  before(async () => {
    fake = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/v1/allocations/1')
        res.end(
          JSON.stringify({
            number: 1,
            farm: 'f',
            prefix: '2001:db8::/48',
            upstream: { ll: 'fe80::1', ip6: '2001:db8::1' },
            slots: [
              {
                allocation: 1,
                slot: 1,
                node: `g1${ESC}[2J${ESC}[H`,
                epoch: 1,
                leaseExpiresAt: null,
                nrs: 1,
                health: `down\n1/2  evil  9  0.0s  -  ok  0  -  -`,
              },
            ],
          }),
        );
      else if (req.url === '/v1/farms/f')
        res.end(JSON.stringify({ id: 'f', allocations: [], nodes: [], warnings: [`w\n${ESC}]0;title\u0007x`] }));
      else {
        res.statusCode = 400;
        res.end(JSON.stringify({ error: { code: 'X', message: `refused${ESC}[31m\nexitnode: all good` } }));
      }
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    const a = fake.address();
    url = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  });
  after(() => new Promise<void>((r) => fake.close(() => r())));

  it('slot list: one row per slot, escape sequences shown as text', async () => {
    const r = await cli('slot', 'list', '1', '--server', url, '--token-file', tokenFile);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out.split('\n').length, 2, `a header and one row:\n${r.out}`);
    assert.ok(!r.out.includes(ESC), 'no escape character');
    assert.match(r.out, /g1\\u001b\[2J\\u001b\[H/);
    assert.match(r.out, /down\\u000a1\/2 {2}evil/);
  });
  it('farm status warnings and server messages: escaped, on one line', async () => {
    const s = await cli('farm', 'status', 'f', '--server', url, '--token-file', tokenFile);
    assert.equal(s.code, 0, s.err);
    assert.ok(!s.out.includes(ESC) && !s.out.includes('\u0007'));
    assert.match(s.out, /^warning: w\\u000a\\u001b\]0;title\\u0007x$/m);
    const e = await cli('network', 'list', '--server', url, '--token-file', tokenFile);
    oneLine(e, /^exitnode: refused\\u001b\[31m\\u000aexitnode: all good$/, 'message');
  });
  it('explain --iface refuses a newline (it drew a fake path step)', async () => {
    const r = await cli(
      'explain',
      '2a02:1802:5e:1abd::9',
      '--prefix',
      '2a02:1802:5e::/48',
      '--allocation',
      '1',
      '--iface',
      'eth0\n  5. fake: route',
    );
    oneLine(r, /--iface "eth0\\n {2}5\. fake: route" is not an interface name/, 'iface');
    const ok = await cli(
      'explain',
      '2a02:1802:5e::9',
      '--prefix',
      '2a02:1802:5e::/48',
      '--allocation',
      '1',
      '--iface',
      'eth0',
    );
    assert.equal(ok.code, 0, ok.err);
  });
});

describe('item 10: --dry-run output is safe to paste', () => {
  it('quotes every path, the state directory with a space and a $( ) in it', async () => {
    const fixture = JSON.parse(readFileSync(new URL('../fixtures/views/two-tns.json', import.meta.url), 'utf8')) as {
      config: Record<string, unknown>;
      view: unknown;
    };
    const state = join(dir, 'st ate;$(touch pwned)');
    writeFileSync(join(dir, 'view.json'), JSON.stringify(fixture.view));
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ ...fixture.config, namespacePrefix: 'zz-cli-hq-', stateDir: state }),
    );
    const r = await cli(
      'agent',
      'apply',
      '--view',
      join(dir, 'view.json'),
      '--config',
      join(dir, 'config.json'),
      '--dry-run',
    );
    assert.equal(r.code, 0, r.err);
    let heredoc = false;
    let paths = 0;
    for (const line of r.out.split('\n')) {
      if (heredoc) {
        if (line === 'EOF') heredoc = false;
        continue;
      }
      if (line.includes("<<'EOF'")) heredoc = true;
      for (let i = line.indexOf(state); i >= 0; i = line.indexOf(state, i + 1)) {
        paths++;
        assert.equal(line[i - 1], "'", `an unquoted path in: ${line}`);
      }
    }
    assert.ok(paths > 0, 'the plan names files in the state directory');
  });
});
