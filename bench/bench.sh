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

# The project's own set-up: Debian packages (bind9 and its tools, dnsperf, …) and npm packages.
sh scripts/setup.sh

case " $* " in
  *" --ns2 "*|*" --ns2="*) ;;
  *) npx tsc -p tsconfig.json ;;
esac

exec node --import tsx "bench/$what.ts" "$@"
