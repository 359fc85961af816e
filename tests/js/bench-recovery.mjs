// Crash-recovery benchmark on OPFS: the time from a writing worker's death (`worker.terminate()` while
// it commits) to a usable store in the next worker, in headless Chromium and Firefox, next to the
// browser's own release time measured in the same run (the floor: a bare JS loop retrying
// `createSyncAccessHandle` on a file the dead worker was writing). Both sides use workers that had
// already loaded their code when the writer died (tests/js/fixtures/faults.js, kill-worker.js), so the
// figures are the wait for the browser to free the handles plus, for the crate, installing the pool,
// opening the database and replaying its WAL. Needs pkg/ (scripts/build-pkg.sh). Prints Markdown on
// stdout, progress on stderr; nothing is asserted (tests/js/faults.test.mjs checks the behaviour).
//
//   node tests/js/bench-recovery.mjs [--smoke] [--rounds N]      (PYLON_TEST_BROWSERS=chromium|firefox)
import { BROWSERS, launch } from "./browsers.mjs";

const args = process.argv.slice(2);
const smoke = args.includes("--smoke") || process.env.PYLON_BENCH_SMOKE === "1";
const roundsAt = args.indexOf("--rounds");
const ROUNDS = roundsAt >= 0 ? Number(args[roundsAt + 1]) : smoke ? 3 : 30;
const log = (m) => process.stderr.write(`[bench-recovery] ${m}\n`);

function quantile(v, q) {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}
const ms = (v) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));

const rows = [];
for (const name of BROWSERS) {
  log(`${name}: ${ROUNDS} rounds of each kind`);
  const browser = await launch(name);
  try {
    const run = (kind, rounds, busy) => browser.page.start(async ([kind, rounds, busy]) => {
      const { killRounds } = await import("/tests/js/fixtures/faults.js");
      return killRounds({ kind, rounds, busy, dbName: `bench-recovery-${kind}-${Date.now()}.db` });
    }, [kind, rounds, busy]).result({ timeout: 900_000 });
    // Floor and crate alternate in blocks, so both see the same machine; each for a writer that yields
    // after every commit (a worker serving requests) and for one that never yields (a long job).
    for (const busy of [false, true]) {
      const floor = [];
      const crate = [];
      const waits = [];
      let lost = 0;
      const blocks = smoke ? 1 : 3;
      const per = Math.ceil(ROUNDS / blocks);
      for (let b = 0; b < blocks; b++) {
        const f = await run("floor", per, busy);
        floor.push(...f.rounds.map((r) => r.takeoverMs));
        const c = await run("crate", per, busy);
        crate.push(...c.rounds.map((r) => r.takeoverMs));
        waits.push(...c.rounds.map((r) => r.lockWaitMs));
        lost += c.lost ?? 0;
      }
      rows.push({ name: `${name} ${browser.version}`, writer: busy ? "never yields" : "yields after each commit", floor, crate, waits, lost });
      log(`${name} (${busy ? "busy" : "yielding"} writer): floor p50 ${ms(quantile(floor, 0.5))} ms, crate p50 ${ms(quantile(crate, 0.5))} ms`);
    }
  } finally {
    await browser.close();
  }
}

console.log(`\n### Crash recovery on OPFS: a writing worker terminated, time to a usable store${smoke ? " (smoke: the figures mean nothing)" : ""}\n`);
console.log("| browser | killed writer | rounds | floor p50 ms | floor p90 ms | crate p50 ms | crate p90 ms | crate's wait for the pool p50 ms | acknowledged lost |");
console.log("|---|---|---|---|---|---|---|---|---|");
for (const r of rows) {
  console.log(`| ${r.name} | ${r.writer} | ${r.crate.length} | ${ms(quantile(r.floor, 0.5))} | ${ms(quantile(r.floor, 0.9))} | ${ms(quantile(r.crate, 0.5))} | ${ms(quantile(r.crate, 0.9))} | ${ms(quantile(r.waits, 0.5))} | ${r.lost} |`);
}
console.log("\n- floor: a bare loop retrying `createSyncAccessHandle` (no delay) on the file the killed worker was writing; crate: `SessionStore.open` on OPFS (pool install with its retries, database open, WAL replay) until it resolves; both from `terminate()` on the page to the next worker's message");
