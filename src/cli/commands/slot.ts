// exitnode slot assign|move|list: who serves each slot (ExitNode number) of an allocation (farm token).
import { parse, positionals, flag, opt, usageError } from '../args.js';
import { clean, type Io } from '../io.js';
import { table } from '../table.js';
import { clientFrom, clientOptions, CLIENT_USAGE } from '../client.js';
import { checkAllocationNumber, checkSlot } from '../../core/index.js';
import type { SlotRecord } from '../../store/types.js';

export const summary =
  'slots (ExitNode numbers) of an allocation: assign, move for maintenance (with fencing), list holders and lease health';
export const usage = [
  `exitnode slot assign ALLOCATION SLOT (NODE | --nodes N1,N2)  ${CLIENT_USAGE}`,
  `       exitnode slot move ALLOCATION/SLOT --to NODE [--wait S]  (planned: the holder fences and releases, then NODE builds; waits for the new epoch. Stage 2: a handover, NODE first, the master steps down)`,
  `       exitnode slot list ALLOCATION [--json]  (stage 2: every candidate with its VRRP state, priority, last transition, health)`,
].join('\n');

const NODE_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** --nodes n1,n2: the ordered candidates (stage 2); names checked here, the rest by the server. */
export function nodeList(text: string): string[] {
  const list = text.split(',').map((x) => x.trim());
  for (const n of list)
    if (!NODE_NAME.test(n))
      throw usageError(`--nodes ${JSON.stringify(text)}: ${JSON.stringify(n)} is not a node name`, usage);
  if (new Set(list).size !== list.length) throw usageError(`--nodes ${JSON.stringify(text)} names a node twice`, usage);
  return list;
}

/** Stage 2: one row per candidate of the 'vrrp' slots. */
export function candidateRows(slots: SlotRecord[], now: number): string[][] {
  const rows = [
    ['SLOT', 'CANDIDATE', 'RANK', 'PRIORITY', 'VRRP', 'REPORTED PRIO', 'SINCE', 'REPORTED', 'HEALTH', 'STEP DOWN'],
  ];
  for (const s of slots)
    for (const c of s.candidates ?? [])
      rows.push([
        `${s.allocation}/${s.slot}`,
        c.node,
        String(c.rank),
        String(c.priority),
        c.vrrpState ?? '-',
        c.vrrpPriority !== undefined ? String(c.vrrpPriority) : '-',
        c.changedAt !== undefined ? `${age(now - c.changedAt)} ago` : '-',
        c.reportedAt !== undefined ? `${age(now - c.reportedAt)} ago` : '-',
        c.healthy
          ? 'heartbeating'
          : c.lastHeartbeat !== undefined
            ? `SILENT ${age(now - c.lastHeartbeat)}`
            : 'never heard',
        c.stepDown ? 'yes' : '-',
      ]);
  return rows;
}

function age(ms: number): string {
  return ms < 0 ? '-' : ms < 10_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms / 1000)}s`;
}

export function slotRows(slots: SlotRecord[], now: number): string[][] {
  const rows = [['SLOT', 'HOLDER', 'EPOCH', 'LEASE AGE', 'EXPIRES IN', 'HEALTH', 'NRS', 'GWPUBIP4', 'MOVING TO']];
  for (const s of slots) {
    if (!s.node && !s.nrs) continue;
    rows.push([
      `${s.allocation}/${s.slot}`,
      s.node ?? '-',
      String(s.epoch),
      s.renewedAt !== undefined ? age(now - s.renewedAt) : '-',
      s.leaseExpiresAt !== null
        ? s.leaseExpiresAt > now
          ? age(s.leaseExpiresAt - now)
          : `LAPSED ${age(now - s.leaseExpiresAt)} ago`
        : '-',
      s.health ?? '-',
      String(s.nrs),
      s.ipv4 ?? '-',
      s.movingTo ?? '-',
    ]);
  }
  return rows;
}

export async function run(argv: string[], io: Io): Promise<number> {
  const p = parse(
    argv,
    { ...clientOptions, to: { type: 'string' }, wait: { type: 'string' }, nodes: { type: 'string' } },
    usage,
  );
  const verb = p.positionals[0];
  const c = clientFrom(p, 'farm');
  if (verb === 'assign') {
    const list = opt(p, 'nodes');
    const [, a, s, node] =
      list !== undefined
        ? positionals(p, ['assign', 'allocation', 'slot'], usage)
        : positionals(p, ['assign', 'allocation', 'slot', 'node'], usage);
    const r = await c.assignSlot(checkAllocationNumber(a!), checkSlot(s!), list !== undefined ? nodeList(list) : node!);
    const cands = r.candidates?.length ? `, candidates ${r.candidates.map((x) => x.node).join(', ')}` : '';
    io.out(
      flag(p, 'json')
        ? JSON.stringify(r)
        : clean(
            `slot ${r.slot} of allocation ${r.allocation} → node ${r.node}, epoch ${r.epoch}${cands}${r.ipv4 ? `, GWPubIP4 ${r.ipv4}` : ''}`,
          ),
    );
    return 0;
  }
  if (verb === 'list') {
    const [, a] = positionals(p, ['list', 'allocation'], usage);
    const r = await c.getAllocation(checkAllocationNumber(a!));
    const now = Date.now();
    const stage2 = r.slots.some((x) => x.candidates?.length);
    io.out(
      flag(p, 'json')
        ? JSON.stringify(r.slots, null, 2)
        : stage2
          ? `${table(slotRows(r.slots, now))}\n\n${table(candidateRows(r.slots, now))}`
          : table(slotRows(r.slots, now)),
    );
    return 0;
  }
  if (verb === 'move') {
    const [, where] = positionals(p, ['move', 'allocation/slot'], usage);
    const m = /^(\d+)\/(\d+)$/.exec(where!);
    if (!m) throw usageError(`${JSON.stringify(where)} is not ALLOCATION/SLOT (e.g. 1/2)`, usage);
    const to = opt(p, 'to');
    if (!to) throw usageError('slot move needs --to NODE', usage);
    const a = checkAllocationNumber(m[1]!);
    const s = checkSlot(m[2]!);
    const waitS = Number(opt(p, 'wait') ?? 30);
    if (!Number.isFinite(waitS) || waitS < 0)
      throw usageError(`--wait ${JSON.stringify(opt(p, 'wait'))} must be seconds >= 0`, usage);
    const t0 = Date.now();
    const before = await c.moveSlot(a, s, to);
    if (before.candidates?.length) {
      // Stage 2: a handover, not a rebuild; the new first candidate answers once the master steps down.
      io.out(
        flag(p, 'json')
          ? JSON.stringify(before)
          : clean(
              `slot ${a}/${s}: handover to ${to} planned (epoch ${before.epoch}); candidates ${before.candidates.map((x) => x.node).join(', ')}; the master steps down once ${to} reports BACKUP`,
            ),
      );
      return 0;
    }
    if (before.node === to || waitS === 0) {
      io.out(
        flag(p, 'json')
          ? JSON.stringify(before)
          : clean(
              `slot ${a}/${s}: ${before.node === to ? `held by ${to}, epoch ${before.epoch}` : `move to ${to} requested; the holder fences and releases it at its next heartbeat`}`,
            ),
      );
      return 0;
    }
    const from = before.node;
    for (;;) {
      const r = (await c.getAllocation(a)).slots[s - 1]!;
      if (r.node === to) {
        io.out(
          flag(p, 'json')
            ? JSON.stringify({ ...r, from, ms: Date.now() - t0 })
            : clean(
                `slot ${a}/${s}: ${from} → ${to}, epoch ${r.epoch}, released by ${from} in ${Date.now() - t0} ms (the new gateway builds from its view now)`,
              ),
        );
        return 0;
      }
      if (Date.now() - t0 > waitS * 1000) {
        io.err(
          clean(
            `slot ${a}/${s}: still held by ${r.node ?? 'nobody'} after ${waitS} s (the move stays planned: it happens when the holder releases or its lease lapses)`,
          ),
        );
        return 1;
      }
      await new Promise((res) => setTimeout(res, 50));
    }
  }
  throw usageError(
    verb === undefined ? 'missing action (assign, move, list)' : `unknown action ${JSON.stringify(verb)}`,
    usage,
  );
}
