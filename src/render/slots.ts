// The slot list of `exitnode upstream --slots 1-3,5`: which ExitNodes are enabled, each one
// needing one static route on the upstream router.
import { CoreErrors, ExitnodeError, MAX_SLOT, checkSlot, q } from '../core/index.js';

const RULE = `write slots 1 to ${MAX_SLOT} as numbers and ranges, comma separated, e.g. "1-3,5"`;

function bad(text: string, part: string, why: string): ExitnodeError {
  return new ExitnodeError(CoreErrors.SLOT_LIST_SYNTAX, `slot list ${q(text)}: ${q(part)} ${why}; ${RULE}`);
}

function slotNumber(text: string, part: string, digits: string): number {
  const n = Number(digits);
  if (n === 0)
    return fail(bad(text, part, 'names slot 0, which is PrefixZero (the upstream segment), never an ExitNode'));
  if (n > MAX_SLOT) return fail(bad(text, part, `is out of range: slots are 1 to ${MAX_SLOT}`));
  return n;
}

function fail(e: ExitnodeError): never {
  throw e;
}

/** "1-3,5" → [1, 2, 3, 5]: validated, deduplicated, sorted. Errors name the offending part. */
export function parseSlotList(text: string): number[] {
  if (text.trim() === '')
    throw new ExitnodeError(CoreErrors.SLOT_LIST_SYNTAX, `slot list ${q(text)} is empty; ${RULE}`);
  const slots = new Set<number>();
  for (const raw of text.split(',')) {
    const part = raw.trim();
    if (part === '') throw bad(text, raw, 'is an empty item (two commas in a row, or a comma at an end)');
    const m = /^(\d{1,6})(?:\s*-\s*(\d{1,6}))?$/.exec(part);
    if (!m) throw bad(text, part, 'is neither a slot number nor a range N-M');
    const lo = slotNumber(text, part, m[1]!);
    const hi = m[2] === undefined ? lo : slotNumber(text, part, m[2]);
    if (lo > hi) throw bad(text, part, `is a backwards range: write ${hi}-${lo}`);
    for (let s = lo; s <= hi; s++) slots.add(s);
  }
  return [...slots].sort((a, b) => a - b);
}

/** Validates slot numbers given as an array (the API form): each 1..15; deduplicated and sorted. */
export function checkSlots(slots: readonly number[]): number[] {
  if (!Array.isArray(slots) || slots.length === 0) {
    throw new ExitnodeError(
      CoreErrors.SLOT_LIST_SYNTAX,
      `no slots given; the upstream needs one route per enabled slot, ${RULE}`,
    );
  }
  return [...new Set(slots.map((s) => checkSlot(s)))].sort((a, b) => a - b);
}

/** [1, 2, 3, 5] → "1-3,5", the shortest list that parseSlotList reads back. */
export function formatSlotList(slots: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < slots.length;) {
    let j = i;
    while (j + 1 < slots.length && slots[j + 1] === slots[j]! + 1) j++;
    parts.push(j === i ? String(slots[i]) : j === i + 1 ? `${slots[i]},${slots[j]}` : `${slots[i]}-${slots[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}
