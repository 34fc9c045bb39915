// The architecture as code: the layering of STYLE.md ("The shape of the code") and issue 9,
// checked by `npm run arch` (dependency-cruiser) in CI beside the linter. Every rule says why.
//
// The layers, lowest first (a layer may import the ones below it, never one above):
//   core                      pure: addresses, the addressing plan, ownership names, the error catalog
//   compile, render           pure: node view → desired kernel state; upstream router configurations
//   reconcile                 pure: diff(desired, actual) → plan
//   kernel                    the only part that runs ip / nft / wg
//   agent                     the loop on a node (talks to the server through client)
//   store < api < server      the TNoDB server side
//   client                    the HTTP client of the API, used by agent, sim and cli
//   sim                       the simulated farm: may use every part but cli
//   cli                       the top: command definitions only; nothing in src imports it
//   web (outside src)         the dashboard in the browser: imports only web/, preact and htm
//
// Tests (*.test.ts) may import anything inside the repository (they test across layers);
// test/, bench/ and scripts/ are not production code and are only held to "inside the repo".
// Type-only imports count (tsPreCompilationDeps): a type import is still a dependency a reader
// must follow, and a layer that needs a type from above has the type in the wrong place.
// The rules of the impure layers leave imports of src/cli to `nothing-imports-cli`, so that one
// bad edge is reported once.

/** A test file: exempt from the layer rules. */
const TEST = '\\.test\\.ts$';
/** Pure layers: STYLE.md says they never touch the network, the disk or a clock. */
const PURE = '^src/(core|compile|reconcile|render)/';
/** Node modules that reach the disk, the network, other processes, threads, the host or a clock. */
const NODE_IO =
  '^(node:)?(fs|fs/promises|child_process|net|http|https|http2|dgram|dns|dns/promises|tls|' +
  'worker_threads|cluster|readline|readline/promises|os|inspector|timers|timers/promises|perf_hooks)$';
/** Layers below server/agent that do no I/O and may be used by every upper layer. */
const PURE_TARGETS = ['^src/core/', '^src/compile/', '^src/reconcile/', '^src/render/'];

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    // ---------------------------------------------------------------- cycles
    {
      name: 'no-cycle',
      comment:
        'An import cycle makes two modules one: neither can be read, tested or moved alone, and the ' +
        'order in which ES modules initialise decides what is undefined at load time. A lazy ' +
        '`await import()` only hides the cycle from the loader, not from the reader (sim farm ↔ ' +
        'failover), so dynamic imports count; so do type-only imports.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },

    // ---------------------------------------------------------------- the pure layers
    {
      name: 'core-imports-only-core',
      comment:
        'core is the bottom: the addressing plan, ownership names and the error catalog that every ' +
        'other part builds on. If it imported anything else (another layer, an npm package) every ' +
        'part would depend on that too, and core could no longer be tested as a function of its inputs.',
      severity: 'error',
      from: { path: '^src/core/', pathNot: TEST },
      to: { pathNot: '^src/core/', dependencyTypesNot: ['core'] },
    },
    {
      name: 'compile-imports-only-core',
      comment:
        'compile is pure: (view, node config) → desired state. It depends on core only, so the ' +
        'agent can own its caches and its config type can live below it, not in agent.',
      severity: 'error',
      from: { path: '^src/compile/', pathNot: TEST },
      to: { pathNot: '^src/(compile|core)/', dependencyTypesNot: ['core'] },
    },
    {
      name: 'render-imports-only-core',
      comment:
        'render turns the plan into router configurations, golden-tested as functions of their ' +
        'inputs; the server and the CLI call it, never the other way round.',
      severity: 'error',
      from: { path: '^src/render/', pathNot: TEST },
      to: { pathNot: '^src/(render|core)/', dependencyTypesNot: ['core'] },
    },
    {
      name: 'reconcile-imports-only-core-and-desired-types',
      comment:
        'reconcile diffs desired against actual state: it needs the shape of the desired state ' +
        '(src/compile/desired.ts, the types and their small helpers) but never the compiler itself, ' +
        'so the diff can be tested on hand-written desired states.',
      severity: 'error',
      from: { path: '^src/reconcile/', pathNot: TEST },
      to: { pathNot: ['^src/(reconcile|core)/', '^src/compile/desired\\.ts$'], dependencyTypesNot: ['core'] },
    },
    {
      name: 'pure-layers-no-io',
      comment:
        'STYLE.md: core, compile, reconcile and render never touch the network, the disk, other ' +
        'processes or a clock. ESLint checks static imports of some of these; this also catches a ' +
        'dynamic `await import("node:fs")`, which no-restricted-imports does not see.',
      severity: 'error',
      from: { path: PURE, pathNot: TEST },
      to: { path: NODE_IO },
    },

    // ---------------------------------------------------------------- the node side
    {
      name: 'kernel-imports-only-pure-layers',
      comment:
        'kernel is the adapter to ip / nft / wg. It executes plans made below it and must not know ' +
        'the loop that drives it (agent), the server or the simulator: that is what makes it a seam ' +
        'with a fake beside it.',
      severity: 'error',
      from: { path: '^src/kernel/', pathNot: TEST },
      to: { path: '^src/', pathNot: ['^src/(kernel|cli)/', ...PURE_TARGETS] },
    },
    {
      name: 'agent-imports-kernel-client-and-pure-layers',
      comment:
        'agent is the loop on a node: it fetches its view through the API client, and observes and ' +
        'applies through kernel. It never reaches into the server side (store/api/server), the ' +
        'simulator or the CLI: the CLI calls the agent, not the reverse.',
      severity: 'error',
      from: { path: '^src/agent/', pathNot: TEST },
      to: { path: '^src/', pathNot: ['^src/(agent|kernel|client|cli)/', ...PURE_TARGETS] },
    },

    // ---------------------------------------------------------------- the server side
    {
      name: 'store-imports-only-core',
      comment:
        'store is the persistence layer under the API. Validation of what it stores (addresses, ' +
        'prefixes) belongs in core, not in a renderer; anything else would drag HTTP or router ' +
        'formats into the database code.',
      severity: 'error',
      from: { path: '^src/store/', pathNot: TEST },
      to: { path: '^src/', pathNot: '^src/(store|core|cli)/' },
    },
    {
      name: 'api-imports-store-and-pure-layers',
      comment:
        'api is the HTTP layer over the store (and serves rendered router configurations). It is ' +
        'started by server; it does not know the agent, the kernel, the simulator or the CLI.',
      severity: 'error',
      from: { path: '^src/api/', pathNot: TEST },
      to: { path: '^src/', pathNot: ['^src/(api|store|cli)/', ...PURE_TARGETS] },
    },
    {
      name: 'server-imports-api-store-and-pure-layers',
      comment: 'server wires the store to the API and listens; it sits on top of the server side only.',
      severity: 'error',
      from: { path: '^src/server/', pathNot: TEST },
      to: { path: '^src/', pathNot: ['^src/(server|api|store|cli)/', ...PURE_TARGETS] },
    },
    {
      name: 'client-imports-core-and-store-record-types',
      comment:
        "client speaks the API's wire format and throws core's catalogued errors. The records the " +
        'API sends are the ones declared in src/store/types.ts (the API serialises them as they are), ' +
        'so the client takes their types from there: one declaration, and a change to a record ' +
        'breaks the client at compile time instead of at run time. That file is interfaces only ' +
        'and the rule below keeps the import type-only, so no store code (PostgreSQL, migrations) ' +
        'is ever loaded by the agent through its client. CLI option parsing belongs in cli.',
      severity: 'error',
      from: { path: '^src/client/', pathNot: TEST },
      to: { path: '^src/', pathNot: ['^src/(client|core|cli)/', '^src/store/types\\.ts$'] },
    },
    {
      name: 'client-imports-store-types-only-as-types',
      comment: 'See above: the record types are erased at run time; a value import would load store code.',
      severity: 'error',
      from: { path: '^src/client/', pathNot: TEST },
      to: { path: '^src/store/', dependencyTypesNot: ['type-only'] },
    },

    // ---------------------------------------------------------------- the top
    {
      name: 'nothing-imports-cli',
      comment:
        'cli is the top: command definitions that call into the parts below. A part that imports ' +
        'cli (its argument parser, its io) can no longer be used without the command line.',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/cli/', TEST] },
      to: { path: '^src/cli/' },
    },
    {
      name: 'src-folder-has-a-layer',
      comment:
        'Every folder of src is a layer with a rule above. A new folder (or a file directly in src) ' +
        'must be placed in the layering here before it may import anything.',
      severity: 'error',
      from: {
        path: '^src/',
        pathNot: ['^src/(core|compile|render|reconcile|kernel|agent|store|api|server|client|sim|cli)/', TEST],
      },
      to: {},
    },

    // ---------------------------------------------------------------- the dashboard (web/)
    {
      name: 'web-imports-only-web-and-its-libraries',
      comment:
        'web/ is the dashboard: ES modules the server sends to the browser as they are (src/api/ui.ts), ' +
        "with no build step. They can only load each other and the two libraries the page's import " +
        'map serves from /ui/vendor/ (preact, preact/hooks, htm); a Node module, a file of src or ' +
        'any other npm package would not load in the browser. The API is reached over HTTP only.',
      severity: 'error',
      from: { path: '^web/' },
      to: { pathNot: ['^web/', '^node_modules/(preact|htm)/'] },
    },
    {
      name: 'nothing-imports-web',
      comment:
        'web/ is browser code served as files; the server reads it from the disk (src/api/ui.ts) and ' +
        'never imports it, and no Node code may come to depend on a module written for the browser.',
      severity: 'error',
      from: { path: '^(src|test|bench|scripts|bin)/' },
      to: { path: '^web/' },
    },

    // ---------------------------------------------------------------- processes
    {
      name: 'child-process-only-in-kernel-and-sim-procs',
      comment:
        'Starting programs is where argv injection and leaked processes come from (STYLE.md, do 1): ' +
        'the agent runs programs only through kernel, and the simulator keeps all its process ' +
        'handling (wireguard-go, the agents it starts, waiting for them to exit) in src/sim/procs.ts. ' +
        'Tests, benchmarks and scripts drive processes of their own and are exempt.',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/kernel/', '^src/sim/procs\\.ts$', TEST] },
      to: { path: '^(node:)?child_process$' },
    },

    // ---------------------------------------------------------------- tests and the repository
    {
      name: 'no-test-code-in-production',
      comment:
        'Production code (src, without its tests) must not import a test, a test helper, a ' +
        'benchmark or a script: they are not shipped, and they pull test-only dependencies in.',
      severity: 'error',
      from: { path: '^src/', pathNot: TEST },
      to: { path: [TEST, '^(test|bench|scripts)/'] },
    },
    {
      name: 'nothing-outside-the-repository',
      comment:
        'A clone of the repository alone must build and pass its tests (issue 9, item 1): no import ' +
        'may leave it (../shared, an absolute path).',
      severity: 'error',
      from: {},
      to: { path: '^(\\.\\./|/)' },
    },
    {
      name: 'no-unresolvable-import',
      comment:
        'An import that does not resolve is a missing dependency or a file outside the clone that ' +
        'happens to exist on one machine; either way the check above cannot see where it points.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    // worktrees may link node_modules to another checkout: keep npm packages at node_modules/…,
    // where they are for the program, instead of the link's target outside the repository
    preserveSymlinks: true,
    tsConfig: { fileName: 'tsconfig.json' },
    // resolve npm packages through their "exports" maps, as Node does (tsx/esm/api in bin/)
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.mts', '.js', '.mjs', '.cjs', '.json', '.d.ts'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
