// Plain-text tables for people: aligned columns, no colours (output is often piped or logged).
// Every cell is escaped (io.ts clean()): a value with a newline or an escape sequence cannot
// draw a row of its own or move the cursor.
import { clean } from './io.js';

export function table(rows: string[][], indent = ''): string {
  const safe = rows.map((r) => r.map(clean));
  const widths: number[] = [];
  for (const r of safe)
    r.forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, c.length);
    });
  return safe
    .map(
      (r) =>
        indent +
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
          .join('  ')
          .trimEnd(),
    )
    .join('\n');
}
