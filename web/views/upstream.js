// The upstream router's configuration for a chosen router OS, ready to copy: rendered by TNoDB
// (GET /v1/allocations/{n}/upstream) for the slots that have a node.
import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { api, qs } from '../lib/api.js';

export function UpstreamView({ me, overview }) {
  const allocs = overview?.allocations ?? [];
  const [alloc, setAlloc] = useState('');
  const [router, setRouter] = useState(sessionStorage.getItem('exitnode.router') ?? 'frr');
  const [iface, setIface] = useState(sessionStorage.getItem('exitnode.iface') ?? 'eth1');
  const [via, setVia] = useState('ll');
  const [text, setText] = useState('');
  const [err, setErr] = useState('');
  const [copied, setCopied] = useState(false);
  const number = alloc || (allocs[0] ? String(allocs[0].number) : '');
  useEffect(() => {
    if (!number || !iface) return;
    sessionStorage.setItem('exitnode.router', router);
    sessionStorage.setItem('exitnode.iface', iface);
    setCopied(false);
    api(`/v1/allocations/${number}/upstream${qs({ router, iface, via })}`, { text: true })
      .then((t) => {
        setText(t);
        setErr('');
      })
      .catch((e) => {
        setText('');
        setErr(e.message);
      });
  }, [number, router, iface, via]);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const ta = document.getElementById('upstream-text');
      ta.select();
      document.execCommand('copy');
    }
    setCopied(true);
  };
  if (!overview) return html`<p class="muted">loading…</p>`;
  if (!allocs.length) return html`<p class="muted">no allocation</p>`;
  return html`<div class="upstream-view">
    <h1>upstream router</h1>
    <p class="muted">
      One static route per enabled slot, computed from the /48 alone: it does not change when a slot fails over.
    </p>
    <div class="filters">
      <label
        >allocation
        <select value=${number} onChange=${(e) => setAlloc(e.currentTarget.value)}>
          ${allocs.map((a) => html`<option value=${a.number}>${a.number} (${a.prefix})</option>`)}
        </select>
      </label>
      <label
        >router OS
        <select value=${router} onChange=${(e) => setRouter(e.currentTarget.value)} data-testid="router">
          ${me.routers.map((r) => html`<option value=${r}>${r}</option>`)}
        </select>
      </label>
      <label
        >interface on PrefixZero
        <input value=${iface} onInput=${(e) => setIface(e.currentTarget.value)} size="10" />
      </label>
      <label
        >next hop
        <select value=${via} onChange=${(e) => setVia(e.currentTarget.value)}>
          <option value="ll">link-local (GWPubLL)</option>
          <option value="global">global (GWPubIP6)</option>
        </select>
      </label>
      <button onClick=${copy} disabled=${!text}>${copied ? 'copied' : 'copy'}</button>
    </div>
    ${err ? html`<p class="error">${err}</p>` : null}
    <textarea id="upstream-text" class="config" readonly rows="24" data-testid="upstream-text" value=${text}></textarea>
  </div>`;
}
