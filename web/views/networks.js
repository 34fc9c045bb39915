// Tenant networks. A farm sees every network of the farm as a summary in a virtualised list
// (thousands of rows), kept current from the event stream row by row; a row opens its NRs. A
// tenant sees only its own networks, each with its NRs (node and prefix).
import { useEffect, useMemo, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { api, qs } from '../lib/api.js';
import { VirtualList } from '../lib/vlist.js';
import { debounce, markOnce } from '../lib/util.js';
import { useLive } from '../lib/bus.js';

/** Applies network and NR events to the summaries (no refetch of thousands of rows per event). */
function applyEvents(list, batch) {
  let out = list;
  for (const e of batch) {
    if (e.kind === 'network.created') {
      if (out.some((n) => n.id === e.network)) continue;
      out = [
        ...out,
        {
          id: e.network,
          name: e.data.name,
          tenant: e.tenant,
          allocation: e.allocation,
          slot: e.slot,
          exit: e.nr,
          exitNode: e.node ?? null,
          nrs: 1,
        },
      ];
    } else if (e.kind === 'network.deleted') out = out.filter((n) => n.id !== e.network);
    else if (e.kind === 'nr.added' || e.kind === 'nr.removed') {
      const d = e.kind === 'nr.added' ? 1 : -1;
      out = out.map((n) => (n.id === e.network ? { ...n, nrs: n.nrs + d } : n));
    } else if (e.kind === 'slot.moved' || e.kind === 'slot.assigned') {
      // The slot's ExitPoints moved with it.
      out = out.map((n) => (n.allocation === e.allocation && n.slot === e.slot ? { ...n, exitNode: e.data.to } : n));
    }
  }
  return out;
}

function FarmNetworks({ farm }) {
  const [list, setList] = useState(null);
  const [filter, setFilter] = useState('');
  const [slot, setSlot] = useState('');
  const [open, setOpen] = useState(null);
  const [err, setErr] = useState('');
  const load = useMemo(
    () => () =>
      api(`/v1/farms/${encodeURIComponent(farm)}/networks`)
        .then(setList)
        .catch((e) => setErr(e.message)),
    [farm],
  );
  useEffect(() => void load(), [load]);
  const resync = useMemo(() => debounce(load, 200), [load]);
  useLive((batch) => {
    if (batch.some((e) => e.kind === 'resync')) return resync();
    setList((l) => (l ? applyEvents(l, batch) : l));
  });
  const shown = useMemo(() => {
    if (!list) return [];
    const f = filter.trim().toLowerCase();
    const sorted = [...list].sort(
      (x, y) => x.allocation - y.allocation || x.slot - y.slot || x.exit.localeCompare(y.exit),
    );
    return sorted.filter(
      (n) =>
        (!slot || `${n.allocation}/${n.slot}` === slot) &&
        (!f || `${n.id} ${n.name} ${n.tenant} ${n.exitNode ?? ''} ${n.exit}`.toLowerCase().includes(f)),
    );
  }, [list, filter, slot]);
  const slots = useMemo(() => [...new Set((list ?? []).map((n) => `${n.allocation}/${n.slot}`))].sort(), [list]);
  useEffect(() => {
    if (list) markOnce('xn:networks');
  }, [list]);
  return html`<div class="networks-view">
    <h1>tenant networks ${list ? html`<small data-testid="network-count">${list.length}</small>` : null}</h1>
    ${err ? html`<p class="error">${err}</p>` : null}
    <div class="filters">
      <input
        class="filter"
        placeholder="filter: name, id, tenant, node"
        value=${filter}
        onInput=${(e) => setFilter(e.currentTarget.value)}
      />
      <select value=${slot} onChange=${(e) => setSlot(e.currentTarget.value)} aria-label="slot">
        <option value="">every slot</option>
        ${slots.map((s) => html`<option value=${s}>slot ${s}</option>`)}
      </select>
      ${list ? html`<span class="muted">${shown.length} shown</span>` : null}
    </div>
    <div class="vhead net-row">
      <span>network</span><span>tenant</span><span>slot</span><span>ExitPoint</span><span>NRs</span>
    </div>
    ${
      list === null
        ? html`<p class="muted">loading the networks…</p>`
        : html`<${VirtualList}
            testid="networks"
            items=${shown}
            keyOf=${(n) => n.id}
            height=${440}
            empty="no network"
            row=${(n) =>
              html`<button
                class=${`net-row ${open === n.id ? 'on' : ''}`}
                onClick=${() => setOpen(open === n.id ? null : n.id)}
              >
                <span><b>${n.name}</b> <small>${n.id}</small></span
                ><span>${n.tenant}</span><span>${n.allocation}/${n.slot}</span
                ><span>${n.exit} on ${n.exitNode ?? '-'}</span><span>${n.nrs}</span>
              </button>`}
          />`
    }
    ${open && list ? html`<${NetworkNrs} net=${list.find((n) => n.id === open)} />` : null}
  </div>`;
}

function NetworkNrs({ net }) {
  const [nrs, setNrs] = useState(null);
  const key = net ? `${net.id}:${net.nrs}:${net.exitNode}` : '';
  useEffect(() => {
    if (!net) return;
    api(`/v1/allocations/${net.allocation}/slots/${net.slot}/resources${qs({ network: net.id })}`)
      .then(setNrs)
      .catch(() => setNrs([]));
  }, [key]);
  if (!net) return null;
  return html`<section class="card detail" data-testid="network-detail">
    <h2>${net.name} <small>${net.id} · tenant ${net.tenant} · slot ${net.allocation}/${net.slot}</small></h2>
    ${nrs === null ? html`<p class="muted">loading…</p>` : html`<${NrTable} nrs=${nrs} exit=${net.exit} />`}
  </section>`;
}

function NrTable({ nrs, exit }) {
  return html`<table class="nrs">
    <thead>
      <tr>
        <th>NR</th>
        <th>node</th>
        <th>prefix</th>
        <th>key</th>
      </tr>
    </thead>
    <tbody>
      ${nrs.map(
        (r) =>
          html`<tr key=${r.id} class=${r.id === exit ? 'exit' : ''}>
            <td>${r.id}${r.id === exit ? ' ★ ExitPoint' : ''}</td>
            <td>${r.node}</td>
            <td>${r.prefix}</td>
            <td>${r.key || r.publicKey ? '✓' : '-'}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

/** A network's IPv4 port forwards and IPv6 inbound policy (tenant: its own networks). */
function Services({ net }) {
  const [fw, setFw] = useState(null);
  const [pol, setPol] = useState(null);
  useEffect(() => {
    api(`/v1/networks/${encodeURIComponent(net.id)}/forwards`)
      .then(setFw)
      .catch(() => setFw([]));
    api(`/v1/networks/${encodeURIComponent(net.id)}/inbound`)
      .then(setPol)
      .catch(() => setPol(null));
  }, [net.id, net.resources.length]);
  return html`<div class="services" data-testid="services">
    <p>
      IPv6 inbound: <b>${pol ? pol.policy : '…'}</b>
      ${
        pol && pol.policy === 'closed'
          ? pol.rules.length
            ? ` — allowed: ${pol.rules.map((r) => `${r.protocol} ${r.ports}${r.source ? ` from ${r.source}` : ''}`).join(', ')}`
            : ' — no rule: only replies and ICMPv6'
          : null
      }
    </p>
    ${
      fw && fw.length
        ? html`<table class="forwards">
            <thead>
              <tr>
                <th>forward</th>
                <th>public</th>
                <th>target</th>
              </tr>
            </thead>
            <tbody>
              ${fw.map(
                (f) =>
                  html`<tr key=${`${f.protocol}/${f.port}`}>
                    <td>${f.protocol}</td>
                    <td>${f.address}:${f.port}</td>
                    <td>${f.target}:${f.targetPort}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
        : html`<p class="muted">${fw ? 'no IPv4 port forward' : '…'}</p>`
    }
  </div>`;
}

function TenantNetworks() {
  const [list, setList] = useState(null);
  const [err, setErr] = useState('');
  const load = useMemo(
    () => () =>
      api('/v1/networks')
        .then(setList)
        .catch((e) => setErr(e.message)),
    [],
  );
  useEffect(() => void load(), [load]);
  const later = useMemo(() => debounce(load, 200), [load]);
  useLive((batch) => {
    if (batch.some((e) => e.kind === 'resync' || e.kind.startsWith('network.') || e.kind.startsWith('nr.'))) later();
  });
  return html`<div class="networks-view">
    <h1>my networks ${list ? html`<small data-testid="network-count">${list.length}</small>` : null}</h1>
    ${err ? html`<p class="error">${err}</p>` : null} ${list === null ? html`<p class="muted">loading…</p>` : null}
    ${list && !list.length ? html`<p class="muted">no network yet: exitnode network create NAME</p>` : null}
    ${(list ?? []).map(
      (n) =>
        html`<section class="card" key=${n.id} data-network=${n.id}>
          <h2>${n.name} <small>${n.id} · slot ${n.allocation}/${n.slot} · ExitPoint ${n.exit}</small></h2>
          <${NrTable} nrs=${n.resources} exit=${n.exit} />
          <${Services} net=${n} />
        </section>`,
    )}
  </div>`;
}

export function NetworksView({ me, farm }) {
  if (me.scope === 'tenant') return html`<${TenantNetworks} />`;
  if (!farm) return html`<p class="muted">no farm</p>`;
  return html`<${FarmNetworks} farm=${farm} />`;
}
