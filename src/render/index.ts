// The upstream renderers (DESIGN.md section 7): from the /48, the enabled slots and the upstream
// interface, the router's PrefixZero addresses and one static route per slot, in the syntax of
// each router OS. Pure: no I/O; the CLI, the API and the simulated farm all call renderUpstream.
import { ExitnodeError, q } from '../core/index.js';
import { bird } from './bird.js';
import { cisco } from './cisco.js';
import { RenderErrors } from './errors.js';
import { frr } from './frr.js';
import { ifupdown2 } from './ifupdown2.js';
import { ifaceError, type Renderer } from './iface.js';
import { junos } from './junos.js';
import { linux } from './linux.js';
import { mikrotik } from './mikrotik.js';
import { buildModel, type RouterOs, type UpstreamInput, type UpstreamModel } from './model.js';
import { openwrt } from './openwrt.js';
import { vyos } from './vyos.js';

export type { RouterOs, UpstreamInput, UpstreamModel, Via, SlotRoute } from './model.js';
export { parseSlotList, formatSlotList } from './slots.js';
export { RenderErrors } from './errors.js';
export { renderedRoutes, type RenderedRoute } from './routes.js';

const RENDERERS: Record<RouterOs, Renderer> = { linux, ifupdown2, frr, bird, vyos, mikrotik, cisco, junos, openwrt };

export const ROUTER_OSES: readonly RouterOs[] = Object.freeze([
  'linux',
  'ifupdown2',
  'frr',
  'bird',
  'vyos',
  'mikrotik',
  'cisco',
  'junos',
  'openwrt',
] as RouterOs[]);

export function isRouterOs(v: unknown): v is RouterOs {
  return typeof v === 'string' && (ROUTER_OSES as readonly string[]).includes(v);
}

function renderer(router: unknown): Renderer {
  if (!isRouterOs(router)) {
    throw new ExitnodeError(
      RenderErrors.UPSTREAM_ROUTER_UNKNOWN,
      `router ${q(router)} is unknown: exitnode renders for ${ROUTER_OSES.join(', ')}`,
    );
  }
  return RENDERERS[router];
}

/** Validates the input and returns what the renderers draw from (for callers that want JSON). */
export function upstreamModel(input: UpstreamInput): UpstreamModel {
  const r = renderer(input.router);
  if (typeof input.iface !== 'string') throw ifaceError(r.os, String(input.iface), 'it is not a string');
  r.checkIface(input.iface);
  return buildModel(input, r.os, input.iface);
}

/** The upstream router's configuration for `input.router`, as text. Pure; throws ExitnodeError on bad input. */
export function renderUpstream(input: UpstreamInput): string {
  const m = upstreamModel(input);
  return RENDERERS[m.router].render(m);
}
