# syntax=docker/dockerfile:1
#
# Postern's container image.
#
#   docker build -t postern .
#   docker run --read-only -v postern-data:/var/lib/postern -p 587:2587 -p 465:2465 -p 9587:9587 postern
#
# Three stages: compile the TypeScript, install the production dependencies from the lockfile,
# and a runtime stage holding only those two results. Debian slim rather than Alpine: it is the
# libc CI tests on, and the image has no native modules that Alpine would make smaller.

ARG NODE_IMAGE=node:20-bookworm-slim

# --- build: every dependency (TypeScript, type packages), then `npm run build` into dist/ ---
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# --- prod-deps: exactly the lockfile's production dependencies, nothing from devDependencies ---
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# --- runtime ---
FROM ${NODE_IMAGE} AS runtime

# A fixed UID/GID, so volume ownership and a Kubernetes securityContext (runAsUser, fsGroup)
# can name it. /nonexistent as home: nothing may write outside the volume, not even a dotfile.
# The image's npm and yarn are removed: Postern never runs them, and they would only be more
# code for scanners to report and an attacker to use.
RUN groupadd --system --gid 10001 postern \
 && useradd --system --uid 10001 --gid postern --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin postern \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack /usr/local/bin/npm /usr/local/bin/npx \
      /usr/local/bin/corepack /opt/yarn-* /usr/local/bin/yarn /usr/local/bin/yarnpkg \
 && mkdir -p /var/lib/postern /etc/postern/tls \
 && chown postern:postern /var/lib/postern \
 && chmod 0700 /var/lib/postern

# UV_THREADPOOL_SIZE is chosen by the executable itself (dist/cli/postern.cjs) unless set here.
ENV NODE_ENV=production \
    POSTERN_CONFIG=/etc/postern/postern.yaml

# The application is owned by root and only readable by the runtime user, so a compromised
# process cannot change its own code or the baseline policy.
WORKDIR /app
COPY package.json ./
COPY --from=prod-deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY policies ./policies
COPY helm/postern/files/postern.yaml /etc/postern/postern.yaml

# The one place Postern writes: the spool, the users file created on the first start and a
# self-signed certificate while no real one is mounted. Config, policies and certificates are
# mounted read-only under /etc/postern by whoever runs the image (the Helm chart does); those
# are not declared as volumes, so a plain `docker run` does not leave anonymous volumes behind.
# With --read-only (readOnlyRootFilesystem) nothing else is needed: Postern writes no
# temporary files.
VOLUME ["/var/lib/postern"]

# submission (STARTTLS), submissions (implicit TLS), http (/metrics, /healthz, /readyz)
EXPOSE 2587 2465 9587

USER 10001:10001

# The slim image has no curl; Node's own fetch asks the liveness endpoint. Kubernetes ignores
# HEALTHCHECK and uses the chart's probes on the same paths.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9587/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# Node runs as PID 1 with no init. The kernel gives PID 1 no default signal actions, which is
# harmless here: `postern start` handles SIGTERM and SIGINT itself (readiness fails, listeners
# close, sessions and deliveries drain, exit 0), and a second signal exits at once. Postern
# starts no long-lived children (only `node --check` on a broken custom rule, which it waits
# for), so there are no orphans to reap and tini would add nothing.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/dist/cli/postern.cjs"]
CMD ["start"]
