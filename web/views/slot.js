// One slot: who answers now and its candidates, lease and health, the last move and its cause,
// the failovers of this slot with their measured cost, and every NR behind it (a virtualised
// list: up to 4096 rows), refreshed when NRs come and go.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { api, qs } from '../lib/api.js';
import { VirtualList } from '../lib/vlist.js';
import { ago, clock, dateTime, debounce, gwPubLL, markOnce, secs, slotPrefix } from '../lib/util.js';
import { answering, Fill, leaseText, slotState, useTick } from './map.js';
import { useLive } from '../lib/bus.js';

const CAUSES = {
  assigned: 'assigned',
  planned: 'planned move',
  unhealthy: 'gateway unhealthy',
  released: 'released by its holder',
  lapsed: 'holder went silent',
  reassigned: "farmer's assignment",
};

export function FailoverTable({ events, showSlot = false }) {
  if (!events.length) return html`<p class="muted">no failover recorded</p>`;
  return html`<table class="failovers" data-testid="failovers">
    <thead>
      <tr>
        <th>when</th>
        ${showSlot ? html`<th>slot</th>` : null}
        <th>from → to</th>
        <th>cause</th>
        <th title="from the old holder's last heartbeat to the new holder's first healthy report">cost</th>
        <th title="from the move to the new holder's first healthy report">rebuild</th>
      </tr>
    </thead>
    <tbody>
      ${[...events].reverse().map(
        (e) =>
          html`<tr key=${e.id}>
            <td>${dateTime(e.at)}</td>
            ${showSlot ? html`<td><a href=${`#/slot/${e.allocation}/${e.slot}`}>${e.allocation}/${e.slot}</a></td>` : null}
            <td>${e.data.from} → ${e.data.to}</td>
            <td>${CAUSES[e.data.cause] ?? e.data.cause}</td>
            <td class="num">${secs(e.data.costMs)}</td>
            <td class="num">${secs(e.data.rebuildMs)}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

export function SlotView({ overview, route }) {
  useTick();
  const [an, sn] = route.args.map(Number);
  const [nrs, setNrs] = useState(null);
  const [failovers, setFailovers] = useState([]);
  const [events, setEvents] = useState([]);
  const [filter, setFilter] = useState('');
  const [err, setErr] = useState('');
  const load = useMemo(
    () => ({
      nrs: () =>
        api(`/v1/allocations/${an}/slots/${sn}/resources`)
          .then(setNrs)
          .catch((e) => setErr(e.message)),
      events: () =>
        Promise.all([
          api(`/v1/events${qs({ slot: `${an}/${sn}`, kind: 'failover', limit: 50 })}`),
          api(`/v1/events${qs({ slot: `${an}/${sn}`, kind: 'slot.*,failover,gateway.*', limit: 30 })}`),
        ])
          .then(([f, e]) => {
            setFailovers(f.events);
            setEvents(e.events);
          })
          .catch((e) => setErr(e.message)),
    }),
    [an, sn],
  );
  useEffect(() => {
    setNrs(null);
    void load.nrs();
    void load.events();
  }, [load]);
  const later = useMemo(() => ({ nrs: debounce(load.nrs, 300), events: debounce(load.events, 100) }), [load]);
  useLive((batch) => {
    const here = batch.filter((e) => e.kind === 'resync' || (e.allocation === an && e.slot === sn));
    if (
      here.some(
        (e) =>
          e.kind === 'resync' || e.kind.startsWith('nr.') || e.kind.startsWith('network.') || e.kind === 'slot.moved',
      )
    )
      later.nrs();
    if (here.some((e) => e.kind === 'resync' || /^(slot\.|failover|gateway\.)/.test(e.kind))) later.events();
  });
  const a = overview?.allocations.find((x) => x.number === an);
  const s = a?.slots.find((x) => x.slot === sn);
  const shown = useMemo(() => {
    if (!nrs) return [];
    const f = filter.trim().toLowerCase();
    return f
      ? nrs.filter((r) => `${r.id} ${r.network} ${r.name} ${r.tenant} ${r.node} ${r.prefix}`.toLowerCase().includes(f))
      : nrs;
  }, [nrs, filter]);
  useEffect(() => {
    if (nrs && s) markOnce('xn:slot');
  }, [nrs, Boolean(s)]);
  if (!overview) return html`<p class="muted">loading…</p>`;
  if (!s) return html`<p class="error">no slot ${an}/${sn} in this farm</p>`;
  const now = Date.now() + overview.skew;
  const who = answering(s);
  return html`<div class="slot-view" data-slot=${`${an}/${sn}`} data-holder=${who ?? ''}>
    <p><a href="#/">← the map</a></p>
    <h1>slot ${an}/${sn} <small>${slotPrefix(a.prefix, sn)}</small></h1>
    ${err ? html`<p class="error">${err}</p>` : null}
    <div class="cols">
      <section class=${`card ${slotState(s, now)}`}>
        <h2>who answers</h2>
        <div class="answering big" data-testid="answering">${who ?? 'no node'}</div>
        <table class="kv">
          <tr>
            <th>candidates</th>
            <td>
              ${s.candidates.map((c) => html`<span class=${`cand ${c.role}`}>${c.node} <small>${c.role}</small></span> `)}
            </td>
          </tr>
          <tr>
            <th>epoch</th>
            <td>${s.epoch}</td>
          </tr>
          <tr>
            <th>lease</th>
            <td>${leaseText(s, now)}${s.renewedAt ? ` (renewed ${ago(now - s.renewedAt)} ago)` : ''}</td>
          </tr>
          <tr>
            <th>health</th>
            <td>${s.health ?? '-'}${s.healthAt ? ` (${ago(now - s.healthAt)} ago)` : ''}</td>
          </tr>
          <tr>
            <th>moving to</th>
            <td>${s.movingTo ?? '-'}</td>
          </tr>
          <tr>
            <th>last move</th>
            <td>
              ${
                s.lastMove
                  ? `${s.lastMove.from ?? '(none)'} → ${s.node} at ${dateTime(s.lastMove.at)}: ${CAUSES[s.lastMove.cause] ?? s.lastMove.cause}`
                  : '-'
              }
            </td>
          </tr>
          <tr>
            <th>GWPubIP4</th>
            <td>${s.ipv4 ?? '-'}</td>
          </tr>
          <tr>
            <th>upstream route</th>
            <td><code>${slotPrefix(a.prefix, sn)} via ${gwPubLL(sn)}</code></td>
          </tr>
        </table>
      </section>
      <section class="card">
        <h2>fill</h2>
        <${Fill} s=${s} />
        <p>
          ${s.nrs} of ${s.capacity} NR ids in use${s.warning ? html` — <span class="warn">${s.warning}</span>` : null}
        </p>
        <h2>failovers</h2>
        <${FailoverTable} events=${failovers} />
        <h2>latest slot events</h2>
        <ul class="events compact">
          ${[...events]
            .reverse()
            .map(
              (e) =>
                html`<li key=${e.id} data-kind=${e.kind}>
                  <time>${clock(e.at)}</time><span class="kind">${e.kind}</span><span>${e.text}</span>
                </li>`,
            )}
        </ul>
      </section>
    </div>
    <section>
      <h2>
        NRs behind this slot
        ${nrs ? html`<small>(${shown.length}${shown.length !== nrs.length ? ` of ${nrs.length}` : ''})</small>` : null}
      </h2>
      <input
        class="filter"
        placeholder="filter: NR, network, tenant, node, prefix"
        value=${filter}
        onInput=${(e) => setFilter(e.currentTarget.value)}
      />
      <div class="vhead nr-row">
        <span>NR</span><span>prefix</span><span>network</span><span>tenant</span><span>node</span><span>key</span>
      </div>
      ${
        nrs === null
          ? html`<p class="muted">loading the NRs…</p>`
          : html`<${VirtualList}
              testid="slot-nrs"
              items=${shown}
              keyOf=${(r) => r.id}
              height=${420}
              empty="no NR in this slot"
              row=${(r) =>
                html`<div class=${`nr-row ${r.exit ? 'exit' : ''}`}>
                  <span>${r.id}${r.exit ? ' ★' : ''}</span><span>${r.prefix}</span
                  ><span title=${r.network}>${r.name}</span><span>${r.tenant}</span><span>${r.node}</span
                  ><span>${r.key ? '✓' : '-'}</span>
                </div>`}
            />`
      }
      <p class="muted small">★ the network's ExitPoint (its NR on the node that answers for the slot)</p>
    </section>
  </div>`;
}
