// Query strings are text, and the server does not coerce types (app.ts: `"prefixLength": true` is
// not 1). A route whose query schema declares numbers names them here: a value written as plain
// decimal digits (at most 15, with at most 3 decimals) becomes a number before validation; anything
// else ("1e3", "0x10", " 7", "") stays text and the schema refuses it with a 400 naming the field.
import type { FastifyRequest } from 'fastify';

const DECIMAL = /^[0-9]{1,15}(\.[0-9]{1,3})?$/;

export function queryNumbers(...fields: string[]): (req: FastifyRequest) => Promise<void> {
  return async (req) => {
    const qs = req.query as Record<string, unknown> | undefined;
    if (!qs || typeof qs !== 'object') return;
    for (const f of fields) {
      const v = qs[f];
      if (typeof v === 'string' && DECIMAL.test(v)) qs[f] = Number(v);
    }
  };
}
