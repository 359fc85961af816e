# The tests' workerd config: the example service (examples/edge-worker/worker.js) with test hooks on
# (the x-test-now clock and x-test-namespace headers, /_test/* routes), fixed test secrets, 64 buckets
# and two legacy shards. Never deploy this: it exists for tests/edge/*.test.mjs only. The disk path and
# socket are set on the command line (-d do-storage=…, -s http=…).
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .sessionWorker),
    (name = "do-storage", disk = (path = "/tmp/pylon-sessions-do-test", writable = true)),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:8787", http = (), service = "main") ],
);

const sessionWorker :Workerd.Worker = (
  modules = [
    (name = "examples/edge-worker/worker.js", esModule = embed "../../examples/edge-worker/worker.js"),
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
    (name = "TEST_HOOKS", text = "1"),
    (name = "ADMIN_SECRET", text = "test-admin-secret-0123456789abcdef"),
    (name = "ROUTE_KEY", text = "test-route-key-0123456789abcdef0123456789abcdef"),
    (name = "BUCKET_BITS", text = "6"),
    (name = "LEGACY_SHARDS", text = "default,tenant-a"),
    (name = "PURGE_INTERVAL", text = "3600"),
    (name = "IDLE_TIMEOUT", text = "3600"),
    (name = "ABSOLUTE_TIMEOUT", text = "86400"),
  ],
);
