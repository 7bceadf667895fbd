#!/bin/sh
# `npm run bench` / `npm run bench:notify`:  sh bench/bench.sh run|notify [options]
# Sets up a fresh Debian machine (BIND 9 for the primary and the reference secondary, its tools,
# dnsperf, npm packages), compiles ns2 (dist/ is what the bench runs, so it is always rebuilt,
# unless --ns2 DIR points at another build), then runs bench/<run|notify>.ts with the options.
set -eu
cd "$(dirname "$0")/.."
what="${1:-run}"
if [ $# -gt 0 ]; then shift; fi
case "$what" in run|notify) ;; *) echo "usage: sh bench/bench.sh run|notify [options]" >&2; exit 2 ;; esac

missing=""
command -v named >/dev/null 2>&1 || [ -x /usr/sbin/named ] || missing="$missing bind9"
command -v rndc >/dev/null 2>&1 || [ -x /usr/sbin/rndc ] || missing="$missing bind9-utils"
command -v dig >/dev/null 2>&1 || missing="$missing dnsutils"
command -v nsupdate >/dev/null 2>&1 || missing="$missing dnsutils"
command -v dnsperf >/dev/null 2>&1 || missing="$missing dnsperf"
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bench setup: installing Debian packages:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "bench setup: please install:$missing (as root: apt-get install$missing)" >&2
    exit 1
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

case " $* " in
  *" --ns2 "*|*" --ns2="*) ;;
  *) npx tsc -p tsconfig.json ;;
esac

exec node --import tsx "bench/$what.ts" "$@"
