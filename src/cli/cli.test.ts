// The CLI as a user meets it: exit status, one-line errors, JSON shapes. Most cases run main()
// in-process; a few spawn the real executable to prove `exitnode` works as installed.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { main } from './main.js';

// The worked cases of the addressing plan: a copy of the specification's vectors.json kept in the
// repository (test/fixtures/README.md).
const vectors = JSON.parse(readFileSync(new URL('../../test/fixtures/vectors.json', import.meta.url), 'utf8')) as {
  valid: {
    input: { prefix: string; allocation: number; slot: number; nr: string };
    plan: { allocation: unknown; slot: unknown };
  }[];
  invalid: { prefix: string; allocation: number; slot: number; nr: string; why: string }[];
};

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, {
    out: (t) => {
      out += t.endsWith('\n') ? t : `${t}\n`;
    },
    err: (t) => {
      err += t.endsWith('\n') ? t : `${t}\n`;
    },
  });
  return { code, out, err };
}

describe('exitnode plan', () => {
  for (const v of vectors.valid) {
    it(`--json prints the vectors.json plan for ${v.input.nr}`, async () => {
      const r = await run(
        'plan',
        v.input.prefix,
        '--allocation',
        String(v.input.allocation),
        '--nr',
        v.input.nr,
        '--json',
      );
      assert.equal(r.code, 0, r.err);
      assert.deepEqual(JSON.parse(r.out), v.plan);
      const s = await run(
        'plan',
        v.input.prefix,
        '--allocation',
        String(v.input.allocation),
        '--slot',
        String(v.input.slot),
        '--json',
      );
      assert.deepEqual(JSON.parse(s.out), { allocation: v.plan.allocation, slot: v.plan.slot });
    });
  }
  for (const v of vectors.invalid) {
    it(`exit 2 and one line for ${v.why}: ${v.prefix} ${v.allocation} ${v.slot} ${v.nr}`, async () => {
      const r = await run(
        'plan',
        v.prefix,
        '--allocation',
        String(v.allocation),
        '--slot',
        String(v.slot),
        '--nr',
        v.nr,
      );
      assert.equal(r.code, 2);
      assert.equal(r.out, '');
      assert.equal(r.err.trimEnd().split('\n').length, 1, r.err);
      assert.match(r.err, /^exitnode: /);
    });
  }
  it('--all --json prints one JSON line per NR of the slot', async () => {
    const r = await run('plan', '2001:db8:5e::/48', '--allocation', '2', '--slot', '15', '--all', '--json');
    const lines = r.out.trimEnd().split('\n');
    assert.equal(lines.length, 3840);
    assert.equal(JSON.parse(lines[0]!).id, 'f000');
    assert.equal(JSON.parse(lines.at(-1)!).id, 'feff');
    const r3 = await run('plan', '2001:db8:5e::/48', '--allocation', '2', '--slot', '3', '--all', '--json');
    assert.equal(r3.out.trimEnd().split('\n').length, 4096);
  });
  it('prints a readable table by default', async () => {
    const r = await run('plan', '2a02:1802:5e::/48', '-a', '1', '--nr', '1abc');
    assert.equal(r.code, 0);
    assert.match(r.out, /GWPubLL\s+fe80::1000:0:0:1\/64/);
    assert.match(r.out, /WGPort\s+6844\s+WireGuard UDP listen port/);
    assert.match(r.out, /2a02:1802:5e:1abc::\/64 via fe80::1abc:1 dev to-1abc-1/);
  });
  const usage: string[][] = [
    ['plan'],
    ['plan', '2001:db8::/48'],
    ['plan', '2001:db8::/48', '--allocation', '1'],
    ['plan', '2001:db8::/48', '--allocation', '1', '--all'],
    ['plan', '2001:db8::/48', '--allocation', '1', '--slot', '1', '--bogus'],
    ['plan', '2001:db8::/48', 'extra', '--allocation', '1', '--slot', '1'],
    ['plan', '2001:db8::/48', '--allocation', 'one', '--slot', '1'],
    ['plan', '2001:db8::/48', '--allocation', '1', '--slot', '2', '--nr', '1abc'],
    ['nonsense'],
  ];
  for (const argv of usage) {
    it(`usage error: ${argv.join(' ')}`, async () => {
      const r = await run(...argv);
      assert.equal(r.code, 2);
      assert.equal(r.err.trimEnd().split('\n').length, 1, r.err);
    });
  }
});

describe('exitnode explain', () => {
  it('--json gives the explanation object', async () => {
    const r = await run(
      'explain',
      '2a02:1802:5e:1abd::9',
      '--prefix',
      '2a02:1802:5e::/48',
      '--allocation',
      '1',
      '--exit',
      '1abc',
      '--json',
    );
    assert.equal(r.code, 0, r.err);
    const e = JSON.parse(r.out);
    assert.equal(e.nr, '1abd');
    assert.equal(e.path.length, 4);
  });
  it('refuses an address outside the allocation with exit 2', async () => {
    const r = await run('explain', '2001:db8::1', '--prefix', '2a02:1802:5e::/48', '--allocation', '1');
    assert.equal(r.code, 2);
    assert.match(r.err, /"2001:db8::1" is not inside the allocation 2a02:1802:5e::\/48/);
  });
});

describe('the installed executable', () => {
  const bin = new URL('../../bin/exitnode.js', import.meta.url).pathname;
  it('runs plan and exits 0', () => {
    const r = spawnSync(
      process.execPath,
      [bin, 'plan', '2001:db8::/48', '--allocation', '7', '--nr', '3fff', '--json'],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).nr.WGPort, 16383);
  });
  it('bad input: exit 2, one line on stderr, no stack trace; --debug adds the stack', () => {
    const r = spawnSync(process.execPath, [bin, 'plan', '2001:db8::/47', '--allocation', '7', '--slot', '1'], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 2);
    assert.equal(r.stderr, 'exitnode: "2001:db8::/47" is a /47; a farm allocation must be exactly a /48\n');
    const d = spawnSync(
      process.execPath,
      [bin, 'plan', '2001:db8::/47', '--allocation', '7', '--slot', '1', '--debug'],
      { encoding: 'utf8' },
    );
    assert.equal(d.status, 2);
    assert.match(d.stderr, /\n\s+at /);
  });
  it('--help lists the commands', () => {
    const r = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
    assert.equal(r.status, 0);
    assert.match(r.stdout, /plan\s+the addressing plan/);
    assert.match(r.stdout, /explain/);
  });
});
