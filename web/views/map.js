// The /48 as a map: PrefixZero and the 15 slots of each allocation, each with the node that
// answers now, its candidates, lease and health, fill (NRs of 4096, 3840 in slot 15) against the
// 2048 advisory, and its warning; then the farm's latest events.
import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { ago, clock, markOnce, plural, slotPrefix, groups48 } from '../lib/util.js';

/** The candidate that answers for the slot now: stage 1's lease holder (stage 2: the VRRP master). */
export const ANSWERING = ['master', 'holder'];
export const answering = (s) => s.candidates.find((c) => ANSWERING.includes(c.role))?.node ?? null;

/** Re-renders every second (lease countdowns). */
export function useTick(ms = 1000) {
  const [, set] = useState(0);
  useEffect(() => {
    const t = setInterval(() => set((x) => x + 1), ms);
    return () => clearInterval(t);
  }, [ms]);
}

export function leaseText(s, now) {
  if (!s.node || s.leaseExpiresAt === null || s.leaseExpiresAt === undefined) return '-';
  const left = s.leaseExpiresAt - now;
  return left > 0 ? `${(left / 1000).toFixed(1)} s left` : `lapsed ${ago(-left)} ago`;
}

export function slotState(s, now) {
  if (!s.node) return 'free';
  if (s.leaseExpiresAt !== null && s.leaseExpiresAt <= now) return 'lapsed';
  if (s.health && s.health !== 'ok') return 'unhealthy';
  if (s.warning) return 'warn';
  return s.health === 'ok' ? 'ok' : 'pending';
}

export function Fill({ s, warnNrs = 2048 }) {
  const pct = Math.min(100, (100 * s.nrs) / s.capacity);
  return html`<div class="fill" title=${`${s.nrs} of ${s.capacity} NR ids in use; advisory at ${warnNrs}`}>
    <div class=${`bar ${s.nrs > warnNrs ? 'over' : ''}`} style=${{ width: `${pct}%` }}></div>
    <div class="advisory" style=${{ left: `${(100 * warnNrs) / s.capacity}%` }}></div>
  </div>`;
}

function Tile({ a, s, now, warnNrs }) {
  const state = slotState(s, now);
  const who = answering(s);
  return html`<a
    class=${`tile ${state}`}
    href=${`#/slot/${a.number}/${s.slot}`}
    data-slot=${`${a.number}/${s.slot}`}
    data-holder=${who ?? ''}
    data-epoch=${s.epoch}
    data-state=${state}
  >
    <div class="tile-head">
      <span class="slotno">${s.slot}</span>
      <span class="pfx">${slotPrefix(a.prefix, s.slot)}</span>
    </div>
    <div class="answering" title="the node that answers for this slot now">${who ?? 'no node'}</div>
    ${
      s.candidates.length
        ? html`<ul class="cands">
            ${s.candidates.map((c) => html`<li class=${c.role}>${c.node} <small>${c.role}</small></li>`)}
          </ul>`
        : null
    }
    <div class="meta">
      ${
        s.node
          ? html`epoch ${s.epoch} · lease ${leaseText(s, now)} ·${' '}
              <span class=${`health ${s.health === 'ok' ? 'ok' : s.health ? 'bad' : ''}`}
                >${s.health === 'ok' ? 'healthy' : (s.health ?? 'no health report yet')}</span
              >`
          : 'no ExitNode: give it a node to enable it'
      }
    </div>
    <${Fill} s=${s} warnNrs=${warnNrs} />
    <div class="fill-text">${s.nrs} / ${s.capacity} NRs</div>
    ${s.warning ? html`<div class="warn">${s.warning}</div>` : null}
  </a>`;
}

export function MapView({ me, overview, history }) {
  useTick();
  useEffect(() => {
    if (overview) markOnce('xn:map');
  }, [overview]);
  if (!overview) return html`<p class="muted">loading the farm…</p>`;
  const now = Date.now() + overview.skew;
  const healthy = overview.nodes.filter((n) => n.healthy).length;
  return html`<div class="map-view">
    <section class="summary">
      <div><b>${overview.farm}</b></div>
      <div>${plural(overview.nodes.length, 'node')} (${healthy} heartbeating)</div>
      <div>${plural(overview.networks, 'network')}</div>
      <div>${plural(overview.resources, 'NR')}</div>
      ${
        overview.warnings.length
          ? html`<div class="warn">${plural(overview.warnings.length, 'warning')}</div>`
          : html`<div class="ok">no warnings</div>`
      }
    </section>
    ${
      overview.allocations.length
        ? null
        : html`<p class="muted">
            This farm has no allocation yet: exitnode allocation add PREFIX/48 --farm ${overview.farm}
          </p>`
    }
    ${overview.allocations.map(
      (a) =>
        html`<section class="alloc" data-allocation=${a.number}>
          <h2>allocation ${a.number} · ${a.prefix}</h2>
          <div class="grid">
            <div class="tile prefixzero" title="PrefixZero: the segment between the upstream router and the gateways">
              <div class="tile-head">
                <span class="slotno">0</span><span class="pfx">${slotPrefix(a.prefix, 0)}</span>
              </div>
              <div class="answering">PrefixZero</div>
              <div class="meta">
                upstream router ${a.upstream.ll} and ${a.upstream.ip6} on ${groups48(a.prefix)}::/64
              </div>
              <div class="meta">
                the upstream router routes each enabled slot E's /52 to its gateway's link-local fe80::E000:0:0:1
              </div>
              ${a.ipv4 ? html`<div class="meta">IPv4 pool: ${a.ipv4.addresses.length} addresses, gateway ${a.ipv4.gateway}</div>` : null}
            </div>
            ${a.slots.map((s) => html`<${Tile} key=${s.slot} a=${a} s=${s} now=${now} warnNrs=${me.warnNrs} />`)}
          </div>
        </section>`,
    )}
    <section class="recent">
      <h2>latest events <a class="small" href="#/events">all events →</a></h2>
      <ul class="events compact" data-testid="recent-events">
        ${history
          .slice(-12)
          .reverse()
          .map(
            (e) =>
              html`<li key=${e.id} class=${`ev ${e.kind.replace('.', '-')}`} data-kind=${e.kind}>
                <time>${clock(e.at)}</time><span class="kind">${e.kind}</span><span>${e.text}</span>
              </li>`,
          )}
      </ul>
    </section>
  </div>`;
}
