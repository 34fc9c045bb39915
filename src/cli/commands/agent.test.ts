// The agent and doctor commands in-process: bad input is one line and exit 2; a dry run prints
// the exact commands and runs none (it only reads the host namespace, so it needs no root).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../main.js';
import { runVerb } from './agent.js';

function io(): { out: string[]; err: string[]; io: { out(t: string): void; err(t: string): void } } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (t) => void out.push(t), err: (t) => void err.push(t) } };
}

const dir = mkdtempSync(join(tmpdir(), 'exitnode-agent-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const fixture = JSON.parse(
  readFileSync(new URL('../../../test/fixtures/views/two-tns.json', import.meta.url), 'utf8'),
) as { config: Record<string, unknown>; view: unknown };
const state = join(dir, 'state');
writeFileSync(join(dir, 'view.json'), JSON.stringify(fixture.view));
// A prefix nobody uses, so that observing the host finds none of "its" namespaces.
writeFileSync(
  join(dir, 'config.json'),
  JSON.stringify({ ...fixture.config, namespacePrefix: 'zz-cli-test-', stateDir: state }),
);

test('agent apply --dry-run prints the exact commands and runs nothing', async () => {
  const c = io();
  const code = await main(
    ['agent', 'apply', '--view', join(dir, 'view.json'), '--config', join(dir, 'config.json'), '--dry-run'],
    c.io,
  );
  assert.equal(code, 0, c.err.join('\n'));
  const text = c.out.join('\n');
  assert.match(text, /^ip -force -batch - <<'EOF'\nnetns add zz-cli-test-gw-1-1\n/);
  assert.match(
    text,
    /nsenter --net=\/run\/netns\/zz-cli-test-gw-1-1 ip -force -batch - <<'EOF'\n(.*\n)*route replace 2a02:1802:5e:1abd::\/64 via fe80::1abc:1 dev to-1abc-1 proto 77\n/,
  );
  assert.match(text, /PrivateKey = <.*wg-1abc-1\.key>/, 'keys are shown as their file, never their value');
  assert.ok(!existsSync(state), 'a dry run creates nothing, not even the state directory');
  assert.ok(!existsSync('/run/netns/zz-cli-test-gw-1-1'));
});

test('agent: bad input is one line on stderr and exit 2', async () => {
  const bad = { ...(fixture.view as Record<string, unknown>), slots: [{ allocation: 1, slot: 16, epoch: 1 }] };
  writeFileSync(join(dir, 'bad.json'), JSON.stringify(bad));
  for (const [argv, re] of [
    [
      ['agent', 'apply', '--view', join(dir, 'bad.json'), '--config', join(dir, 'config.json')],
      /view field slots\[0\]\.slot: slot 16 is out of range/,
    ],
    [
      ['agent', 'apply', '--view', join(dir, 'nope.json'), '--config', join(dir, 'config.json')],
      /cannot read the node view .*ENOENT/,
    ],
    [['agent', 'apply', '--config', join(dir, 'config.json')], /--view is required/],
    [['agent', 'frobnicate', '--config', join(dir, 'config.json')], /unknown verb "frobnicate"/],
    [['doctor', '--expect-nrs', 'many'], /--expect-nrs "many" is not a whole number/],
  ] as [string[], RegExp][]) {
    const c = io();
    assert.equal(await main(argv, c.io), 2, argv.join(' '));
    assert.equal(c.err.length, 1);
    assert.match(c.err[0]!, re);
    assert.ok(!c.err[0]!.includes('\n    at '), 'no stack trace');
  }
});

test('agent run: bad flags are one line and exit 2 (usage errors), never a stack trace', async () => {
  const cfg = join(dir, 'config.json');
  const server = 'http://127.0.0.1:9';
  const quiet = { out: () => undefined, err: () => undefined };
  for (const [args, re] of [
    [['--config', cfg, '--server', 'ftp://x', '--token', 't'], /--server "ftp:\/\/x" is not an http\(s\) URL/],
    [['--config', cfg, '--server', server], /--token TOKEN or --token-file FILE/],
    [
      ['--config', cfg, '--server', server, '--token', 't', '--resync', '0'],
      /--resync "0" must be a number of seconds > 0/,
    ],
  ] as const) {
    await assert.rejects(
      runVerb('run', [...args], quiet),
      (e: Error & { kind?: string }) => re.test(e.message) && e.kind === 'input',
    );
    const c = io();
    assert.equal(await main(['agent', 'run', ...args], c.io), 2, args.join(' '));
    assert.equal(c.err.length, 1);
    assert.match(c.err[0]!, re);
  }
});

test('doctor --json: every finding says what to change when it is not ok', async () => {
  const c = io();
  const code = await main(['doctor', '--expect-nrs', '100000', '--json'], c.io);
  const findings = JSON.parse(c.out.join('\n')) as { status: string; check: string; fix: string }[];
  assert.equal(code, 1, 'a neighbour table far too small for 100000 ExitPoints is a failure');
  const neigh = findings.find((f) => f.check === 'neighbour table')!;
  assert.equal(neigh.status, 'fail');
  assert.match(neigh.fix, /gc_thresh3=524288/);
  for (const f of findings)
    if (f.status === 'fail' || f.status === 'warn') assert.ok(f.fix.length > 0, `${f.check} says what to change`);
  if (!existsSync('/sys/module/wireguard')) {
    // userspace WireGuard: one inotify instance per wireguard-go, far more than any default limit
    const ino = findings.find((f) => f.check === 'inotify instances')!;
    assert.equal(ino.status, 'fail');
    assert.match(ino.fix, /fs\.inotify\.max_user_instances=262144/);
  }
});
