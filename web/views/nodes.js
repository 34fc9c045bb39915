// The farm's nodes: exit-capable or not, heartbeat, the slots each holds, and what its agent
// reports about itself: status, applied vs current view version, last pass, server reachability,
// last drift repair. Ages are the server's (heartbeats) or relative to the agent's report.
import { html } from '../lib/html.js';
import { ago, secs } from '../lib/util.js';
import { useTick } from './map.js';

function agentCells(n, now) {
  const r = n.agent;
  if (!r) return html`<td colspan="5" class="muted">no report from its agent yet</td>`;
  const since = n.agentReportAt !== undefined ? now - n.agentReportAt : 0;
  const behind = r.appliedVersion !== n.viewVersion;
  return html`
    <td class=${r.status === 'ok' ? 'ok' : 'bad'}>${r.status}</td>
    <td class=${behind ? 'warn' : ''} title="applied by the agent / current on the server">
      ${r.appliedVersion ?? '-'} / ${n.viewVersion}
    </td>
    <td>
      ${
        r.lastPass
          ? html`${ago(r.lastPass.agoMs + since)} ago, ${r.lastPass.full ? 'full' : 'incremental'}, ${r.lastPass.size}
            cmds in
            ${secs(r.lastPass.ms)}${
              r.lastPass.failures ? html`, <span class="bad">${r.lastPass.failures} failures</span>` : ''
            }`
          : '-'
      }
    </td>
    <td class=${r.serverReachable ? 'ok' : 'bad'}>${r.serverReachable ? 'yes' : 'no'}</td>
    <td>${r.drift ? `${ago(r.drift.agoMs + since)} ago (${r.drift.objects.length} objects)` : '-'}</td>
  `;
}

export function NodesView({ overview }) {
  useTick();
  if (!overview) return html`<p class="muted">loading…</p>`;
  const now = Date.now() + overview.skew;
  return html`<div class="nodes-view">
    <h1>nodes <small>${overview.nodes.length}</small></h1>
    <table class="nodes" data-testid="nodes">
      <thead>
        <tr>
          <th>node</th>
          <th>exit</th>
          <th>heartbeat</th>
          <th>slots held</th>
          <th>agent</th>
          <th title="view version applied by the agent / current on the server">applied / view</th>
          <th>last pass</th>
          <th title="as the agent reports it">server reachable</th>
          <th>last drift repair</th>
        </tr>
      </thead>
      <tbody>
        ${overview.nodes.map(
          (n) =>
            html`<tr key=${n.id} data-node=${n.id} class=${n.healthy ? '' : 'down'}>
              <td><b>${n.id}</b><br /><small>${[n.publicIPv4, n.publicIPv6].filter(Boolean).join(' ')}</small></td>
              <td>${n.exitCapable ? 'yes' : 'no'}</td>
              <td class=${n.healthy ? 'ok' : 'bad'}>
                ${n.lastHeartbeat ? `${ago(now - n.lastHeartbeat)} ago` : 'never'}
                ${n.silentSince ? html`<br /><small>silent since ${ago(now - n.silentSince)}</small>` : null}
              </td>
              <td>${n.slots.length ? n.slots.map((s) => html`<a href=${`#/slot/${s}`}>${s}</a> `) : '-'}</td>
              ${agentCells(n, now)}
            </tr>`,
        )}
      </tbody>
    </table>
    <p class="muted small">
      Heartbeats renew the slot leases (TTL ${secs(overview.leaseTtlMs)}); a node silent for a TTL loses its slots to a
      healthy exit-capable node. The agent's columns are its own report, sent when it changes and every 10 s.
    </p>
  </div>`;
}
