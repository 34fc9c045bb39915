#!/usr/bin/env bash
# The release as a farmer gets it, checked end to end (CI runs it after the tests; `npm run test:release`):
#   1. npm pack (its prepack builds dist/), install the tarball with `npm install -g --prefix` into
#      a throwaway prefix, and check what it carries (dist/ with source maps, systemd units, the
#      Grafana dashboard, docs, CHANGELOG) and what it must not (src/, tsx, TypeScript);
#   2. from that prefix, in another directory: exitnode --version, exitnode plan;
#   3. the installed server: /healthz with its version, /docs opened in Chromium (every route
#      shown, nothing fetched from elsewhere), every metric of the dashboard in its /metrics;
#   4. as root: exitnode sim up / sim check / sim down from the installed package (namespaces
#      "xr-", state /run/exitnode-sim-xr-release: apart from the tests' "xs-" and the default "sim-"),
#      with the dashboard's metrics checked against the live server and agents of that farm;
#   5. npm run bench:start with the installed package beside dist/ and tsx.
# Other sessions may run root tests at the same time: run this under flock /tmp/exitnode-root.lock.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
work="$(mktemp -d /tmp/exitnode-release-XXXXXX)"
prefix="$work/prefix"
state=/run/exitnode-sim-xr-release
nsprefix=xr-
server_pid=""
sim_started=""
cleanup() {
  set +e
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null; fi
  if [ -n "$sim_started" ]; then "$prefix/bin/exitnode" sim down --state "$state" --ns-prefix "$nsprefix" >/dev/null 2>&1; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "release check: $*" >&2
  exit 1
}

version="$(node -p 'require("./package.json").version')"
echo "== release: npm pack (builds dist/), exitnode $version on node $(node --version)"
npm pack --silent --pack-destination "$work" >/dev/null
tgz="$work/exitnode-$version.tgz"
[ -f "$tgz" ] || fail "npm pack did not write $tgz"
echo "$(basename "$tgz"): $(du -k "$tgz" | cut -f1) KiB, $(tar -tzf "$tgz" | wc -l) files"

echo "== release: npm install -g --prefix $prefix $(basename "$tgz")"
npm install -g --no-audit --no-fund --loglevel=error --prefix "$prefix" "$tgz"
pkg="$prefix/lib/node_modules/exitnode"
for f in bin/exitnode.js dist/cli/main.js dist/cli/main.js.map dist/store/pglite-worker.mjs \
  dist/store/migrations/001_init.sql deploy/systemd/exitnode-agent.service deploy/systemd/exitnode-server.service \
  deploy/grafana/exitnode.json docs/deploy.md docs/errors.md README.md CHANGELOG.md; do
  [ -f "$pkg/$f" ] || fail "the installed package lacks $f"
done
[ ! -e "$pkg/src" ] || fail "the installed package carries src/"
[ -z "$(find "$pkg/dist" -name '*.ts' -o -name '*.test.*')" ] || fail "dist/ carries TypeScript or tests"
for d in tsx typescript esbuild; do [ ! -e "$pkg/node_modules/$d" ] || fail "the installed package pulled in $d"; done
grep -q '"sourcesContent"' "$pkg/dist/cli/main.js.map" || fail "the source maps lack the TypeScript"
echo "installed: $(find "$pkg/dist" -name '*.js' | wc -l) modules in dist/, no src/, no tsx/typescript"

# From now on the installed exitnode, run from a directory that is not the checkout.
export PATH="$prefix/bin:$PATH"
cd "$work"
[ "$(command -v exitnode)" = "$prefix/bin/exitnode" ] || fail "exitnode on PATH is $(command -v exitnode)"
echo "== release: exitnode --version; exitnode plan (installed, cwd $work)"
v="$(exitnode --version)"
echo "$v"
[ "$v" = "exitnode $version" ] || fail "exitnode --version said '$v'"
plan="$(exitnode plan 2001:db8:5e::/48 --allocation 1 --slot 1)"
echo "$plan" | head -4
echo "$plan" | grep -q 'prefix *2001:db8:5e:1000::/52' || fail "exitnode plan did not give slot 1's /52"

echo "== release: the installed server: /healthz, /docs in Chromium, the dashboard's metrics in /metrics"
port="$(node -e 's=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
exitnode server --data "$work/server" --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server_pid=$!
url="http://127.0.0.1:$port"
for _ in $(seq 1 150); do curl -fsS "$url/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
health="$(curl -fsS "$url/healthz")" || fail "the installed server did not answer: $(cat "$work/server.log")"
echo "/healthz: $health"
echo "$health" | grep -q "\"version\":\"$version\"" || fail "/healthz does not say version $version"
curl -fsS "$url/docs/json" | node -e 'const d=JSON.parse(require("fs").readFileSync(0));if(!d.openapi)process.exit(1)' ||
  fail "/docs/json is not an OpenAPI document"
(cd "$repo" && node --import tsx scripts/docs-browser.ts "$url" --screenshot "$work/docs.png")
(cd "$repo" && EXITNODE_TOKEN_FILE="$work/server/admin.token" node --import tsx scripts/grafana-metrics.ts deploy/grafana/exitnode.json --agent-source src/agent "$url/metrics")
kill "$server_pid" && wait "$server_pid" || true
server_pid=""

if [ "$(id -u)" = 0 ]; then
  echo "== release: exitnode sim up / check / down from the installed package (namespaces $nsprefix*, state $state)"
  [ ! -e "$state/sim.json" ] || exitnode sim down --state "$state" --ns-prefix "$nsprefix" || true
  sim_started=1
  exitnode sim up --state "$state" --ns-prefix "$nsprefix" --allocation 7
  exitnode sim check --state "$state" | tail -1
  agents="$(node -e '
    const fs = require("fs"), s = JSON.parse(fs.readFileSync(process.argv[1] + "/sim.json", "utf8"));
    const urls = s.nodes.map((n) => JSON.parse(fs.readFileSync(n.stateDir + "/agent.json", "utf8")).metrics + "/metrics");
    console.log([s.server.url + "/metrics", ...urls].join(" "));' "$state")"
  echo "live metrics: $agents"
  # Every metric of the dashboard in the live /metrics of the farm's server and agents; only the
  # agent's counters of events that have not happened (a fence, a drift repair) come from its source.
  # shellcheck disable=SC2086
  (cd "$repo" && EXITNODE_TOKEN_FILE="$state/server/admin.token" node --import tsx scripts/grafana-metrics.ts deploy/grafana/exitnode.json --agent-source src/agent --counters-only $agents)
  exitnode sim down --state "$state" --ns-prefix "$nsprefix"
  sim_started=""
  [ -z "$(ip netns list | grep "^$nsprefix")" ] || fail "sim down left namespaces $nsprefix*"
else
  [ "${CI:-}" != true ] || fail "the sim check needs root"
  echo "== release: sim up/check/down skipped: not root"
fi

cd "$repo"
echo "== release: start time, built against tsx (npm run bench:start)"
node bench/start.bench.mjs --no-build --runs 10 --installed "$prefix"
echo "release check: ok"
