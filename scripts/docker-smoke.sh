#!/usr/bin/env bash
# Smoke test of the Docker image: build it, run it like a user would, probe it with dig, run its
# HEALTHCHECK, read its database with the sqlite3 CLI inside the image, run the image's default
# config (port 53 on IPv4 and IPv6) once, stop it and check that it shut down cleanly as the
# unprivileged user.
#
#   bash scripts/docker-smoke.sh          # from the repository root, as root (CI does this)
#
# Uses podman as the engine (scripts/podman-env.sh installs and configures it, and builds a local
# stand-in for the node:24-bookworm-slim base image, since no registry is reachable here).
# Every wait is bounded; the container and its volume are removed on every exit path.
# Prints one PASS/FAIL line per check and exits non-zero if any check failed.
#
# Environment knobs: NS2_IMAGE (default localhost/ns2:ci), NS2_SMOKE_SKIP_BUILD=1 (reuse the image),
# NS2_SMOKE_START_TIMEOUT (seconds to wait for the first answer, default 30).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

IMAGE=${NS2_IMAGE:-localhost/ns2:ci}
START_TIMEOUT=${NS2_SMOKE_START_TIMEOUT:-30}
NAME=ns2-smoke-$$
VOLUME=ns2-smoke-data-$$
TMPDIR_SMOKE=$(mktemp -d /tmp/ns2-smoke.XXXXXX)
passed=0
failed=0

pass() { passed=$((passed + 1)); printf 'PASS: %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL: %s\n' "$*"; }
info() { printf 'INFO: %s\n' "$*"; }
check() { # check DESCRIPTION COMMAND... — PASS if the command succeeds, FAIL otherwise
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

container_created=0
default_created=0
DEFAULT_NAME=ns2-smoke-default-$$
cleanup() {
  local rc=$?
  set +e
  if [ "$container_created" = 1 ]; then
    if [ "$failed" -gt 0 ] || [ "$rc" -ne 0 ]; then
      echo "---- last container logs ($NAME) ----"
      timeout 30 podman logs --tail 40 "$NAME" 2>&1
      echo "-------------------------------------"
    fi
    timeout 60 podman rm -f -t 0 "$NAME" >/dev/null 2>&1
  fi
  if [ "$default_created" = 1 ]; then
    if [ "$failed" -gt 0 ] || [ "$rc" -ne 0 ]; then
      echo "---- last container logs ($DEFAULT_NAME) ----"
      timeout 30 podman logs --tail 20 "$DEFAULT_NAME" 2>&1
      echo "-------------------------------------"
    fi
    timeout 60 podman rm -f -t 0 "$DEFAULT_NAME" >/dev/null 2>&1
  fi
  timeout 60 podman volume rm -f "$VOLUME" >/dev/null 2>&1
  rm -rf "$TMPDIR_SMOKE"
  if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
    echo "FAIL: docker smoke test aborted (exit $rc)"
    failed=1
  fi
  echo "docker-smoke: $passed passed, $failed failed"
  if [ "$failed" -gt 0 ]; then exit 1; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

abort() { # a step the rest depends on failed: record it and stop (cleanup runs from the trap)
  fail "$*"
  exit 1
}

# ---- engine ---------------------------------------------------------------------------------
# shellcheck source=scripts/podman-env.sh
source "$repo_root/scripts/podman-env.sh"
if ! command -v dig >/dev/null 2>&1; then
  info "installing dig (bind9-dnsutils)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bind9-dnsutils >/dev/null
fi

# ---- build ----------------------------------------------------------------------------------
if [ "${NS2_SMOKE_SKIP_BUILD:-0}" = 1 ] && podman image exists "$IMAGE"; then
  info "reusing existing image $IMAGE (NS2_SMOKE_SKIP_BUILD=1)"
else
  # Untagged images (earlier builds, build-stage cache) pile up run after run: drop those older
  # than an hour, keeping the recent build cache.
  timeout 300 podman image prune -f --filter until=1h >/dev/null 2>&1 || true
  info "building $IMAGE from $NODE_BASE_IMAGE"
  build_start=$(date +%s)
  if timeout 1800 podman build --format docker --build-arg BASE_IMAGE="$NODE_BASE_IMAGE" \
      -t "$IMAGE" . >"$TMPDIR_SMOKE/build.log" 2>&1; then
    pass "image builds ($(($(date +%s) - build_start)) s)"
  else
    tail -n 60 "$TMPDIR_SMOKE/build.log"
    abort "image build failed (see the log tail above)"
  fi
fi
size_bytes=$(podman image inspect --format '{{.Size}}' "$IMAGE")
info "image size: $((size_bytes / 1000 / 1000)) MB"

check "HEALTHCHECK is kept in the image (docker format)" \
  test -n "$(podman image inspect --format '{{if .Healthcheck}}{{.Healthcheck.Test}}{{end}}' "$IMAGE" 2>/dev/null ||
    podman image inspect --format '{{.Config.Healthcheck}}' "$IMAGE" 2>/dev/null)"
image_user=$(podman image inspect --format '{{.Config.User}}' "$IMAGE")
check "image USER is node (got '$image_user')" test "$image_user" = node
no_toolchain() {
  timeout 60 podman run --rm --network host --no-healthcheck --entrypoint /bin/sh "$IMAGE" -c \
    '! command -v g++ && ! command -v make && ! command -v python3' >/dev/null 2>&1
}
check "runtime image has no compiler toolchain (g++, make, python3)" no_toolchain

# ---- run ------------------------------------------------------------------------------------
# A free loopback port (UDP and TCP), picked now; a high one because, as non-root with the host's
# network, the server cannot bind port 53.
PORT=$(node -e '
  const net = require("node:net"), dgram = require("node:dgram");
  const tryPort = (n) => {
    if (n === 0) { console.error("no free port found"); process.exit(1); }
    const port = 20000 + Math.floor(Math.random() * 40000);
    const tcp = net.createServer();
    tcp.once("error", () => tryPort(n - 1));
    tcp.listen(port, "127.0.0.1", () => {
      const udp = dgram.createSocket("udp4");
      udp.once("error", () => { tcp.close(); tryPort(n - 1); });
      udp.bind(port, "127.0.0.1", () => { udp.close(); tcp.close(); console.log(port); });
    });
  };
  tryPort(50);
')
info "smoke port: 127.0.0.1:$PORT"

cat >"$TMPDIR_SMOKE/config.json" <<EOF
{
  "listen": [{ "address": "127.0.0.1", "port": $PORT }],
  "database": "/app/data/ns2.db",
  "zones": []
}
EOF
chmod 755 "$TMPDIR_SMOKE"
chmod 644 "$TMPDIR_SMOKE/config.json"

container_created=1
# --health-interval=disable: no systemd here to run the check on a timer; it is run by hand below.
if ! timeout 120 podman run -d --name "$NAME" --network host --health-interval=disable \
    -v "$TMPDIR_SMOKE/config.json:/app/config.json:ro" \
    -v "$VOLUME:/app/data" \
    "$IMAGE" >/dev/null 2>"$TMPDIR_SMOKE/run.err"; then
  cat "$TMPDIR_SMOKE/run.err"
  abort "podman run failed"
fi
pass "container $NAME started"

running() { [ "$(podman inspect --format '{{.State.Running}}' "$NAME" 2>/dev/null)" = true ]; }

# Wait for the first answer over UDP.
answer=""
deadline=$(($(date +%s) + START_TIMEOUT))
while :; do
  if answer=$(dig @127.0.0.1 -p "$PORT" example.test SOA +time=1 +tries=1 2>&1) &&
      grep -q 'status:' <<<"$answer"; then
    break
  fi
  if ! running; then
    abort "container exited before answering (exit code $(podman inspect --format '{{.State.ExitCode}}' "$NAME"))"
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    abort "no DNS answer on 127.0.0.1:$PORT within ${START_TIMEOUT}s"
  fi
  sleep 0.5
done
pass "server answers over UDP on 127.0.0.1:$PORT"

header_checks() { # header_checks TRANSPORT DIG-OUTPUT
  local proto=$1 out=$2 flags="" status="" re_flags=';; flags: ([^;]*);' re_status='status: ([A-Z]+),'
  if [[ $out =~ $re_flags ]]; then flags=${BASH_REMATCH[1]}; fi
  if [[ $out =~ $re_status ]]; then status=${BASH_REMATCH[1]}; fi
  check "$proto: status REFUSED for a zone not served (got '$status')" test "$status" = REFUSED
  check "$proto: header flags '$flags' include qr" grep -qw qr <<<"$flags"
  check "$proto: header flags '$flags' do not include ra" bash -c '! grep -qw ra <<<"$1"' _ "$flags"
}
header_checks UDP "$answer"

tcp_answer=$(dig @127.0.0.1 -p "$PORT" example.test SOA +tcp +time=3 +tries=1 2>&1 || true)
if grep -q 'status:' <<<"$tcp_answer"; then
  pass "server answers over TCP on 127.0.0.1:$PORT"
  header_checks TCP "$tcp_answer"
else
  fail "server answers over TCP on 127.0.0.1:$PORT"
  printf '%s\n' "$tcp_answer" | tail -n 5
fi

# HEALTHCHECK (no systemd timer here: run it by hand, as `docker` would on its interval). It checks
# readiness: this config has no zones, so the server answers (REFUSED) but must not be healthy.
hc_out=$(timeout 60 podman healthcheck run "$NAME" 2>&1) && hc_rc=0 || hc_rc=$?
check "podman healthcheck run fails without zones (exit $hc_rc)" test "$hc_rc" -ne 0
hc_output=$(podman inspect --format '{{range .State.Healthcheck.Log}}{{.Output}}{{end}}' "$NAME" 2>/dev/null |
  tail -n 1 || true)
check "health check says why (${hc_output:-${hc_out:-?}})" grep -q 'no zones configured' <<<"$hc_output$hc_out"

# The server process (PID 1 in the container, no npm/shell in between) runs as uid 1000.
pid1_status=$(timeout 30 podman exec "$NAME" cat /proc/1/status 2>&1 || true)
pid1_uid=$(awk '$1 == "Uid:" { print $2 }' <<<"$pid1_status")
# argv[0], not Name: (Node 24 names its main thread "MainThread").
pid1_name=$(timeout 30 podman exec "$NAME" sh -c 'basename "$(tr "\0" "\n" </proc/1/cmdline | head -n 1)"' 2>&1 || true)
check "server process runs as uid 1000 (got '${pid1_uid:-?}')" test "$pid1_uid" = 1000
check "PID 1 is node itself (got '${pid1_name:-?}')" test "$pid1_name" = node
check "/app/data volume is writable by the server user" timeout 30 podman exec "$NAME" test -w /app/data
info "/app/data holds: $(timeout 30 podman exec "$NAME" ls -A /app/data 2>&1 | tr '\n' ' ')"

# The operator's window: the sqlite3 CLI inside the image reads the live database (WAL).
sqlite_out=$(timeout 30 podman exec "$NAME" sqlite3 /app/data/ns2.db \
  "select 'schema ' || max(version) from schema_version; select 'zones ' || count(*) from zones;" 2>&1 || true)
check "sqlite3 inside the image reads /app/data/ns2.db (got: $(tr '\n' ' ' <<<"$sqlite_out"))" \
  bash -c 'grep -Eq "^schema [0-9]+$" <<<"$1" && grep -q "^zones 0$" <<<"$1"' _ "$sqlite_out"

# ---- stop -----------------------------------------------------------------------------------
stop_start=$(date +%s%N)
if timeout 60 podman stop -t 10 "$NAME" >/dev/null 2>&1; then
  stop_ms=$((($(date +%s%N) - stop_start) / 1000000))
  exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$NAME")
  check "graceful stop on SIGTERM: exit code $exit_code after ${stop_ms} ms" test "$exit_code" = 0
  check "stopped before the 10 s kill timeout" test "$stop_ms" -lt 10000
else
  fail "podman stop -t 10 did not finish"
fi
logs=$(timeout 30 podman logs "$NAME" 2>/dev/null || true)
log_lines=$(grep -c . <<<"$logs" || true)
non_json=$(grep -v -c -e '^{.*}$' -e '^$' <<<"$logs" || true)
check "logs are JSON lines ($log_lines lines, $non_json not JSON)" \
  test "$log_lines" -gt 0 -a "$non_json" -eq 0
# The image carries the batched-UDP addon: UDP is answered through it, not the dgram fallback.
check "UDP through the native batched socket (io batched logged, no fallback warning)" \
  bash -c 'grep -q "\"io\":\"batched\"" <<<"$1" && ! grep -q "batched UDP I/O unavailable" <<<"$1"' _ "$logs"

# ---- the image's own default config ---------------------------------------------------------
# Port 53 on 0.0.0.0 and ::, as the unprivileged user: in its own network namespace with the
# sysctl Docker sets (podman does not by default), published on a free loopback port.
default_cfg=$(timeout 60 podman run --rm --network host --no-healthcheck --entrypoint cat "$IMAGE" \
  /app/config.json 2>&1 || true)
check "default config listens on IPv4 and IPv6 (0.0.0.0 and ::)" \
  bash -c 'grep -q "\"address\": \"0.0.0.0\"" <<<"$1" && grep -q "\"address\": \"::\"" <<<"$1"' _ "$default_cfg"
DPORT=$(node -e '
  const net = require("node:net");
  const s = net.createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });
')
default_created=1
if timeout 120 podman run -d --name "$DEFAULT_NAME" --network slirp4netns:enable_ipv6=true \
    --sysctl net.ipv4.ip_unprivileged_port_start=0 --health-interval=disable \
    -p "127.0.0.1:$DPORT:53/udp" -p "127.0.0.1:$DPORT:53/tcp" "$IMAGE" >/dev/null 2>"$TMPDIR_SMOKE/run2.err"; then
  default_answer=""
  deadline=$(($(date +%s) + START_TIMEOUT))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if default_answer=$(dig @127.0.0.1 -p "$DPORT" example.test SOA +time=1 +tries=1 2>&1) &&
        grep -q 'status:' <<<"$default_answer"; then
      break
    fi
    sleep 0.5
  done
  check "default config answers on port 53 (published as 127.0.0.1:$DPORT)" grep -q 'status: REFUSED' <<<"$default_answer"
  default_logs=$(timeout 30 podman logs "$DEFAULT_NAME" 2>&1 || true)
  check "default config listens on :: port 53 (UDP and TCP)" \
    bash -c 'grep "\"address\":\"::\"" <<<"$1" | grep -q "\"port\":53"' _ "$default_logs"
  timeout 60 podman stop -t 10 "$DEFAULT_NAME" >/dev/null 2>&1 || true
else
  cat "$TMPDIR_SMOKE/run2.err"
  fail "podman run of the default config failed"
fi

# cleanup (trap) prints the summary and sets the exit status
