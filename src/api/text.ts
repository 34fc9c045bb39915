// Nothing a client sends reaches a terminal raw: text with control characters is refused at the
// door, whatever the route. Refused: C0 (U+0000-U+001F, with tab, CR and LF), DEL, C1
// (U+0080-U+009F, which some terminals read as escape sequences), the line and paragraph
// separators and the bidirectional overrides and isolates (which reorder what is shown).
import { ExitnodeError } from '../core/errors.js';
import { ApiErrors } from './errors.js';

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/** The first text in `v` (a parsed body, query or params) with a control character, as [path, text, index]. */
export function findControl(v: unknown, path: string, depth = 0): [string, string, number] | undefined {
  if (typeof v === 'string') {
    const m = CONTROL.exec(v);
    return m ? [path, v, m.index] : undefined;
  }
  if (v === null || typeof v !== 'object' || depth > 32) return undefined;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const f = findControl(v[i], `${path}[${i}]`, depth + 1);
      if (f) return f;
    }
    return undefined;
  }
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    const m = CONTROL.exec(k);
    if (m) return [`${path} (a property name)`, k, m.index];
    const f = findControl(x, `${path}.${k}`, depth + 1);
    if (f) return f;
  }
  return undefined;
}

/** Throws CONTROL_CHARACTER naming the field and the character when `v` holds one. */
export function refuseControl(v: unknown, path: string): void {
  const f = findControl(v, path);
  if (!f) return;
  const [where, text, i] = f;
  const cp = text.codePointAt(i)!.toString(16).toUpperCase().padStart(4, '0');
  throw new ExitnodeError(
    ApiErrors.CONTROL_CHARACTER,
    `${where} holds the control character U+${cp} at position ${i}: text fields take printable characters only`,
    { field: where },
  );
}
