# tidemark: backup and restore daemon for ClickHouse and PostgreSQL.
# Runs `tidemark daemon` as a non-root user; configure it with environment variables
# (see README) or a YAML file given by TIDEMARK_CONFIG.

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only: the image's own Node 24 runs the code, so the `node`
# devDependency (used on machines whose system Node is older) is not needed here.
# Bookworm, because its PostgreSQL client tools are version 15, like LangSmith's server.
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
# pg_basebackup, pg_receivewal, pg_dump and pg_restore must match the server's major
# version (PostgreSQL 15 for LangSmith); zstd to inspect objects by hand; tini reaps
# children (pg_receivewal, pg_basebackup) and forwards signals.
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client-15 zstd ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 tidemark \
 && useradd --system --uid 10001 --gid tidemark --home-dir /var/lib/tidemark --create-home tidemark
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
ENV NODE_ENV=production \
    TIDEMARK_REPOSITORY=file:///var/lib/tidemark/repo
USER tidemark
VOLUME ["/var/lib/tidemark"]
EXPOSE 7575
ENTRYPOINT ["/usr/bin/tini", "--", "/app/bin/tidemark"]
CMD ["daemon"]
