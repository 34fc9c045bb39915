// until i10-store lands: src/core/view.ts parses the stage-2 fields of the view (candidates,
// priority, stepDown, sealTo, sealedKey, learnedEndpoint). Until it does, parseNodeView drops them;
// `parseView` is parseNodeView plus those fields copied over from the raw view with minimal checks.
// Once the parser keeps them this copies nothing (a field the parser gave is never replaced), and
// the agent's callers switch back to parseNodeView.

import { ExitnodeError, q } from '../core/errors.js';
import { parseNodeView, type NodeView } from '../core/view.js';
import { ViewErrors } from '../core/view/errors.js';

type Raw = Record<string, unknown>;

function bad(field: string, v: unknown, rule: string): never {
  throw new ExitnodeError(ViewErrors.VIEW_INVALID, `view field ${field} = ${q(v)} ${rule}`);
}

const isObj = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown, f: string): string => (typeof v === 'string' && v !== '' ? v : bad(f, v, 'is not a string'));

export function parseView(input: unknown): NodeView {
  const v = parseNodeView(input);
  const raw: unknown = typeof input === 'string' ? JSON.parse(input) : input;
  if (!isObj(raw)) return v;
  const slots = Array.isArray(raw.slots) ? raw.slots : [];
  v.slots.forEach((s, i) => {
    const r = slots[i];
    if (!isObj(r)) return;
    if (s.candidates === undefined && Array.isArray(r.candidates))
      s.candidates = r.candidates.map((c, j) => str(c, `slots[${i}].candidates[${j}]`));
    if (s.priority === undefined && r.priority !== undefined && r.priority !== null) {
      const p = r.priority;
      if (typeof p !== 'number' || !Number.isInteger(p) || p < 0 || p > 255)
        bad(`slots[${i}].priority`, p, 'is not a whole number from 0 to 255');
      s.priority = p;
    }
    if (s.stepDown === undefined && r.stepDown === true) s.stepDown = true;
  });
  if (v.sealTo === undefined && Array.isArray(raw.sealTo))
    v.sealTo = raw.sealTo.map((x, i) => {
      if (!isObj(x)) bad(`sealTo[${i}]`, x, 'is not an object');
      return { node: str(x.node, `sealTo[${i}].node`), key: str(x.key, `sealTo[${i}].key`) };
    });
  const nets = Array.isArray(raw.networks) ? raw.networks : [];
  v.networks.forEach((n, i) => {
    const rn = nets[i];
    if (!isObj(rn) || !Array.isArray(rn.resources)) return;
    const rres = rn.resources;
    n.resources.forEach((r, j) => {
      const x = rres[j];
      if (!isObj(x)) return;
      if (r.sealedKey === undefined && typeof x.sealedKey === 'string') r.sealedKey = x.sealedKey;
      if (r.learnedEndpoint === undefined && typeof x.learnedEndpoint === 'string')
        r.learnedEndpoint = x.learnedEndpoint;
    });
  });
  return v;
}
