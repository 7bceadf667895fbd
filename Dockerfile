# ns2 — secondary authoritative DNS server.
#
#   docker build -t ns2 .
#   docker run -d -p 53:53/udp -p 53:53/tcp -v ns2-data:/app/data \
#     -v "$PWD/config.json:/app/config.json:ro" ns2
#
#   docker exec ns2 sqlite3 /app/data/ns2.db "select name, serial, state from zones"
#
# BASE_IMAGE can be swapped for a compatible Node 24 Debian image (e.g. a mirror or a local copy);
# Node 24 is the current LTS (ns2 runs on 20, 22, 24 and 26).
ARG BASE_IMAGE=node:24-bookworm-slim

# ---------------------------------------------------------------------------------------------
# Build stage: compile TypeScript, the better-sqlite3 addon and ns2's own batched-UDP addon
# (native/udp_batch.c, built by the package's install script during npm ci), then drop dev deps.
FROM ${BASE_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json .npmrc binding.gyp ./
COPY native ./native
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
# After the build: drop dev dependencies, and keep only the compiled addon of better-sqlite3 12
# (its sources, object files and static library are ~25 MB) and of better-sqlite3 13's prebuilt
# binaries only this platform's (the others are ~15 MB), then check that the SQLite binding ns2
# picks loads (on Node >= 22 the prebuilt better-sqlite3 13, src/store/sqlite.ts).
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && mv node_modules/better-sqlite3/build/Release/better_sqlite3.node /tmp/ \
 && rm -rf node_modules/better-sqlite3/build node_modules/better-sqlite3/deps node_modules/better-sqlite3/src \
 && mkdir -p node_modules/better-sqlite3/build/Release \
 && mv /tmp/better_sqlite3.node node_modules/better-sqlite3/build/Release/ \
 && if [ -d node_modules/better-sqlite3-napi/prebuilds ]; then \
      find node_modules/better-sqlite3-napi/prebuilds -type f ! -name "linux-$(node -p process.arch).node" -delete; \
    fi \
 && node --input-type=module -e "const m = await import('/src/dist/store/sqlite.js'); const db = new m.default(':memory:'); db.prepare('select 1').get(); db.close(); console.log(m.sqliteBinding())" \
 && node -e "require('/src/build/Release/udp_batch.node'); require('/src/build/Release/heap_trim.node')"

# ---------------------------------------------------------------------------------------------
# Runtime stage: no compilers, no dev dependencies, runs as the unprivileged user `node` (uid 1000).
# The sqlite3 CLI is there for the operator: the database is meant to be read with it.
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends sqlite3 \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# The batched-UDP addon, found by dist/net/native-addon.js at ../../build/Release (without it ns2
# falls back to node:dgram and logs why).
COPY --from=build /src/build/Release/udp_batch.node ./build/Release/udp_batch.node
COPY --from=build /src/build/Release/heap_trim.node ./build/Release/heap_trim.node
# Default configuration: listen on all IPv4 and all IPv6 addresses, port 53, no zones (answers
# REFUSED to everything). Mount your own file over /app/config.json to serve zones.
RUN printf '%s\n' \
      '{' \
      '  "listen": [{ "address": "0.0.0.0", "port": 53 }, { "address": "::", "port": 53 }],' \
      '  "database": "/app/data/ns2.db",' \
      '  "zones": []' \
      '}' > /app/config.json \
 && mkdir -p /app/data \
 && chown node:node /app/data
VOLUME /app/data
USER node
EXPOSE 53/udp 53/tcp
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "dist/cli.js", "healthcheck", "--config", "/app/config.json"]
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["serve", "--config", "/app/config.json"]
