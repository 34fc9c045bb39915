// The pure core: typed addresses and prefixes, the addressing plan, explain(), the error catalog.
export * from './errors.js';
export * from './ip.js';
export * from './plan.js';
export * from './explain.js';
