#!/usr/bin/env node
// npm run bench:start — start time of the built JavaScript (dist/, what the installed package
// runs) against the TypeScript through tsx (a checkout), side by side, on the same machine in the
// same run: `exitnode --help` (spawn to exit) and the node agent (spawn of `exitnode agent run` to
// its "agent.started" log line: modules loaded, config read, metrics listening; the server it is
// given refuses connections, so the kernel is not touched and no root is needed). Medians of
// --runs N (default 10) after one warm-up run of each (tsx's transform cache is then warm, as it is
// on a node that ran the command before). Builds dist/ first unless --no-build.
//   npm run bench:start [-- --runs N] [--no-build] [--installed PREFIX] [--node PATH]
// --installed PREFIX adds a column for PREFIX/bin/exitnode (npm install -g --prefix PREFIX …);
// --node PATH runs every command with that node (default: the one running this script).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const val = (name) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : undefined);
const RUNS = Number(val('runs') ?? 10);
const NODE = val('node') ?? process.execPath;
const installed = val('installed');

if (!args.includes('--no-build')) {
  const b = spawnSync(process.execPath, [join(root, 'scripts/build.mjs')], { stdio: 'inherit' });
  if (b.status !== 0) process.exit(1);
}

const bin = join(root, 'bin/exitnode.js');
const modes = [
  { name: 'tsx (src/)', argv: [NODE, bin], env: { EXITNODE_BUILT: '' } },
  { name: 'built (dist/)', argv: [NODE, bin], env: { EXITNODE_BUILT: '1' } },
];
// The installed bin runs with the same node: its #! line would pick whichever node is first on PATH.
if (installed)
  modes.push({
    name: 'installed',
    argv: [NODE, join(installed, 'lib/node_modules/exitnode/bin/exitnode.js')],
    env: {},
  });

const dir = mkdtempSync(join(tmpdir(), 'exitnode-bench-start-'));
const config = join(dir, 'node.json');
writeFileSync(
  config,
  JSON.stringify({
    node: 'xbs1',
    namespacePrefix: 'xbs-',
    rootNamespace: '',
    publicNamespace: '',
    stateDir: join(dir, 'state'),
    uplink: { kind: 'nic', device: 'xbs0' },
    wireguard: 'auto',
  }),
);

/** Milliseconds from spawn until `done(outputSoFar)` is true, or until exit when there is no `done`. */
function timed(argv, env, done) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const ms = () => Number(process.hrtime.bigint() - t0) / 1e6;
    const child = spawn(argv[0], argv.slice(1), { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let at;
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    // The agent logs its JSON lines to stderr; look at both streams.
    const look = () => {
      if (done && at === undefined && done(out + err)) {
        at = ms();
        child.kill('SIGTERM');
      }
    };
    child.stdout.on('data', (d) => {
      out += d;
      look();
    });
    child.stderr.on('data', (d) => {
      err += d;
      look();
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const end = ms();
      if (done)
        return at === undefined ? reject(new Error(`${argv.join(' ')}: no start line\n${out}${err}`)) : resolve(at);
      if (code !== 0) return reject(new Error(`${argv.join(' ')} exited ${code}\n${err}`));
      resolve(end);
    });
  });
}

const cases = [
  { name: 'exitnode --help', args: ['--help'] },
  {
    name: 'agent run → agent.started',
    args: [
      'agent',
      'run',
      '--config',
      config,
      '--server',
      'http://127.0.0.1:9',
      '--token',
      'x',
      '--metrics',
      '127.0.0.1:0',
    ],
    done: (out) => out.includes('"event":"agent.started"'),
  },
];

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const version = spawnSync(NODE, ['--version'], { encoding: 'utf8' }).stdout.trim();
const rows = [];
try {
  for (const c of cases) {
    const row = { name: c.name, cells: [] };
    for (const m of modes) {
      await timed([...m.argv, ...c.args], m.env, c.done); // warm-up
      const xs = [];
      // Interleave nothing: one mode's runs back to back, so a cache or page cache state is its own.
      for (let i = 0; i < RUNS; i++) xs.push(await timed([...m.argv, ...c.args], m.env, c.done));
      row.cells.push({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });
    }
    rows.push(row);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const w0 = Math.max(...cases.map((c) => c.name.length)) + 2;
const cell = (c) => `${Math.round(c.median)} ms (${Math.round(c.min)}–${Math.round(c.max)})`;
const ws = modes.map((m, i) => Math.max(m.name.length, ...rows.map((r) => cell(r.cells[i]).length)) + 3);
const load = loadavg()
  .map((l) => l.toFixed(2))
  .join(' ');
console.log(`\nstart time, median of ${RUNS} runs (min–max), node ${version}, load average ${load}`);
console.log(''.padEnd(w0) + modes.map((m, i) => m.name.padEnd(ws[i])).join('') + 'tsx / built');
for (const r of rows)
  console.log(
    r.name.padEnd(w0) +
      r.cells.map((c, i) => cell(c).padEnd(ws[i])).join('') +
      `${(r.cells[0].median / r.cells[1].median).toFixed(1)}×`,
  );
