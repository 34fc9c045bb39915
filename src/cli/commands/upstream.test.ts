// exitnode upstream as a user meets it: the text on stdout, exit 0; bad input → exit 2 and one
// line on stderr naming the value, never a stack trace. One case spawns the installed executable.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { main } from '../main.js';

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

describe('exitnode upstream', () => {
  it('prints the golden FRR configuration for the golden input', async () => {
    const r = await run('upstream', '2001:db8:5e::/48', '--slots', '1-2,15', '--router', 'frr', '--iface', 'swp1');
    assert.equal(r.code, 0, r.err);
    const golden = readFileSync(new URL('../../render/golden/frr.txt', import.meta.url), 'utf8');
    assert.equal(r.out, golden);
  });

  it('takes --via global, --upstream-ll and --upstream-ip6', async () => {
    const r = await run(
      'upstream',
      '2001:db8:5e::/48',
      '--slots',
      '3',
      '--router',
      'linux',
      '--iface',
      'swp1',
      '--via',
      'global',
      '--upstream-ll',
      'fe80::fe',
      '--upstream-ip6',
      '2001:db8:5e::fe/64',
    );
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, readFileSync(new URL('../../render/golden/linux-global.txt', import.meta.url), 'utf8'));
  });

  const bad: [string, string[], RegExp][] = [
    [
      'an unknown router',
      ['--router', 'edgeos'],
      /router "edgeos" is unknown: exitnode renders for linux, ifupdown2, frr, bird, vyos, mikrotik, cisco, junos, openwrt/,
    ],
    ['slot 0', ['--slots', '0'], /slot list "0": "0" names slot 0/],
    ['slot 16', ['--slots', '1,16'], /"16" is out of range/],
    ['a backwards range', ['--slots', '3-1'], /"3-1" is a backwards range/],
    ['a word', ['--slots', 'x'], /"x" is neither a slot number nor a range/],
    ['an interface name with a space', ['--iface', 'swp 1'], /interface name "swp 1" is not valid for frr/],
    ['a 16-character interface name', ['--iface', 'swp1234567890123'], /16 characters long; at most 15/],
    ['an unknown --via', ['--via', 'both'], /next hop kind "both" is unknown/],
    ['an unknown option', ['--slot', '1'], /--slot/],
  ];
  for (const [what, over, msg] of bad) {
    it(`exit 2 and one line for ${what}`, async () => {
      const args = new Map([
        ['--slots', '1'],
        ['--router', 'frr'],
        ['--iface', 'swp1'],
      ]);
      const extra: string[] = [];
      for (let i = 0; i < over.length; i += 2) {
        if (args.has(over[i]!)) args.set(over[i]!, over[i + 1]!);
        else extra.push(over[i]!, over[i + 1]!);
      }
      const r = await run('upstream', '2001:db8:5e::/48', ...[...args].flat(), ...extra);
      assert.equal(r.code, 2);
      assert.equal(r.out, '');
      assert.equal(r.err.trimEnd().split('\n').length, 1, r.err);
      assert.match(r.err, msg);
    });
  }

  it('exit 2 for a prefix that is not a /48, and for missing options', async () => {
    for (const argv of [
      ['2001:db8:5e::/47', '--slots', '1', '--router', 'frr', '--iface', 'swp1'],
      ['2001:db8:5e::/48', '--router', 'frr', '--iface', 'swp1'],
      ['2001:db8:5e::/48', '--slots', '1', '--iface', 'swp1'],
      ['2001:db8:5e::/48', '--slots', '1', '--router', 'frr'],
      ['--slots', '1', '--router', 'frr', '--iface', 'swp1'],
    ]) {
      const r = await run('upstream', ...argv);
      assert.equal(r.code, 2, argv.join(' '));
      assert.equal(r.err.trimEnd().split('\n').length, 1, r.err);
    }
  });

  it('works as the installed executable', () => {
    const bin = new URL('../../../bin/exitnode.js', import.meta.url).pathname;
    const r = spawnSync(
      process.execPath,
      [bin, 'upstream', '2001:db8:5e::/48', '--slots', '1', '--router', 'bird', '--iface', 'eth1'],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^\troute 2001:db8:5e:1000::\/52 via fe80::1000:0:0:1%'eth1';/m);
    const bad = spawnSync(
      process.execPath,
      [bin, 'upstream', '2001:db8:5e::/48', '--slots', '0', '--router', 'bird', '--iface', 'eth1'],
      { encoding: 'utf8' },
    );
    assert.equal(bad.status, 2);
    assert.equal(bad.stderr.trimEnd().split('\n').length, 1, bad.stderr);
  });
});
