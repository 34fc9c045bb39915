// The first positional of a command with actions (farm create|status|quota …): checked before the
// other arguments, so that `farm frobnicate` is told its action is unknown, not that a name is
// missing. And the value of a quota option (farm quota, tenant quota).
import { q } from '../core/errors.js';
import { opt, usageError, type Parsed } from './args.js';

export function verbOf<V extends string>(p: Parsed, verbs: readonly V[], usage: string): V {
  const v = p.positionals[0];
  if (v === undefined || !(verbs as readonly string[]).includes(v))
    throw usageError(
      `${v === undefined ? 'missing action' : `unknown action ${q(v)}`} (one of: ${verbs.join(', ')})`,
      usage,
    );
  return v as V;
}

/** A quota option's value: a whole number from 0 to 1000000, or a usage error naming the option. */
export function quotaValue(p: Parsed, name: string, usage: string): number | undefined {
  const v = opt(p, name);
  if (v === undefined) return undefined;
  if (!/^(0|[1-9][0-9]{0,6})$/.test(v) || Number(v) > 1_000_000)
    throw usageError(`--${name} ${q(v)} must be a whole number from 0 to 1000000`, usage);
  return Number(v);
}
