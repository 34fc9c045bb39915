// Slots as the agent keeps them: the typed reference and its one text form come from
// src/core/slot-ref.ts; here a map by slot that keeps each slot's reference, so that no key is
// ever split back into numbers.

import { slotKey, type SlotRef } from '../core/slot-ref.js';

export { slotKey, type SlotRef } from '../core/slot-ref.js';

export function sameSlot(a: SlotRef, b: SlotRef): boolean {
  return a.allocation === b.allocation && a.slot === b.slot;
}

/** A map keyed by slot; it serialises (JSON, /healthz) as an object keyed by "A/E". */
export class SlotMap<V> {
  private readonly m = new Map<string, { ref: SlotRef; value: V }>();

  constructor(entries: Iterable<readonly [SlotRef, V]> = []) {
    for (const [ref, v] of entries) this.set(ref, v);
  }

  get size(): number {
    return this.m.size;
  }
  has(s: SlotRef): boolean {
    return this.m.has(slotKey(s));
  }
  get(s: SlotRef): V | undefined {
    return this.m.get(slotKey(s))?.value;
  }
  set(s: SlotRef, value: V): this {
    this.m.set(slotKey(s), { ref: { allocation: s.allocation, slot: s.slot }, value });
    return this;
  }
  delete(s: SlotRef): boolean {
    return this.m.delete(slotKey(s));
  }
  refs(): SlotRef[] {
    return [...this.m.values()].map((e) => e.ref);
  }
  values(): V[] {
    return [...this.m.values()].map((e) => e.value);
  }
  entries(): [SlotRef, V][] {
    return [...this.m.values()].map((e) => [e.ref, e.value]);
  }
  toJSON(): Record<string, V> {
    return Object.fromEntries([...this.m].map(([k, e]) => [k, e.value]));
  }
}
