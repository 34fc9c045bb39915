// The pure core: typed addresses and prefixes, the addressing plan, the upstream address rules,
// which addresses are usable unicast (unicast.ts),
// slot references, explain(), the error catalog.
export * from './errors.js';
export * from './ip.js';
export * from './plan.js';
export * from './explain.js';
export * from './upstream.js';
export * from './unicast.js';
export * from './slot-ref.js';
export * from './forward.js';
