// The exitnode dashboard (issue 12): the farm's /48 as a map of PrefixZero and its 15 slots, the
// nodes, the tenant networks, the event history with the failovers' measured cost, the upstream
// router's configuration and explain — live from the event stream, served by TNoDB at /ui/.
//
// UI library: Preact (4 kB, React's component model, maintained by a large team and released
// often) with htm (tagged templates instead of JSX). Why these: the page has a dozen views that
// re-render small parts on every live event, which is what a component library with a DOM diff
// is for; Preact and htm are ES modules that a browser loads as they are, so the project keeps
// its rule of no build step, and both are npm dependencies that TNoDB serves itself at
// /ui/vendor/ (no CDN: the page works offline). Nothing else: the virtualised lists
// (lib/vlist.js), the SSE reader (lib/live.js) and the styles are ours and small.
//
// Layout: app.js (the shell: session, routing, live connection, shared state), lib/ (API, live
// tail, virtual list, formatting), views/ (one file per view). Stage 2 (VRRP candidates): the
// server already sends each slot's candidates with a role (today the lease holder, and the
// target of a planned move); views/map.js and views/slot.js draw that list and take the node
// with the answering role, so the VRRP roles (master, backup) appear without a change here.
import { render } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { html } from './lib/html.js';
import { api, qs, session, ApiError } from './lib/api.js';
import { connectLive } from './lib/live.js';
import { publish } from './lib/bus.js';
import { clock, debounce } from './lib/util.js';
import { SignIn } from './views/signin.js';
import { MapView } from './views/map.js';
import { SlotView } from './views/slot.js';
import { NodesView } from './views/nodes.js';
import { NetworksView } from './views/networks.js';
import { EventsView } from './views/events.js';
import { UpstreamView } from './views/upstream.js';
import { ExplainView } from './views/explain.js';

const HISTORY_KEEP = 2000;
/** The overview (slots, leases, nodes) is read again this often, and after events. */
const OVERVIEW_EVERY_MS = 2000;

function parseHash() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  return { view: parts[0] || '', args: parts.slice(1) };
}

/** Applies a slot event to the overview at once (the refetch that follows confirms it). */
function patchOverview(o, batch) {
  if (!o) return o;
  let changed = false;
  const allocations = o.allocations.map((a) => {
    const slots = a.slots.map((s) => {
      let n = s;
      for (const e of batch) {
        if (e.allocation !== a.number || e.slot !== s.slot) continue;
        if (e.kind === 'slot.moved' || e.kind === 'slot.assigned') {
          n = {
            ...n,
            node: e.data.to,
            epoch: e.data.epoch,
            health: undefined,
            movingTo: undefined,
            candidates: [{ node: e.data.to, role: 'holder' }],
            lastMove: { from: e.data.from ?? null, at: e.at, cause: e.data.cause },
          };
        } else if (e.kind === 'failover' || e.kind === 'gateway.healthy') n = { ...n, health: 'ok' };
        else if (e.kind === 'gateway.unhealthy') n = { ...n, health: e.data.reason };
      }
      if (n !== s) changed = true;
      return n;
    });
    return { ...a, slots };
  });
  return changed ? { ...o, allocations } : o;
}

function App() {
  const [token, setToken] = useState(session.token);
  const [me, setMe] = useState(null);
  const [error, setError] = useState('');
  const [route, setRoute] = useState(parseHash());
  const [live, setLive] = useState({ state: 'connecting' });
  const [farms, setFarms] = useState([]);
  const [farm, setFarm] = useState(null);
  const [overview, setOverview] = useState(null);
  const [history, setHistory] = useState([]);
  const overviewAt = useRef(0);

  useEffect(() => {
    const on = () => setRoute(parseHash());
    addEventListener('hashchange', on);
    const unauth = () => signOut('the server no longer accepts this token: sign in again');
    addEventListener('exitnode:unauthorized', unauth);
    return () => {
      removeEventListener('hashchange', on);
      removeEventListener('exitnode:unauthorized', unauth);
    };
  }, []);

  const signOut = useCallback((why = '') => {
    session.token = null;
    setToken(null);
    setMe(null);
    setOverview(null);
    setHistory([]);
    setError(why);
  }, []);

  // Who the token is.
  useEffect(() => {
    if (!token) return;
    let gone = false;
    api('/v1/session', { token })
      .then(async (s) => {
        if (gone) return;
        if (s.scope === 'node')
          return signOut('a node token cannot use the dashboard: sign in with a farm or tenant token');
        if (s.scope === 'admin') {
          const allocs = await api('/v1/allocations');
          const names = [...new Set(allocs.map((a) => a.farm))].sort();
          setFarms(names);
          setFarm(names[0] ?? null);
        } else if (s.scope === 'farm') setFarm(s.subject);
        setMe(s);
      })
      .catch(
        (e) =>
          !gone && signOut(e instanceof ApiError && e.status === 401 ? 'TNoDB does not know this token' : e.message),
      );
    return () => {
      gone = true;
    };
  }, [token]);

  const loadOverview = useCallback(async () => {
    if (!farm) return;
    const t = performance.now();
    const o = await api(`/v1/farms/${encodeURIComponent(farm)}/overview`);
    overviewAt.current = t;
    setOverview({ ...o, skew: o.now - Date.now() });
  }, [farm]);
  const reload = useRef(debounce(() => undefined, 150));
  useEffect(() => {
    reload.current = debounce(() => loadOverview().catch(() => undefined), 150);
    setOverview(null);
    loadOverview().catch((e) => setError(e.message));
    // Lease renewals and heartbeats are not events (one a second per node): refresh for the ages.
    const t = setInterval(() => {
      if (document.visibilityState === 'visible' && performance.now() - overviewAt.current > OVERVIEW_EVERY_MS - 100)
        loadOverview().catch(() => undefined);
    }, OVERVIEW_EVERY_MS);
    return () => clearInterval(t);
  }, [loadOverview]);

  // History, then the live tail from where it ended.
  useEffect(() => {
    if (!me) return;
    let conn;
    let gone = false;
    const filter = farm && me.scope === 'admin' ? { farm } : {};
    api(`/v1/events${qs({ ...filter, limit: 200 })}`)
      .then((page) => {
        if (gone) return;
        setHistory(page.events);
        conn = connectLive({
          token,
          after: page.next,
          onState: (s) => {
            setLive(s);
            // Back after a loss: what changed meanwhile came as events, but refetch to be sure.
            if (s.state === 'live' && s.resumed) {
              reload.current();
              publish([{ kind: 'resync' }]);
            }
          },
          onEvents: (batch) => {
            const mine = me.scope === 'admin' && farm ? batch.filter((e) => e.farm === farm) : batch;
            if (!mine.length) return;
            setHistory((h) => [...h, ...mine].slice(-HISTORY_KEEP));
            setOverview((o) => patchOverview(o, mine));
            reload.current();
            publish(mine);
          },
        });
      })
      .catch((e) => setError(e.message));
    return () => {
      gone = true;
      conn?.stop();
    };
  }, [me, farm]);

  if (!token || !me)
    return html`<${SignIn}
      error=${error}
      busy=${Boolean(token)}
      onToken=${(t) => {
        session.token = t;
        setError('');
        setToken(t);
      }}
    />`;

  const isFarm = me.scope !== 'tenant';
  const tabs = isFarm
    ? [
        ['', 'Map'],
        ['nodes', 'Nodes'],
        ['networks', 'Networks'],
        ['events', 'Events'],
        ['upstream', 'Upstream'],
        ['explain', 'Explain'],
      ]
    : [
        ['networks', 'My networks'],
        ['events', 'Events'],
        ['explain', 'Explain'],
      ];
  const view = route.view || (isFarm ? '' : 'networks');
  const props = { me, farm, overview, history, route, reload: loadOverview };
  let body;
  if (view === '' && isFarm) body = html`<${MapView} ...${props} />`;
  else if (view === 'slot' && isFarm) body = html`<${SlotView} ...${props} />`;
  else if (view === 'nodes' && isFarm) body = html`<${NodesView} ...${props} />`;
  else if (view === 'networks') body = html`<${NetworksView} ...${props} />`;
  else if (view === 'events') body = html`<${EventsView} ...${props} />`;
  else if (view === 'upstream' && isFarm) body = html`<${UpstreamView} ...${props} />`;
  else if (view === 'explain') body = html`<${ExplainView} ...${props} />`;
  else body = html`<p class="muted">no such view: <a href="#/">back</a></p>`;

  return html`<div class="shell">
    <header>
      <a class="brand" href="#/">exitnode</a>
      <nav>
        ${tabs.map(
          ([v, label]) =>
            html`<a
              href=${`#/${v}`}
              class=${view === v || (v === '' && view === 'slot') ? 'on' : ''}
              data-tab=${v || 'map'}
              >${label}</a
            >`,
        )}
      </nav>
      <div class="who">
        ${
          me.scope === 'admin' && farms.length > 1
            ? html`<select value=${farm} onChange=${(e) => setFarm(e.currentTarget.value)} aria-label="farm">
                ${farms.map((f) => html`<option value=${f}>${f}</option>`)}
              </select>`
            : null
        }
        <span class="scope">${me.scope}${me.subject ? ` ${me.subject}` : ''}</span>
        <${LiveBadge} live=${live} />
        <button class="link" onClick=${() => signOut()}>sign out</button>
      </div>
    </header>
    ${
      live.state === 'lost'
        ? html`<div class="banner lost" role="alert" data-testid="connection-lost">
            Connection to TNoDB lost at ${clock(live.since)} (${live.why}). Reconnecting — what you see may be out of
            date.
          </div>`
        : null
    }
    ${error ? html`<div class="banner error" role="alert">${error}</div>` : null}
    <main>${body}</main>
  </div>`;
}

function LiveBadge({ live }) {
  const text = { live: 'live', connecting: 'connecting…', lost: 'connection lost' }[live.state];
  return html`<span class=${`live ${live.state}`} data-testid="live" data-state=${live.state} title="the event stream"
    >${text}</span
  >`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
