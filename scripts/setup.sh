#!/bin/sh
# One-time set-up for `npm start` and `npm test` on a fresh Debian machine: the BIND 9 tools the
# demo and the integration tests run against, Knot DNS (knotd, a downstream secondary of ns2 in
# the transfer tests), npm packages, the batched-UDP addon, and the compiled daemon.
# Idempotent and quick when everything is already there.
set -eu
cd "$(dirname "$0")/.."

missing=""
command -v named >/dev/null 2>&1 || [ -x /usr/sbin/named ] || missing="$missing bind9"
command -v dig >/dev/null 2>&1 || missing="$missing dnsutils"
command -v rndc >/dev/null 2>&1 || [ -x /usr/sbin/rndc ] || missing="$missing bind9-utils"
command -v sqlite3 >/dev/null 2>&1 || missing="$missing sqlite3"
command -v knotd >/dev/null 2>&1 || [ -x /usr/sbin/knotd ] || missing="$missing knot"
command -v dnsperf >/dev/null 2>&1 || missing="$missing dnsperf"
# cc: the native addon, and the small C load clients of the rate-limit tests (test/fixtures/*.c).
command -v cc >/dev/null 2>&1 || missing="$missing gcc"
# systemd-analyze checks contrib/ns2.service (test/integration/systemd.test.ts).
command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"
command -v kdig >/dev/null 2>&1 || missing="$missing knot-dnsutils"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
# promtool checks the deployment example's Prometheus config and alert rules.
command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian packages:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "setup: please install:$missing (as root: apt-get install$missing)" >&2
    exit 1
  fi
fi

# npm ci when node_modules is missing or older than the lock file.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

# The batched-UDP addon (npm ci builds it; this covers a node_modules that predates it, or a changed
# native/udp_batch.c). A failed build is not fatal: ns2 then uses node:dgram.
if [ ! -f build/Release/udp_batch.node ] || [ native/udp_batch.c -nt build/Release/udp_batch.node ]; then
  npm run --silent build:native >/dev/null 2>&1 || echo "setup: native UDP addon not built; ns2 will use dgram" >&2
fi

# Compile when any source is newer than the build.
if [ ! -f dist/cli.js ] || [ -n "$(find src -newer dist/cli.js -name '*.ts' | head -n 1)" ]; then
  npx tsc -p tsconfig.json
fi
