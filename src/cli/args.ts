// Argument parsing for every command: node's util.parseArgs in strict mode, with its errors turned
// into one-line USAGE errors (exit status 2) that name the offending option.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CoreErrors, ExitnodeError } from '../core/errors.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export function parse(argv: string[], options: Options, usage: string): Parsed {
  // `--lease-ttl -1`: parseArgs calls a value starting with a dash "ambiguous". A negative number
  // is a value: the command's own check then names the rule it breaks.
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (a.startsWith('--') && options[a.slice(2)]?.type === 'string' && next !== undefined && /^-[0-9.]/.test(next)) {
      args.push(`${a}=${next}`);
      i++;
    } else args.push(a);
  }
  try {
    const r = parseArgs({
      args,
      options: { ...options, debug: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    return { values: r.values as Parsed['values'], positionals: r.positionals };
  } catch (e) {
    const msg = e instanceof Error ? e.message.split('\n')[0]!.replace(/\. To specify a positional.*$/, '') : String(e);
    throw new ExitnodeError(CoreErrors.USAGE, `${msg}; usage: ${usage}`);
  }
}

/** A required option's string value, or a USAGE error naming it. */
export function need(p: Parsed, name: string, usage: string): string {
  const v = p.values[name];
  if (typeof v !== 'string' || v === '')
    throw new ExitnodeError(CoreErrors.USAGE, `--${name} is required; usage: ${usage}`);
  return v;
}

export function opt(p: Parsed, name: string): string | undefined {
  const v = p.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function flag(p: Parsed, name: string): boolean {
  return p.values[name] === true;
}

/** Exactly `n` positionals, named in the usage error. */
export function positionals(p: Parsed, names: string[], usage: string): string[] {
  if (p.positionals.length !== names.length) {
    const what =
      p.positionals.length < names.length
        ? `missing ${names
            .slice(p.positionals.length)
            .map((n) => `<${n}>`)
            .join(' ')}`
        : `unexpected argument ${JSON.stringify(p.positionals[names.length])}`;
    throw new ExitnodeError(CoreErrors.USAGE, `${what}; usage: ${usage}`);
  }
  return p.positionals;
}

export function usageError(message: string, usage: string): ExitnodeError {
  return new ExitnodeError(CoreErrors.USAGE, `${message}; usage: ${usage}`);
}
