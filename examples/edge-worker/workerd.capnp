# Runs the example session service locally in workerd with its Durable Objects on local disk:
#   scripts/build-edge.sh
#   export PYLON_ADMIN_SECRET=$(openssl rand -hex 32) PYLON_ROUTE_KEY=$(openssl rand -hex 32)
#   mkdir -p /tmp/pylon-do && node_modules/@cloudflare/workerd-linux-64/bin/workerd serve \
#     examples/edge-worker/workerd.capnp --experimental -d do-storage=/tmp/pylon-do -s http=127.0.0.1:8787
# It listens on 127.0.0.1 only: in production the service is reached through a service binding, never
# from the internet (see worker.js and wrangler.toml). No test hooks here: those live in the tests'
# own config (tests/edge/workerd-test.capnp). Module names mirror the paths from the repository root,
# so worker.js imports `../../pkg-edge/…` both here and under wrangler.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .sessionWorker),
    (name = "do-storage", disk = (path = "/tmp/pylon-sessions-do", writable = true)),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:8787", http = (), service = "main") ],
);

const sessionWorker :Workerd.Worker = (
  modules = [
    (name = "examples/edge-worker/worker.js", esModule = embed "worker.js"),
    (name = "pkg-edge/pylon_sessions.js", esModule = embed "../../pkg-edge/pylon_sessions.js"),
    (name = "pkg-edge/pylon_sessions_bg.wasm", wasm = embed "../../pkg-edge/pylon_sessions_bg.wasm"),
    (name = "pkg-edge/durable-object.js", esModule = embed "../../pkg-edge/durable-object.js"),
    (name = "pkg-edge/limits.js", esModule = embed "../../pkg-edge/limits.js"),
    (name = "pkg-edge/session-object.js", esModule = embed "../../pkg-edge/session-object.js"),
  ],
  compatibilityDate = "2025-09-01",
  compatibilityFlags = ["nodejs_compat"],
  durableObjectNamespaces = [
    (className = "SessionService", uniqueKey = "pylon-sessions-example", enableSql = true),
  ],
  durableObjectStorage = (localDisk = "do-storage"),
  bindings = [
    (name = "SESSIONS", durableObjectNamespace = "SessionService"),
    # Secrets from the environment: without them the service refuses administrative routes
    # (ADMIN_SECRET) or every route (ROUTE_KEY).
    (name = "ADMIN_SECRET", fromEnvironment = "PYLON_ADMIN_SECRET"),
    (name = "ROUTE_KEY", fromEnvironment = "PYLON_ROUTE_KEY"),
    (name = "BUCKET_BITS", text = "10"),
    (name = "LEGACY_SHARDS", text = "default"),
    (name = "PURGE_INTERVAL", text = "3600"),
    (name = "IDLE_TIMEOUT", text = "604800"),
    (name = "ABSOLUTE_TIMEOUT", text = "2592000"),
  ],
);
