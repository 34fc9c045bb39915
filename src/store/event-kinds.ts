// The kinds of the farm's events (recorded by the database's triggers, migrations/005_events.sql):
// what each means, and the one line a person reads (the CLI's `exitnode events`, the dashboard's
// history, the API's `text`). One place for the wording, so that the CLI and the page agree.
// docs/events.md lists the kinds; a test checks that it lists every one of them.
//
// Stage 2 (DESIGN.md section 8.2): the agents' VRRP reports are kinds of their own (vrrp.master,
// vrrp.backup, vrrp.fault, vrrp.stopped) and slot.dual_master the step-down TNoDB ordered,
// recorded by xn_vrrp_report and xn_vrrp_check (migrations/006_candidates.sql).

import type { EventRecord } from './types.js';

export type { EventRecord } from './types.js';

export interface EventKindSpec {
  summary: string;
  /** Shown as a warning (red/amber) by the page. */
  severity: 'info' | 'warning' | 'error';
}

export const EVENT_KINDS = {
  'slot.assigned': { severity: 'info', summary: 'a slot without a node was given one (epoch + 1)' },
  'slot.move-planned': {
    severity: 'info',
    summary: 'the farmer asked for a planned move (exitnode slot move): the holder fences and releases the slot',
  },
  'slot.moved': {
    severity: 'warning',
    summary:
      "a slot changed hands (epoch + 1), with the cause: planned, unhealthy, released, lapsed (the holder went silent) or reassigned (the farmer's assignment); data.fromLastHeartbeat is when the old holder was last heard",
  },
  failover: {
    severity: 'warning',
    summary:
      "the new holder of a moved slot reported its gateway healthy for the first time: the failover's end. data.costMs is from the old holder's last heartbeat to this report, data.rebuildMs from the move to it",
  },
  'gateway.unhealthy': {
    severity: 'error',
    summary: 'the holder reported that its gateway cannot forward (the upstream router does not answer from it)',
  },
  'gateway.healthy': {
    severity: 'info',
    summary: 'the holder reported its gateway forwarding (again, or for the first time)',
  },
  'slot.advisory': {
    severity: 'warning',
    summary: 'a slot passed 2048 NRs: the farmer should enable another ExitNode so that new networks go there',
  },
  'slot.full': { severity: 'error', summary: 'every NR id of a slot is in use (4096; 3840 in slot 15)' },
  'slot.dual_master': {
    severity: 'error',
    summary:
      'stage 2: two candidates of a slot reported VRRP master at once (a partial layer-2 fault); TNoDB told all but the first to step down',
  },
  'vrrp.master': {
    severity: 'warning',
    summary: "stage 2: a candidate's keepalived reports MASTER: it answers for the slot",
  },
  'vrrp.backup': { severity: 'info', summary: 'stage 2: a candidate reports BACKUP: a standby, its ExitPoints silent' },
  'vrrp.fault': {
    severity: 'error',
    summary: 'stage 2: a candidate reports FAULT: its uplink or its health check failed, it cannot take over',
  },
  'vrrp.stopped': { severity: 'warning', summary: 'stage 2: a candidate reports no keepalived running for the slot' },
  'node.up': { severity: 'info', summary: "a node's agent sent its first heartbeat" },
  'node.silent': {
    severity: 'error',
    summary: "a node's agent has not sent a heartbeat for a lease TTL; data.slots lists the slots it held then",
  },
  'node.back': { severity: 'info', summary: "a silent node's agent heartbeats again; data.silentMs is the gap" },
  'node.drift-repaired': {
    severity: 'warning',
    summary: "a node's agent found its kernel different from the applied view (changed by hand) and repaired it",
  },
  'node.status': {
    severity: 'warning',
    summary: "a node's agent reports itself degraded (a pass failed, a gateway unhealthy) or ok again",
  },
  'network.created': { severity: 'info', summary: 'a tenant network was created, with its ExitPoint NR' },
  'network.deleted': { severity: 'info', summary: 'a tenant network was deleted with all its NRs' },
  'nr.added': { severity: 'info', summary: 'an NR was added to a tenant network' },
  'nr.removed': { severity: 'info', summary: 'an NR was removed from a tenant network (its id goes to quarantine)' },
} as const satisfies Record<string, EventKindSpec>;

export type EventKind = keyof typeof EVENT_KINDS;

const secs = (ms: unknown): string => (typeof ms === 'number' ? `${(ms / 1000).toFixed(1)} s` : '?');

const CAUSES: Record<string, string> = {
  assigned: 'assigned',
  planned: 'planned move',
  unhealthy: 'its gateway was unhealthy',
  released: 'released by its holder',
  lapsed: 'its holder went silent (lease lapsed)',
  reassigned: "the farmer's assignment",
};

/** The one line a person reads for an event (without its time). */
export function eventText(e: Omit<EventRecord, 'text' | 'id'>): string {
  const d = e.data;
  const slot = e.slot !== undefined ? `slot ${e.allocation}/${e.slot}` : '';
  const net = e.network ? `${e.network}${d.name ? ` (${String(d.name)})` : ''}` : '';
  switch (e.kind) {
    case 'slot.assigned':
      return `${slot} assigned to ${e.node}, epoch ${String(d.epoch)}`;
    case 'slot.move-planned':
      return `${slot}: planned move ${String(d.from)} → ${String(d.to)} asked; the holder fences and releases it`;
    case 'slot.moved':
      return `${slot} moved ${String(d.from)} → ${String(d.to)}, epoch ${String(d.epoch)}: ${CAUSES[String(d.cause)] ?? String(d.cause)}${d.reason ? ` (${String(d.reason)})` : ''}`;
    case 'failover':
      return `${slot} answered by ${String(d.to)} again ${secs(d.costMs)} after ${String(d.from)} was last heard (rebuild ${secs(d.rebuildMs)}; ${CAUSES[String(d.cause)] ?? String(d.cause)})`;
    case 'gateway.unhealthy':
      return `${slot} on ${e.node}: gateway unhealthy: ${String(d.reason)}`;
    case 'gateway.healthy':
      return `${slot} on ${e.node}: gateway healthy${d.first ? '' : ' again'}`;
    case 'slot.advisory':
      return `${slot} holds ${String(d.nrs)} NRs, more than ${String(d.advisory)}: enable another ExitNode`;
    case 'slot.full':
      return `${slot} is full: ${String(d.nrs)} of ${String(d.capacity)} NR ids in use`;
    case 'slot.dual_master':
      return `${slot}: two masters at once (${Array.isArray(d.masters) ? d.masters.join(', ') : '?'}); ${Array.isArray(d.stepDown) ? d.stepDown.join(', ') : '?'} told to step down, ${String(d.kept)} kept`;
    case 'vrrp.master':
    case 'vrrp.backup':
    case 'vrrp.fault':
    case 'vrrp.stopped':
      return `${slot} on ${e.node}: VRRP ${d.from ? `${String(d.from)} → ` : ''}${String(d.to)}${typeof d.priority === 'number' ? ` (priority ${d.priority})` : ''}`;
    case 'node.up':
      return `node ${e.node}: agent heartbeating (first heartbeat)`;
    case 'node.silent': {
      const held = Array.isArray(d.slots) && d.slots.length ? `; held ${d.slots.join(', ')}` : '';
      return `node ${e.node}: no heartbeat for ${secs(d.silentMs)}${held}`;
    }
    case 'node.back':
      return `node ${e.node}: heartbeating again after ${secs(d.silentMs)}`;
    case 'node.drift-repaired': {
      const objs = Array.isArray(d.objects) ? d.objects : [];
      return `node ${e.node}: repaired drift in ${objs.length} object${objs.length === 1 ? '' : 's'}${objs.length ? ` (${objs.slice(0, 3).join(', ')}${objs.length > 3 ? ', …' : ''})` : ''}`;
    }
    case 'node.status':
      return `node ${e.node}: agent ${String(d.status)}${typeof d.failures === 'number' && d.failures ? `, ${d.failures} failures in its last pass` : ''}`;
    case 'network.created':
      return `network ${net} created on ${slot}, ExitPoint ${e.nr}${e.node ? ` on ${e.node}` : ''}`;
    case 'network.deleted':
      return `network ${net} deleted`;
    case 'nr.added':
      return `NR ${e.nr} added to ${net} on ${e.node}`;
    case 'nr.removed':
      return `NR ${e.nr} removed from ${net} (was on ${e.node})`;
    default:
      return `${e.kind}${slot ? ` ${slot}` : ''}${e.node ? ` node ${e.node}` : ''}`;
  }
}
