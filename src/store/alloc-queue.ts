// Adding NRs: the group commit of allocations, and what the database answers. Requests that arrive while this instance's allocation
// transaction is in flight wait, and go together in the next call of xn_add_resources: one
// plpgsql call and one commit (WAL flush) per batch. The queue only groups; the database decides
// (see 003_batch_alloc.sql). One batch in flight per instance, whatever the slots: on PostgreSQL,
// one queue per slot measured at half the rate of one queue (bench:alloc, two instances: 1272/s
// against 2336-2481/s), the batches of 15 queues being mostly of one request.
import { ExitnodeError, allocation as planAllocation, nrIdText, nrPrefix, q } from '../core/index.js';
import type { StoreContext } from './context.js';
import { StoreErrors } from './errors.js';
import type { ResourceRecord } from './types.js';

/** One request: add an NR of `network` on `node` for `tenant`. */
export interface AllocRequest {
  tenant: string;
  network: string;
  node: string;
  idempotencyKey?: string;
}

/** xn_add_resources' answer to one request: a status and, by status, the NR id, the slot's NR count, a detail. */
export interface AddRow {
  status: string;
  nr_id: number | null;
  nr_count: number | null;
  detail: string | null;
}

interface AllocItem {
  r: AllocRequest;
  resolve(row: AddRow | undefined): void;
  reject(e: unknown): void;
}

/** What Store.addResource answers. */
export interface AddResourceResult {
  resource: ResourceRecord;
  replay: boolean;
  slotNrs: number;
  allocation: number;
  slot: number;
}

/** Items per xn_add_resources call: past this a batch holds the slot lock long enough to hurt the other instance. */
const MAX_ALLOC_BATCH = 64;

export class AllocationQueue {
  private items: AllocItem[] = [];
  private busy = false;

  constructor(private readonly ctx: StoreContext) {}

  private plans = new Map<string, ReturnType<typeof planAllocation>>();
  /** Allocations never change once registered, so their parsed plan is kept. */
  private plan(number: number, prefix: string): ReturnType<typeof planAllocation> {
    const k = `${number} ${prefix}`;
    let p = this.plans.get(k);
    if (!p) this.plans.set(k, (p = planAllocation(prefix, number)));
    return p;
  }

  /** Adds an NR through the queue and turns the database's answer into the Store's (or its error). */
  async addResource(r: AllocRequest): Promise<AddResourceResult> {
    const key = r.idempotencyKey;
    const row = await this.add(r);
    const id = row?.nr_id === null || row?.nr_id === undefined ? undefined : nrIdText(Number(row.nr_id));
    switch (row?.status) {
      case 'ok':
      case 'replay': {
        // detail carries the allocation's /48: no second round trip to shape the answer.
        const [number, prefix] = String(row.detail).split(' ');
        const nr = Number(row.nr_id);
        const resource = { id: id!, node: r.node, prefix: nrPrefix(this.plan(Number(number), prefix!), nr).toString() };
        if (row.status === 'ok') this.ctx.changed(row);
        return {
          resource,
          replay: row.status === 'replay',
          slotNrs: Number(row.nr_count),
          allocation: Number(number),
          slot: nr >> 12,
        };
      }
      case 'no_network':
        throw new ExitnodeError(StoreErrors.NETWORK_UNKNOWN, `network ${q(r.network)} does not exist or is not yours`);
      // One answer for a node that does not exist and a node of another farm: nothing is said
      // about other farms' nodes.
      case 'no_node':
      case 'node_farm':
        throw new ExitnodeError(
          StoreErrors.NODE_UNKNOWN,
          `node ${q(r.node)} is not a node of the farm that holds the allocation of network ${q(r.network)}`,
        );
      case 'node_taken':
        throw new ExitnodeError(
          StoreErrors.NR_NODE_TAKEN,
          `network ${q(r.network)} has NR ${id} on node ${q(r.node)} already; a network has one NR per node`,
        );
      case 'full':
        throw new ExitnodeError(
          StoreErrors.SLOT_FULL,
          `the slot of network ${q(r.network)} is full: every NR id is in use${Number(row.detail) ? ` or in quarantine (${row.detail} ids)` : ''}; the farmer should enable another ExitNode (assign a node to another slot) for new networks`,
        );
      case 'idem_mismatch':
        throw new ExitnodeError(
          StoreErrors.IDEMPOTENCY_MISMATCH,
          `Idempotency-Key ${q(key)} was used for NR ${id} of network/node ${q(row.detail)}, not for this request`,
        );
      case 'idem_gone':
        throw new ExitnodeError(
          StoreErrors.IDEMPOTENCY_GONE,
          `Idempotency-Key ${q(key)} made NR ${id}, which has been removed since; use a new key`,
        );
      default:
        throw new Error(`xn_add_resource returned ${q(row)}`);
    }
  }

  /** Queues one request; resolves with its row (undefined if the database answered none for it). */
  private add(r: AllocRequest): Promise<AddRow | undefined> {
    return new Promise<AddRow | undefined>((resolve, reject) => {
      this.items.push({ r, resolve, reject });
      if (!this.busy) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.busy = true;
    try {
      for (;;) {
        // Each batch starts after the event loop's poll phase: every request read from the
        // sockets in this turn joins it. PGlite computes on this thread, so without the wait the
        // first request of a turn would run alone while the others are still unread.
        await new Promise((r) => setImmediate(r));
        if (!this.items.length) break;
        const batch = this.items.splice(0, MAX_ALLOC_BATCH);
        try {
          const rows = await this.addBatch(batch);
          batch.forEach((it, i) => it.resolve(rows[i]));
        } catch (e) {
          // One item's error (not a status: e.g. a unique key raced by another instance) must not
          // fail the others: each goes again alone and gets its own answer.
          if (batch.length === 1) {
            batch[0]!.reject(e);
            continue;
          }
          for (const it of batch) {
            try {
              it.resolve((await this.addBatch([it]))[0]);
            } catch (e1) {
              it.reject(e1);
            }
          }
        }
      }
    } finally {
      this.busy = false;
    }
  }

  private async addBatch(batch: AllocItem[]): Promise<(AddRow | undefined)[]> {
    const rows = await this.ctx.retry(() =>
      this.ctx.db.query<AddRow & { ord: number }>('SELECT * FROM xn_add_resources($1, $2, $3, $4, $5, $6)', [
        batch.map((x) => x.r.tenant),
        batch.map((x) => x.r.network),
        batch.map((x) => x.r.node),
        batch.map((x) => x.r.idempotencyKey ?? null),
        this.ctx.now(),
        this.ctx.options.quarantineMs,
      ]),
    );
    const byOrd = new Map(rows.map((x) => [Number(x.ord), x]));
    return batch.map((_, i) => byOrd.get(i + 1));
  }
}
