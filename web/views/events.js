// The farm's history: every event with filters (kind, slot, node, time), older pages on demand,
// new ones arriving live; above it the failovers with their measured cost.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { api, qs } from '../lib/api.js';
import { VirtualList } from '../lib/vlist.js';
import { dateTime } from '../lib/util.js';
import { useLive } from '../lib/bus.js';
import { FailoverTable } from './slot.js';

const GROUPS = [
  ['', 'every kind'],
  ['slot.*,failover,gateway.*', 'slots and failovers'],
  ['failover', 'failovers only'],
  ['node.*', 'nodes'],
  ['network.*,nr.*', 'networks and NRs'],
];
const SINCE = [
  ['', 'any time'],
  ['3600000', 'last hour'],
  ['86400000', 'last day'],
  ['604800000', 'last week'],
];

/** Whether a live event passes the filters (as the server would filter it). */
function matches(e, f) {
  if (f.kind && !f.kind.split(',').some((k) => (k.endsWith('*') ? e.kind.startsWith(k.slice(0, -1)) : e.kind === k)))
    return false;
  if (f.slot && `${e.allocation}/${e.slot}` !== f.slot) return false;
  if (f.node && e.node !== f.node) return false;
  return true;
}

export function EventsView({ me, farm, overview }) {
  const [f, setF] = useState({ kind: '', slot: '', node: '', since: '' });
  const [list, setList] = useState(null);
  const [more, setMore] = useState(false);
  const [failovers, setFailovers] = useState([]);
  const [err, setErr] = useState('');
  const scope = me.scope === 'admin' && farm ? { farm } : {};
  const query = {
    ...scope,
    kind: f.kind,
    slot: f.slot,
    node: f.node,
    since: f.since ? Date.now() - Number(f.since) : '',
  };
  const load = () => {
    setList(null);
    api(`/v1/events${qs({ ...query, limit: 500 })}`)
      .then((p) => {
        setList(p.events);
        setMore(p.more);
      })
      .catch((e) => setErr(e.message));
    api(`/v1/events${qs({ ...scope, kind: 'failover', limit: 100 })}`)
      .then((p) => setFailovers(p.events))
      .catch(() => undefined);
  };
  useEffect(load, [f.kind, f.slot, f.node, f.since, farm]);
  useLive((batch) => {
    if (batch.some((e) => e.kind === 'resync')) return load();
    const add = batch.filter((e) => matches(e, f));
    if (add.length) setList((l) => (l ? [...l, ...add.filter((e) => !l.length || e.id > l[l.length - 1].id)] : l));
    const fo = batch.filter((e) => e.kind === 'failover');
    if (fo.length) setFailovers((l) => [...l, ...fo]);
  });
  const older = () =>
    api(`/v1/events${qs({ ...query, limit: 500, before: list[0].id })}`).then((p) => {
      setList((l) => [...p.events, ...l]);
      setMore(p.more);
    });
  const newestFirst = useMemo(() => (list ? [...list].reverse() : []), [list]);
  const set = (k) => (e) => setF({ ...f, [k]: e.currentTarget.value });
  const slots = overview
    ? overview.allocations.flatMap((a) => a.slots.filter((s) => s.node || s.nrs).map((s) => `${a.number}/${s.slot}`))
    : [];
  const nodes = overview ? overview.nodes.map((n) => n.id) : [];
  return html`<div class="events-view">
    ${
      me.scope !== 'tenant'
        ? html`<section>
            <h1>failovers <small>from the old holder's last heartbeat to the new holder answering</small></h1>
            <${FailoverTable} events=${failovers} showSlot=${true} />
          </section>`
        : null
    }
    <section>
      <h1>events ${list ? html`<small data-testid="event-count">${list.length}${more ? '+' : ''}</small>` : null}</h1>
      ${err ? html`<p class="error">${err}</p>` : null}
      <div class="filters">
        <select value=${f.kind} onChange=${set('kind')} aria-label="kind" data-testid="filter-kind">
          ${GROUPS.map(([v, l]) => html`<option value=${v}>${l}</option>`)}
        </select>
        ${
          me.scope !== 'tenant'
            ? html`<select value=${f.slot} onChange=${set('slot')} aria-label="slot">
                  <option value="">every slot</option>
                  ${slots.map((s) => html`<option value=${s}>slot ${s}</option>`)}
                </select>
                <select value=${f.node} onChange=${set('node')} aria-label="node">
                  <option value="">every node</option>
                  ${nodes.map((n) => html`<option value=${n}>${n}</option>`)}
                </select>`
            : null
        }
        <select value=${f.since} onChange=${set('since')} aria-label="since">
          ${SINCE.map(([v, l]) => html`<option value=${v}>${l}</option>`)}
        </select>
        ${more ? html`<button onClick=${older}>older events</button>` : null}
      </div>
      ${
        list === null
          ? html`<p class="muted">loading…</p>`
          : html`<${VirtualList}
              testid="events"
              items=${newestFirst}
              keyOf=${(e) => e.id}
              rowHeight=${26}
              height=${520}
              empty="no event matches"
              row=${(e) =>
                html`<div class=${`ev-row sev-${me.eventKinds?.[e.kind]?.severity ?? 'info'}`} data-kind=${e.kind}>
                  <time>${dateTime(e.at)}</time><span class="kind">${e.kind}</span
                  ><span class="text" title=${e.text}>${e.text}</span>
                </div>`}
            />`
      }
    </section>
  </div>`;
}
