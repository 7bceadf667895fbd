#!/bin/sh
# `npm run bench` / `npm run bench:notify` / `npm run bench:xot`:  sh bench/bench.sh run|notify|xot [options]
# Sets up a fresh Debian machine (BIND 9 for the primary and a secondary, Knot, NSD, PowerDNS
# with gsqlite3, dnsperf, npm packages), compiles ns2 (dist/ is what the bench runs, so it is always rebuilt,
# unless --ns2 DIR points at another build), then runs bench/<run|notify|xot>.ts with the options.
set -eu
cd "$(dirname "$0")/.."
what="${1:-run}"
if [ $# -gt 0 ]; then shift; fi
case "$what" in run|notify|xot) ;; *) echo "usage: sh bench/bench.sh run|notify|xot [options]" >&2; exit 2 ;; esac

# The project's own set-up: Debian packages (bind9 and its tools, knot, dnsperf, …), npm packages,
# the batched-UDP addon.
sh scripts/setup.sh

# What only the bench needs: the other servers it compares (NSD, PowerDNS with its SQLite backend)
# and taskset (util-linux) to pin servers and dnsperf to a CPU each.
if [ "$what" = run ]; then
  missing=""
  command -v nsd >/dev/null 2>&1 || [ -x /usr/sbin/nsd ] || missing="$missing nsd"
  command -v pdns_server >/dev/null 2>&1 || [ -x /usr/sbin/pdns_server ] || missing="$missing pdns-server"
  [ -f /usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql ] || missing="$missing pdns-backend-sqlite3"
  command -v taskset >/dev/null 2>&1 || missing="$missing util-linux"
  if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "bench: installing Debian packages:$missing"
      apt-get update -qq
      # Debian starts the daemons it installs when it can; the bench runs its own copies on
      # loopback ports of its choosing, so a packaged instance on port 53 does not matter.
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    else
      echo "bench: please install:$missing (as root: apt-get install$missing)" >&2
      exit 1
    fi
  fi
fi

case " $* " in
  *" --ns2 "*|*" --ns2="*) ;;
  *) npx tsc -p tsconfig.json ;;
esac

exec node --import tsx "bench/$what.ts" "$@"
