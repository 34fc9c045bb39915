// A slot of an allocation as one typed value: what leases, heartbeats and fencing talk about.
// Code that needs a Map/Set key uses slotKey(), the one place its text form is made.

export interface SlotRef {
  allocation: number;
  slot: number;
}

/** The key of a slot in a Map or Set ("A/E"); never parsed back. */
export function slotKey(s: SlotRef): string {
  return `${s.allocation}/${s.slot}`;
}
