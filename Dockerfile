# One image for every kind of Agora node: `SERVICES` picks what a container hosts
# (api, users, products, orders). Build: `docker build -t agora .`
#
# The runtime needs `DATABASE_URL` (and `TRANSPORTER`, `CACHER`): the embedded PostgreSQL of
# `npm start` is a laptop default, not something to run inside a container.

ARG NODE_IMAGE=node:20-bookworm-slim

# --- build: dev dependencies and the TypeScript compiler, thrown away afterwards ---
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Dependencies first, so that a source change doesn't reinstall them.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# .dockerignore keeps node_modules, dist, tests, docs and secrets out of the context.
COPY . .
RUN npm run build

# --- runtime: production dependencies and the compiled JavaScript, run as a non-root user ---
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# Install scripts only unpack the embedded PostgreSQL binaries, which a container never starts.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# `node` (uid 1000) comes with the official image; it owns nothing under /app, so the code can't
# be changed by the process that runs it.
USER node
# 3000: gateway (PORT), 3001: health of nodes without the gateway (HEALTH_PORT),
# 3030: Prometheus /metrics (METRICS_PORT).
EXPOSE 3000 3001 3030
# No HEALTHCHECK here: the port to probe depends on the node kind (gateway on PORT, other nodes on
# HEALTH_PORT), so docker-compose.yml and k8s/ declare the checks per kind.
# `node` directly, not `npm start`: SIGTERM reaches the broker, which finishes in-flight requests.
# The Node flags of every node: lib/node-flags.ts says why.
CMD ["node", "--max-semi-space-size=4", "dist/bin/agora.js"]
