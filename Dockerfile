# syntax=docker/dockerfile:1
# One image for every role (api, worker, scheduler, relay, or all of them); docker-compose.yml picks the role
# with its command. The service runs its TypeScript sources through tsx (a runtime dependency, loaded
# with `node --import tsx`), so there is no build step and dev dependencies stay out of the image.
# Node 22 is the image's runtime (a supported LTS; two dependencies declare Node >= 22); the code
# itself still runs on Node 20 (package.json engines, CI).
FROM node:22-slim

WORKDIR /app

# The relay's ffmpeg (CONTRACT §10): Debian's, found on PATH (without it, the static binary that
# @ffmpeg-installer ships in node_modules is used).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg util-linux \
 && rm -rf /var/lib/apt/lists/*

# Dependencies first, so that a source change does not reinstall them.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

COPY tsconfig.json ./
COPY config ./config
COPY src ./src
COPY workers ./workers

# The sources stay owned by root (read-only for the service); only the data dir is writable. It is
# used only when SECRETS_KEY / ADMIN_API_KEY are not set (the zero-configuration default writes them
# there) — production sets both.
RUN mkdir -p /app/.data && chown node:node /app/.data
USER node

# NODE_ENV is deliberately not set: nothing in Syndicast branches on it, and `npm ci --omit=dev`
# above is what keeps dev dependencies out. Configuration is the environment (see README.md).
ENV HOST=0.0.0.0 \
    PORT=3000
EXPOSE 3000 1935

# Redis is never embedded in the image: set REDIS_URL (or REDIS_CLUSTER_NODES).
# node is PID 1 itself (no npm / npx / tsx wrapper in between; docker-compose.yml adds `init: true`, whose
# tini is PID 1 then and forwards the signal to node): SIGTERM reaches the service, which shuts
# down gracefully (close-with-grace). The npm scripts run the same command behind `exec` (npm forwards
# SIGTERM to it), but npm as PID 1 would be one more process and is not needed here.
# Default: all roles in one process. Production: `node --import tsx src/main/api.ts`,
# `node --import tsx workers/mirror.ts`, `node --import tsx workers/scheduler.ts`, `node --import tsx workers/relay.ts`
# (docker-compose.yml).
CMD ["node", "--import", "tsx", "src/main/all.ts"]
