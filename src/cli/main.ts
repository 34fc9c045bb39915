// The exitnode CLI entry point. `exitnode <command> …` loads src/cli/commands/<command>.ts, so only
// the code a command needs is loaded (the plan does not pay for the database driver).
// Errors: one line on stderr; exit 2 for the caller's mistakes, 1 for failures; --debug adds the stack.

import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isExitnodeError } from '../core/errors.js';
import { type CommandModule, type Io, clean, processIo } from './io.js';

const commandsDir = join(dirname(fileURLToPath(import.meta.url)), 'commands');

export function commandNames(): string[] {
  return readdirSync(commandsDir)
    .filter((f) => /^[a-z][a-z-]*\.(ts|js)$/.test(f) && !f.includes('.test.'))
    .map((f) => f.replace(/\.(ts|js)$/, ''))
    .sort();
}

export async function loadCommand(name: string): Promise<CommandModule | undefined> {
  if (!/^[a-z][a-z-]*$/.test(name) || !commandNames().includes(name)) return undefined;
  return (await import(`./commands/${name}.js`)) as CommandModule;
}

async function help(io: Io): Promise<void> {
  const lines = ['usage: exitnode <command> [options]   (exitnode <command> --help for more)', '', 'commands:'];
  for (const n of commandNames()) {
    const m = await loadCommand(n);
    if (m) lines.push(`  ${n.padEnd(11)} ${m.summary}`);
  }
  io.out(lines.join('\n'));
}

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const debug = argv.includes('--debug');
  const [name, ...rest] = argv;
  try {
    if (!name || name === 'help' || name === '--help' || name === '-h') {
      await help(io);
      return name ? 0 : 2;
    }
    if (name === '--version' || name === 'version') {
      const { readFileSync } = await import('node:fs');
      const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
        version: string;
      };
      io.out(`exitnode ${pkg.version}`);
      return 0;
    }
    const cmd = await loadCommand(name);
    if (!cmd) {
      io.err(`exitnode: unknown command ${JSON.stringify(name)}; commands: ${commandNames().join(', ')}`);
      return 2;
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      io.out(`${cmd.summary}\n\nusage: ${cmd.usage}`);
      return 0;
    }
    return await cmd.run(rest, io);
  } catch (e) {
    if (isExitnodeError(e)) {
      // One line, nothing raw: the message may quote a server's answer.
      io.err(`exitnode: ${clean(e.message)}`);
      if (debug && e.stack) io.err(e.stack);
      return e.kind === 'input' || e.kind === 'conflict' || e.kind === 'auth' ? 2 : 1;
    }
    const err = e as NodeJS.ErrnoException;
    io.err(
      `exitnode: ${clean(err?.message?.split('\n')[0] ?? String(e))}${debug ? '' : ' (run with --debug for details)'}`,
    );
    if (debug && err?.stack) io.err(err.stack);
    return 1;
  }
}
