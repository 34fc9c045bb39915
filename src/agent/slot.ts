// A slot of an allocation as the agent refers to it: one type, one text form ("A/E", made here
// only: log fields, /healthz keys), and a map by slot that keeps each slot's reference, so that
// no key is ever split back into numbers.

export interface SlotRef {
  allocation: number;
  slot: number;
}

/** The one text form of a slot: "A/E". */
export function slotKey(s: SlotRef): string {
  return `${s.allocation}/${s.slot}`;
}

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
