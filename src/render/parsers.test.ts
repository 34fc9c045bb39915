// The FRR and BIRD outputs through the routers' own parsers (DESIGN.md section 7):
//   vtysh -C -f FILE   FRR's dry run: parses every line with the real command tree, needs no daemon.
//                      It reads vtysh.conf from its config directory, so each run gets a temp
//                      directory with an empty one (--config_dir): no dependence on /etc/frr, whose
//                      files are readable by root and the frr group only.
//   bird -p -c FILE    BIRD's parse-only mode.
// Each parser is also fed deliberately broken files that it must reject, so these tests fail
// when the parser stops parsing. A missing binary skips with the reason, and fails under CI=true.
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderUpstream, type UpstreamInput } from './index.js';

/** The binary on PATH, or in /usr/sbin (where Debian puts bird, often off a non-root PATH). */
function which(bin: string): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', bin], { encoding: 'utf8' });
  if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  return existsSync(`/usr/sbin/${bin}`) ? `/usr/sbin/${bin}` : undefined;
}

function needBinary(t: TestContext, bin: string, pkg: string): boolean {
  if (which(bin)) return true;
  const why = `${bin} is not installed (Debian package ${pkg})`;
  if (process.env.CI === 'true') throw new Error(`real-parser test cannot run under CI: ${why}`);
  t.skip(why);
  return false;
}

interface Parsed {
  ok: boolean;
  output: string;
}

function withTemp<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'xrl-parse-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function vtyshCheck(text: string): Parsed {
  return withTemp((dir) => {
    writeFileSync(join(dir, 'vtysh.conf'), '');
    writeFileSync(join(dir, 'upstream.conf'), text);
    const r = spawnSync(which('vtysh')!, ['--config_dir', dir, '-C', '-f', join(dir, 'upstream.conf')], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    const output = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}`;
    // vtysh -C exits non-zero on an unknown or malformed command and prints "line N: % …".
    return { ok: r.status === 0 && !/%/.test(output), output };
  });
}

function birdCheck(text: string): Parsed {
  return withTemp((dir) => {
    writeFileSync(join(dir, 'bird.conf'), text);
    const r = spawnSync(which('bird')!, ['-p', '-c', join(dir, 'bird.conf')], { encoding: 'utf8', timeout: 30_000 });
    return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}` };
  });
}

const P = '2001:db8:5e::/48';
const INPUTS: [string, Omit<UpstreamInput, 'router'>][] = [
  ['slots 1,2,15 via link-local', { prefix: P, slots: [1, 2, 15], iface: 'swp1' }],
  [
    'all fifteen slots via global, overridden addresses',
    {
      prefix: P,
      slots: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
      iface: 'eth0',
      via: 'global',
      upstreamLL: 'fe80::fe',
      upstreamIP6: '2001:db8:5e::fe',
    },
  ],
  [
    'a VLAN interface name with a dot, prefix with a zero group',
    { prefix: '2001:db8::/48', slots: [7], iface: 'eth0.100' },
  ],
];

/** Mutations a real parser must refuse: each breaks one line of a good output. */
function breakages(text: string, os: 'frr' | 'bird'): [string, string][] {
  const cases: [string, string][] =
    os === 'frr'
      ? [
          // (FRR's CLI takes unique abbreviations, so "ipv6 rout" would still be accepted.)
          ['a misspelt keyword', text.replace(/^ipv6 route /m, 'ipv6 ruote ')],
          ['a prefix length over 128', text.replace(/^ipv6 route (\S+)\/52 /m, 'ipv6 route $1/129 ')],
          ['an address that is not one', text.replace(/^ ipv6 address \S+/m, ' ipv6 address 2001:db8::zz/64')],
        ]
      : [
          ['a missing semicolon', text.replace(/(route \S+ via \S+);/, '$1')],
          [
            'host bits below the prefix length',
            text.replace(/route (\S+)\/52 /, 'route $1/51 ').replace(/:1000::\/51/, ':1000::/51'),
          ],
          ['an unknown protocol', text.replace(/^protocol static exitnode/m, 'protocol statik exitnode')],
        ];
  for (const [why, broken] of cases) assert.notEqual(broken, text, `mutation "${why}" changed nothing`);
  return cases;
}

describe("FRR output through vtysh -C (FRR's own parser)", () => {
  for (const [what, input] of INPUTS) {
    it(`accepts ${what}`, (t) => {
      if (!needBinary(t, 'vtysh', 'frr')) return;
      const text = renderUpstream({ ...input, router: 'frr' });
      const r = vtyshCheck(text);
      assert.ok(r.ok, `vtysh -C refused:\n${r.output}\n--- file:\n${text}`);
    });
  }
  it('rejects broken files (so that the check above can fail)', (t) => {
    if (!needBinary(t, 'vtysh', 'frr')) return;
    const text = renderUpstream({ ...INPUTS[0]![1], router: 'frr' });
    for (const [why, broken] of breakages(text, 'frr')) {
      const r = vtyshCheck(broken);
      assert.ok(!r.ok, `vtysh -C accepted ${why}:\n${broken}`);
    }
  });
});

describe("BIRD output through bird -p (BIRD's own parser)", () => {
  for (const [what, input] of INPUTS) {
    it(`accepts ${what}`, (t) => {
      if (!needBinary(t, 'bird', 'bird2')) return;
      const text = renderUpstream({ ...input, router: 'bird' });
      const r = birdCheck(text);
      assert.ok(r.ok, `bird -p refused:\n${r.output}\n--- file:\n${text}`);
    });
  }
  it('rejects broken files (so that the check above can fail)', (t) => {
    if (!needBinary(t, 'bird', 'bird2')) return;
    const text = renderUpstream({ ...INPUTS[0]![1], router: 'bird' });
    for (const [why, broken] of breakages(text, 'bird')) {
      const r = birdCheck(broken);
      assert.ok(!r.ok, `bird -p accepted ${why}:\n${broken}`);
    }
  });
});
