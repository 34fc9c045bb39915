// explain for any address or prefix typed in: which slot and NR, which namespaces and interfaces
// carry it, the path from the upstream router, and what TNoDB adds (the NR's network, node and
// ExitPoint). A tenant can explain its own networks' addresses only.
import { useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { api, qs } from '../lib/api.js';

export function ExplainView() {
  const [text, setText] = useState(sessionStorage.getItem('exitnode.explain') ?? '');
  const [r, setR] = useState(null);
  const [err, setErr] = useState('');
  const run = (e) => {
    e?.preventDefault();
    if (!text.trim()) return;
    sessionStorage.setItem('exitnode.explain', text.trim());
    api(`/v1/explain${qs({ address: text.trim() })}`)
      .then((x) => {
        setR(x);
        setErr('');
      })
      .catch((x) => {
        setR(null);
        setErr(x.message);
      });
  };
  const t = r?.tnodb ?? {};
  return html`<div class="explain-view">
    <h1>explain</h1>
    <form class="filters" onSubmit=${run}>
      <input
        class="filter"
        placeholder="an address or prefix: 2001:db8:5e:1abd::9, 10.26.188.7, fe80::1abc:1, 2001:db8:5e:1000::/52"
        value=${text}
        onInput=${(e) => setText(e.currentTarget.value)}
        data-testid="explain-input"
      />
      <button type="submit">explain</button>
    </form>
    ${err ? html`<p class="error" data-testid="explain-error">${err}</p>` : null}
    ${
      r
        ? html`<section class="card" data-testid="explain-result">
            <h2>${r.input}: ${r.role}</h2>
            <p>
              ${r.slot !== undefined ? html`slot <a href=${`#/slot/${r.allocation.number}/${r.slot}`}>${r.allocation.number}/${r.slot}</a>` : null}
              ${r.nr ? `, NR ${r.nr}` : ''}; allocation ${r.allocation.prefix} (number ${r.allocation.number})
            </p>
            ${
              t.network
                ? html`<p>
                    network <b>${t.name}</b> (${t.network}) of tenant ${t.tenant}; NR on node <b>${t.node}</b>;
                    ExitPoint ${t.exit} on ${t.exitNode ?? '-'}
                  </p>`
                : null
            }
            ${t.slotHolder !== undefined ? html`<p>the slot is answered by <b>${t.slotHolder ?? 'no node'}</b> (epoch ${t.epoch})</p>` : null}
            ${
              r.carriers.length
                ? html`<h3>carried by</h3>
                    <table>
                      ${r.carriers.map(
                        (c) =>
                          html`<tr>
                            <td>${c.namespace}</td>
                            <td>${c.interface}</td>
                            <td>${c.how}</td>
                            <td>${c.detail}</td>
                          </tr>`,
                      )}
                    </table>`
                : null
            }
            ${
              r.path.length
                ? html`<h3>path from the upstream router</h3>
                    <ol class="path">
                      ${r.path.map((h) => html`<li><b>${h.at}</b>: <code>${h.route}</code><br /><small>${h.note}</small></li>`)}
                    </ol>`
                : null
            }
            ${
              r.unknown.length
                ? html`<h3>not determined by the plan alone</h3>
                    <ul>
                      ${r.unknown.map((u) => html`<li>${u}</li>`)}
                    </ul>`
                : null
            }
          </section>`
        : null
    }
  </div>`;
}
