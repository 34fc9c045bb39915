// Sign in with a farm or tenant token. The token stays in this tab's sessionStorage only.
import { useState } from 'preact/hooks';
import { html } from '../lib/html.js';

export function SignIn({ onToken, error, busy }) {
  const [t, setT] = useState('');
  return html`<div class="signin">
    <h1>exitnode</h1>
    <p class="muted">The farm's /48, its slots and nodes, live.</p>
    <form
      onSubmit=${(e) => {
        e.preventDefault();
        if (t.trim()) onToken(t.trim());
      }}
    >
      <label for="token">Farm or tenant token</label>
      <input
        id="token"
        name="token"
        type="password"
        autocomplete="off"
        spellcheck="false"
        placeholder="xn_…"
        value=${t}
        onInput=${(e) => setT(e.currentTarget.value)}
      />
      <button type="submit" disabled=${busy}>${busy ? 'signing in…' : 'Sign in'}</button>
    </form>
    ${error ? html`<p class="error" role="alert">${error}</p>` : null}
    <p class="muted small">
      The token is kept in this tab's session only (sessionStorage): closing the tab or signing out forgets it. A farm
      token shows the whole farm; a tenant token shows only that tenant's networks.
    </p>
  </div>`;
}
