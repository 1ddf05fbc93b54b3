/// <reference types="node" />
/**
 * `npm run bench`: starts bench/worker.ts in local workerd (wrangler's
 * programmatic API, local mode, no account, no network), runs each
 * measurement inside the Worker for the library and for the hand-written
 * baseline, then the Node-side measurements (the test layer, no workerd, no
 * baseline; each repetition in a Node process of its own), and prints the medians over the repetitions with their ratio,
 * then the bundle size report (scripts/size.ts).
 *
 *   npm run bench -- [<group> ...] [--json FILE]
 *   npx vite-node bench/run.ts [--] [<group> ...] [--json FILE]
 *
 * Groups (the `group` of each entry of MEASUREMENTS, then `size`):
 * `schedule` (one job per call), `submit` (batched schedule), `fire` (jobs
 * due at once: batched dispatch at the default 10 jobs per request, batches
 * of 25, and one request per job), `drift` (batched at the default, and one
 * request per job), `drain` (5,000 due at once: alarm invocations and jobs/s),
 * `pool` (no-op at each cap, hand-off, saturation), `confirm` (the replay
 * check), `shards` (the library over 1, 2, 4 and 8 SchedulerDOs: fire and
 * schedule throughput, calls per operation, list latency), `metrics` (fire
 * with the SchedulerDO's metrics off and on), `testclock` (the
 * in-memory test layer driving a year of jobs under `TestClock.adjust`, in
 * Node) and `size` (the bundle size report, built without workerd). With
 * none named, all run; named ones run in that order, whatever the order of
 * the arguments. An unknown group or option exits with code 2 before workerd
 * starts; `--help` prints the groups.
 *
 * The library dispatches in batches (`LUNORA_SCHEDULER_DISPATCH_BATCH`,
 * default 10 jobs per request): the rows labelled "batched" run `SchedulerDO`
 * at that default, "25 jobs per request" run `Batch25SchedulerDO`, "100"
 * (the ceiling) `Batch100SchedulerDO`, and "one request per job" run
 * `SingleSchedulerDO` (`LUNORA_SCHEDULER_DISPATCH_BATCH` 1, one request per
 * job as before batching). The baseline sends one request per job
 * throughout; the rows of `fire-batch25`, `fire-batch100`, `fire-single` and `drift-single`
 * run the library only and compare with the baseline of `fire` or `drift`
 * (their `samples.baseline` are that measurement's).
 *
 * The `shards` group has no hand-written baseline: it runs the library only,
 * `Scheduler.make({ shards: N })` over `SchedulerDO` at its default settings,
 * and each row compares with the same measurement at 1 shard in the same run
 * (its `baseline` and `samples.baseline` are that measurement's library
 * values), so a ratio reads N shards / 1 shard.
 *
 * Arguments: vite-node gives the script `process.argv` as
 * `[node, vite-node, ...arguments after the script's path]`, with every `--`
 * taken out, so `npx vite-node bench/run.ts -- fire` and
 * `npx vite-node bench/run.ts fire` both read `fire`. Through npm, put the
 * arguments after `--` (`npm run bench -- fire --json out.json`): without it
 * npm takes `--json` as its own option.
 *
 * `--json FILE` (or `--json=FILE`) also writes what the table prints to FILE:
 *
 *   {
 *     date: string,            // ISO time the run started
 *     reps: number,            // BENCH_REPS
 *     node: string,            // process.version
 *     wrangler: string,        // wrangler's version
 *     groups: string[],        // the groups that ran, in run order
 *     rows: Array<{
 *       group: string,         // the group of the row's measurement
 *       measurement: string,   // MEASUREMENTS' name ("schedule-single") ...
 *       field: string,         // ... and the field of its result ("p50Ms"): a key that stays when labels change
 *       row: string,           // the label as printed, without the indent of a sub-row
 *       unit: "jobs/s" | "calls/s" | "ms" | "alarms" | "calls",  // alarms: alarm invocations of one Durable Object; calls: into SchedulerDOs
 *       library: number | null,  // the medians, unrounded (null: n/a)
 *       baseline: number | null, // null also where there is no baseline (testclock)
 *       ratio: number | null,    // library/baseline as printed (2 decimals), null where the table prints "-"
 *       samples: { library: number[], baseline: number[] }  // each repetition's value, in order
 *     }>,                      // in the table's order
 *     poolMostRunning?: { library: number, baseline: number },  // when `pool` ran: the footer's cap check
 *     warnings: string[],      // the WARNING lines under the table, without the prefix
 *     size?: Report            // when `size` ran: `measure()` of scripts/size.ts
 *   }
 *
 * The file is written once the table is printed and again with `size` once
 * that report is done, so a failing size step keeps the measurements.
 *
 * The Worker is built from a snapshot of `src/` and `bench/` taken at start,
 * in a temporary directory that also holds its Durable Object storage:
 * wrangler's bundler watches its inputs whatever `dev.watch` says, so an edit
 * to the working tree during a run would otherwise reload the Worker mid-way.
 *
 * BENCH_REPS (default 3) sets the repetitions, of the Node-side measurements
 * too; BENCH_VERBOSE=1 prints each result. The results of fire, drift and
 * drain also carry `singleRequests` and `batchRequests`: the library's
 * dispatch requests the endpoint received at `Dispatch.path` and at
 * `Dispatch.batchPath` (a batch of one goes to `Dispatch.path`).
 */
import { rmSync } from "node:fs"
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises"
import { spawn } from "node:child_process"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { snapshot } from "../scripts/snapshot.js"
import type { Report } from "../scripts/size.js"

process.env.WRANGLER_SEND_METRICS = "false"
// Miniflare otherwise fetches the `Request.cf` object from workers.cloudflare.com
process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false"

const REPS = Number(process.env.BENCH_REPS ?? 3)
const VERBOSE = process.env.BENCH_VERBOSE === "1"
const SINGLE = 500
const BATCHES = 20
const BATCH_SIZE = 500
const FIRE = 2000
const DRIFT = 2000
const SPREAD_MS = 2000
const LEAD_MS = 1500
const DEFAULT_DISPATCH_BATCH = 10
const LARGE_DISPATCH_BATCH = 25
/** The setting's ceiling (`MAX_BATCH_JOBS`). */
const MAX_DISPATCH_BATCH = 100
const DRAIN = 5000
const DRAIN_LEAD_MS = 3000
const POOL_JOBS = 600
const POOL_CAPS = [1, 8, 64] as const
const HANDOFF_JOBS = 100
const SLOW_MS = 20
const SATURATION_CAP = 8
const SATURATION_JOBS = 160
const CALL_TIMEOUT_MS = 120_000
/** The shard counts of the `shards` group's throughput rows; each row compares with the first, 1. */
const SHARD_COUNTS = [1, 2, 4, 8] as const
/** The shard counts whose calls per operation and list latency are measured. */
const SHARD_EXTREMES = [1, 8] as const
/** Jobs per submit call of the `shards` group's schedule rows (each split by shard). */
const SHARD_SUBMIT = 100
/** Untimed calls before the `shards` group's one-job-per-call rows, so every shard's object is awake at each N. */
const SHARD_PRIME = 50
const SHARD_LIST_JOBS = 2000
const SHARD_LIST_CALLS = 30
const SHARD_LIST_LIMIT = 100
const TESTCLOCK_JOBS = [2000, 10_000] as const
/** Jobs over a year under the bulk driver, `TestScheduler.advance` (the issue's budget: 100,000 in under 5 s). */
const ADVANCE_JOBS = 100_000
const TESTCLOCK_CHUNK = 500
const YEAR_DAYS = 365
/** The wall time one test-layer run may take before it is stopped (and its rows left out, with a warning). */
const TESTCLOCK_LIMIT_MS = 180_000

type Impl = "library" | "baseline"
type Result = Record<string, number>

const IMPLS: ReadonlyArray<Impl> = ["library", "baseline"]

interface Measurement {
  readonly group: string
  readonly name: string
  /** Where it runs: a path of the Worker, or a function here in Node (no workerd, no baseline). */
  readonly at: string | ((query: Record<string, number>) => Promise<Result>)
  readonly query: Record<string, number>
  readonly warm: Record<string, number>
  /** The measurement whose baseline its rows compare with: it runs the library only. */
  readonly baselineOf?: string
  /**
   * Or: the measurement whose library results stand as its rows' baseline (the
   * `shards` group compares N shards with 1): it runs the library only.
   */
  readonly relativeTo?: string
}

/** A measurement of the Worker. */
type InWorker = Measurement & { readonly at: string }

/**
 * Each measurement, in the order they run (the Worker's first, then Node's):
 * the group that selects it, a name for the rows, where it runs, its query,
 * and a smaller query to warm up with.
 */
const MEASUREMENTS: ReadonlyArray<Measurement> = [
  { group: "schedule", name: "schedule-single", at: "/bench/schedule-single", query: { n: SINGLE }, warm: { n: 50 } },
  {
    group: "schedule",
    name: "schedule-single-promise",
    at: "/bench/schedule-single",
    query: { n: SINGLE, promise: 1 },
    warm: { n: 50, promise: 1 },
    baselineOf: "schedule-single"
  },
  {
    group: "submit",
    name: "schedule-batch",
    at: "/bench/schedule-batch",
    query: { batches: BATCHES, size: BATCH_SIZE },
    warm: { batches: 2, size: 500 }
  },
  ...([
    ["fire", DEFAULT_DISPATCH_BATCH],
    ["fire-batch25", LARGE_DISPATCH_BATCH],
    ["fire-batch100", MAX_DISPATCH_BATCH],
    ["fire-single", 1]
  ] as const).map((
    [name, batch]
  ) => ({
    group: "fire",
    name,
    at: "/bench/fire",
    query: { n: FIRE, lead: LEAD_MS, batch },
    warm: { n: 200, lead: 500, batch },
    ...(name === "fire" ? {} : { baselineOf: "fire" })
  })),
  ...([["drift", DEFAULT_DISPATCH_BATCH], ["drift-single", 1]] as const).map(([name, batch]) => ({
    group: "drift",
    name,
    at: "/bench/drift",
    query: { n: DRIFT, spread: SPREAD_MS, lead: LEAD_MS, batch },
    warm: { n: 200, spread: 200, lead: 500, batch },
    ...(name === "drift" ? {} : { baselineOf: "drift" })
  })),
  {
    group: "drain",
    name: "drain",
    at: "/bench/drain",
    query: { n: DRAIN, lead: DRAIN_LEAD_MS },
    warm: { n: 500, lead: 500 }
  },
  ...POOL_CAPS.map((max) => ({
    group: "pool",
    name: `pool-${max}`,
    at: "/bench/pool",
    query: { n: POOL_JOBS, max, sleep: 0 },
    warm: { n: 100, max, sleep: 0 }
  })),
  {
    group: "pool",
    name: "pool-handoff",
    at: "/bench/pool",
    query: { n: HANDOFF_JOBS, max: 1, sleep: SLOW_MS },
    warm: { n: 10, max: 1, sleep: SLOW_MS }
  },
  { group: "confirm", name: "confirm", at: "/bench/confirm", query: { n: SINGLE }, warm: { n: 50 } },
  {
    group: "pool",
    name: "pool-saturation",
    at: "/bench/pool",
    query: { n: SATURATION_JOBS, max: SATURATION_CAP, sleep: SLOW_MS },
    warm: { n: 2 * SATURATION_CAP, max: SATURATION_CAP, sleep: SLOW_MS }
  },
  ...SHARD_COUNTS.map((shards) => ({
    group: "shards",
    name: `shards-fire-${shards}`,
    at: "/bench/fire",
    query: { n: FIRE, lead: LEAD_MS, batch: DEFAULT_DISPATCH_BATCH, shards },
    warm: { n: 200, lead: 500, batch: DEFAULT_DISPATCH_BATCH, shards },
    relativeTo: "shards-fire-1"
  })),
  ...SHARD_COUNTS.map((shards) => ({
    group: "shards",
    name: `shards-single-${shards}`,
    at: "/bench/schedule-single",
    query: { n: SINGLE, shards, prime: SHARD_PRIME },
    warm: { n: 50, shards },
    relativeTo: "shards-single-1"
  })),
  ...SHARD_COUNTS.map((shards) => ({
    group: "shards",
    name: `shards-submit-${shards}`,
    at: "/bench/schedule-batch",
    query: { batches: FIRE / SHARD_SUBMIT, size: SHARD_SUBMIT, shards },
    warm: { batches: 2, size: SHARD_SUBMIT, shards },
    relativeTo: "shards-submit-1"
  })),
  ...SHARD_EXTREMES.map((shards) => ({
    group: "shards",
    name: `shards-calls-${shards}`,
    at: "/bench/shard-calls",
    query: { shards, limit: SHARD_LIST_LIMIT },
    warm: { shards, limit: SHARD_LIST_LIMIT },
    relativeTo: "shards-calls-1"
  })),
  ...SHARD_EXTREMES.map((shards) => ({
    group: "shards",
    name: `shards-list-${shards}`,
    at: "/bench/shard-list",
    query: { shards, n: SHARD_LIST_JOBS, calls: SHARD_LIST_CALLS, limit: SHARD_LIST_LIMIT },
    warm: { shards, n: 200, calls: 5, limit: SHARD_LIST_LIMIT },
    relativeTo: "shards-list-1"
  })),
  ...([["off", 0], ["on", 1]] as const).map(([state, metrics]) => ({
    group: "metrics",
    name: `metrics-fire-${state}`,
    at: "/bench/fire",
    query: { n: FIRE, lead: LEAD_MS, batch: DEFAULT_DISPATCH_BATCH, metrics },
    warm: { n: 200, lead: 500, batch: DEFAULT_DISPATCH_BATCH, metrics },
    relativeTo: "metrics-fire-off"
  })),
  ...TESTCLOCK_JOBS.map((n) => ({
    group: "testclock",
    name: `testclock-${n}`,
    at: (query: Record<string, number>) => testClockYear(query.n!, "adjust"),
    query: { n },
    warm: { n: 200 }
  })),
  {
    group: "testclock",
    name: `advance-${ADVANCE_JOBS}`,
    at: (query: Record<string, number>) => testClockYear(query.n!, "advance"),
    query: { n: ADVANCE_JOBS },
    warm: { n: 2_000 }
  }
]

/** The group of the bundle size report, which runs after the measurements and needs no workerd. */
const SIZE = "size"

/** Every group, in the order it runs. */
const GROUPS: ReadonlyArray<string> = [...new Set(MEASUREMENTS.map(({ group }) => group)), SIZE]

const measurementOf = (name: string) => MEASUREMENTS.find((measurement) => measurement.name === name)!

const isInWorker = (measurement: Measurement): measurement is InWorker => typeof measurement.at === "string"

/** The sides a measurement runs: the library only when it has no baseline of its own. */
const implsOf = (measurement: Measurement): ReadonlyArray<Impl> =>
  isInWorker(measurement) && measurement.baselineOf === undefined && measurement.relativeTo === undefined
    ? IMPLS
    : ["library"]

/** The results its rows' baseline samples come from: its own baseline's, another's baseline, or another's library. */
const baselineKey = ({ baselineOf, name, relativeTo }: Measurement) =>
  relativeTo === undefined ? `${baselineOf ?? name} baseline` : `${relativeTo} library`

/**
 * What a row counts: rates (higher is better), or milliseconds, alarm
 * invocations and calls into SchedulerDOs (lower is better).
 */
type Unit = "jobs/s" | "calls/s" | "ms" | "alarms" | "calls"

/** The groups whose measurements run in the Worker, and those that run here in Node. */
const WORKER_GROUPS = [...new Set(MEASUREMENTS.filter(isInWorker).map(({ group }) => group))]
const NODE_GROUPS = [...new Set(MEASUREMENTS.filter((measurement) => !isInWorker(measurement)).map(({ group }) => group))]

const isRate = (unit: Unit) => unit === "jobs/s" || unit === "calls/s"

/**
 * The rows of the table: label, measurement, field of its result, unit, and
 * the least baseline value a ratio is shown for (below it the clock's 1 ms
 * resolution decides the ratio).
 */
const ROWS: ReadonlyArray<readonly [string, string, string, Unit, number]> = [
  [`schedule, 1 job per call (${SINGLE} sequential runAfter)`, "schedule-single", "jobsPerSec", "jobs/s", 0],
  ["  per-call latency p50", "schedule-single", "p50Ms", "ms", 1],
  ["  per-call latency mean", "schedule-single", "meanMs", "ms", 0.1],
  [`schedule, 1 job per call through createScheduler (${SINGLE} sequential runAfter)`, "schedule-single-promise", "jobsPerSec", "jobs/s", 0],
  ["  per-call latency mean", "schedule-single-promise", "meanMs", "ms", 0.1],
  [`schedule, batched (${BATCHES} submit x ${BATCH_SIZE} jobs)`, "schedule-batch", "jobsPerSec", "jobs/s", 0],
  [
    `fire, batched dispatch, ${DEFAULT_DISPATCH_BATCH} jobs per request (the default; ${FIRE} due at once)`,
    "fire",
    "jobsPerSec",
    "jobs/s",
    0
  ],
  ["  first start after due", "fire", "wakeMs", "ms", 10],
  [
    `fire, batched dispatch, ${LARGE_DISPATCH_BATCH} jobs per request (${FIRE} due at once)`,
    "fire-batch25",
    "jobsPerSec",
    "jobs/s",
    0
  ],
  [
    `fire, batched dispatch, ${MAX_DISPATCH_BATCH} jobs per request, the ceiling (${FIRE} due at once)`,
    "fire-batch100",
    "jobsPerSec",
    "jobs/s",
    0
  ],
  [`fire, one request per job (DISPATCH_BATCH 1; ${FIRE} due at once)`, "fire-single", "jobsPerSec", "jobs/s", 0],
  ...(["p50", "p99"] as const).map((p) =>
    [
      `drift ${p}, batched dispatch (${DEFAULT_DISPATCH_BATCH} per request), start - scheduled (${DRIFT} over ${
        SPREAD_MS / 1000
      } s)`,
      "drift",
      `${p}Ms`,
      "ms",
      10
    ] as const
  ),
  ["  arrival at the no-op - scheduled, p50", "drift", "handlerP50Ms", "ms", 10],
  ["  arrival at the no-op - scheduled, p99", "drift", "handlerP99Ms", "ms", 10],
  ...(["p50", "p99"] as const).map((p) =>
    [
      `drift ${p}, one request per job, start - scheduled (${DRIFT} over ${SPREAD_MS / 1000} s)`,
      "drift-single",
      `${p}Ms`,
      "ms",
      10
    ] as const
  ),
  [`drain, ${DRAIN.toLocaleString("en-US")} due at once: alarm invocations to run them all`, "drain", "alarms", "alarms", 1],
  ["  jobs/s, due instant to last completion", "drain", "jobsPerSec", "jobs/s", 0],
  ...POOL_CAPS.map((max) =>
    [`pool, no-op, maxConcurrency ${max} (${POOL_JOBS} enqueued at once)`, `pool-${max}`, "jobsPerSec", "jobs/s", 0] as const
  ),
  [
    `pool, ${SLOW_MS} ms jobs, maxConcurrency ${SATURATION_CAP} (${SATURATION_JOBS}; ideal ${
      (SATURATION_CAP * 1000) / SLOW_MS
    }/s)`,
    "pool-saturation",
    "jobsPerSec",
    "jobs/s",
    0
  ],
  [
    `replay check: confirmDispatch per dispatch (${SINGLE} sequential; baseline: a no-op RPC)`,
    "confirm",
    "callsPerSec",
    "calls/s",
    0
  ],
  ["  per-call latency mean", "confirm", "meanMs", "ms", 0.1],
  [
    `pool hand-off p50, end to next start (max 1, ${HANDOFF_JOBS} x ${SLOW_MS} ms)`,
    "pool-handoff",
    "handoffP50Ms",
    "ms",
    10
  ],
  [
    `pool hand-off p99, end to next start (max 1, ${HANDOFF_JOBS} x ${SLOW_MS} ms)`,
    "pool-handoff",
    "handoffP99Ms",
    "ms",
    10
  ],
  ...SHARD_COUNTS.map((shards) =>
    [
      shards === 1
        ? `shards, fire: ${FIRE} due at once, batched dispatch (${DEFAULT_DISPATCH_BATCH} per request), 1 shard (baseline: 1 shard)`
        : `  ${shards} shards`,
      `shards-fire-${shards}`,
      "jobsPerSec",
      "jobs/s",
      0
    ] as const
  ),
  ...SHARD_COUNTS.map((shards) =>
    [
      shards === 1
        ? `shards, schedule: ${SINGLE} sequential runAfter, 1 job per call, 1 shard (baseline: 1 shard)`
        : `  ${shards} shards`,
      `shards-single-${shards}`,
      "jobsPerSec",
      "jobs/s",
      0
    ] as const
  ),
  ...SHARD_COUNTS.map((shards) =>
    [
      shards === 1
        ? `shards, schedule: ${FIRE} jobs in submit calls of ${SHARD_SUBMIT}, 1 shard (baseline: 1 shard)`
        : `  ${shards} shards`,
      `shards-submit-${shards}`,
      "jobsPerSec",
      "jobs/s",
      0
    ] as const
  ),
  ...SHARD_EXTREMES.flatMap((shards) =>
    ([["get", "get"], ["cancel", "cancel"], ["list", `list({ limit: ${SHARD_LIST_LIMIT} })`]] as const).map((
      [operation, call],
      i
    ) =>
      [
        `${i === 0 ? "shards, calls into SchedulerDOs per" : "  per"} ${call}, ${shards} shard${shards === 1 ? "" : "s"} (expected ${
          operation === "list" ? shards : 1
        })`,
        `shards-calls-${shards}`,
        `${operation}Calls`,
        "calls",
        0
      ] as const
    )
  ),
  [
    `shards, list({ limit: ${SHARD_LIST_LIMIT} }) latency p50 of ${SHARD_LIST_CALLS}, ${SHARD_LIST_JOBS} pending: ${
      SHARD_EXTREMES[1]
    } shards (baseline: 1 shard; ratio ${SHARD_EXTREMES[1]} / 1)`,
    `shards-list-${SHARD_EXTREMES[1]}`,
    "p50Ms",
    "ms",
    1
  ],
  [`  mean (${SHARD_EXTREMES[1]} shards / 1 shard)`, `shards-list-${SHARD_EXTREMES[1]}`, "meanMs", "ms", 0.1],
  [
    `metrics, fire: ${FIRE} due at once, batches of ${DEFAULT_DISPATCH_BATCH}, metrics off (baseline: off)`,
    "metrics-fire-off",
    "jobsPerSec",
    "jobs/s",
    0
  ],
  ["  metrics on (the default)", "metrics-fire-on", "jobsPerSec", "jobs/s", 0],
  ...TESTCLOCK_JOBS.flatMap((n) =>
    [
      [
        `test layer, ${n.toLocaleString("en-US")} jobs over a year: ${YEAR_DAYS + 1} x TestClock.adjust("1 day"), wall time`,
        `testclock-${n}`,
        "adjustMs",
        "ms",
        0
      ],
      ["  per job (the issue's budget: at most 1 ms)", `testclock-${n}`, "msPerJob", "ms", 0],
      [`  the ${YEAR_DAYS + 1} adjusts alone, no scheduler (same process, just before)`, `testclock-${n}`, "bareAdjustMs", "ms", 0],
      ["  per job, over the adjusts alone", `testclock-${n}`, "msPerJobOverBare", "ms", 0],
      [`  scheduling them first: submit in calls of ${TESTCLOCK_CHUNK}`, `testclock-${n}`, "submitMs", "ms", 0]
    ] as const
  ),
  [
    `test layer, ${ADVANCE_JOBS.toLocaleString("en-US")} jobs over a year: TestScheduler.advance("${YEAR_DAYS + 1} days"), wall time`,
    `advance-${ADVANCE_JOBS}`,
    "adjustMs",
    "ms",
    0
  ],
  ["  per job", `advance-${ADVANCE_JOBS}`, "msPerJob", "ms", 0],
  [`  scheduling them first: submit in calls of ${TESTCLOCK_CHUNK}`, `advance-${ADVANCE_JOBS}`, "submitMs", "ms", 0]
]

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const format = (n: number) =>
  Number.isNaN(n)
    ? "n/a"
    : Math.abs(n) >= 100
    ? Math.round(n).toLocaleString("en-US")
    : Number.isInteger(n)
    ? String(n)
    : n.toFixed(2)

const wranglerVersion = (createRequire(import.meta.url)("wrangler/package.json") as { version: string }).version

const USAGE = [
  "usage: npm run bench -- [<group> ...] [--json FILE]",
  `groups: ${GROUPS.join(", ")} (none named: all)`
].join("\n")

interface Args {
  /** The groups to run, in run order. */
  readonly groups: ReadonlyArray<string>
  readonly json: string | undefined
  readonly help: boolean
}

/** The script's arguments (vite-node has already taken out its own, the script's path and every `--`), or what is wrong with them. */
const parseArgs = (argv: ReadonlyArray<string>): Args | { readonly error: string } => {
  const named = new Set<string>()
  let json: string | undefined
  let help = false
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === "--") continue
    if (arg === "--help" || arg === "-h") help = true
    else if (arg === "--json" || arg.startsWith("--json=")) {
      const file = arg === "--json" ? argv[++i] : arg.slice("--json=".length)
      if (file === undefined || file === "" || file.startsWith("-")) return { error: "--json needs a file name" }
      // npm runs the script from the package's folder: a relative name is read from where npm was started
      json = resolve(process.env.INIT_CWD ?? process.cwd(), file)
    } else if (arg.startsWith("-")) return { error: `unknown option ${arg}` }
    else if (GROUPS.includes(arg)) named.add(arg)
    else return { error: `unknown group ${JSON.stringify(arg)}` }
  }
  return { groups: GROUPS.filter((group) => named.size === 0 || named.has(group)), json, help }
}

/** A row of the table as data: what `--json` writes. */
interface Row {
  readonly group: string
  readonly measurement: string
  readonly field: string
  readonly row: string
  readonly unit: Unit
  readonly library: number
  /** null: the measurement has no baseline. */
  readonly baseline: number | null
  readonly ratio: number | null
  readonly samples: { readonly library: ReadonlyArray<number>; readonly baseline: ReadonlyArray<number> }
}

interface Measured {
  readonly results: ReadonlyMap<string, ReadonlyArray<Result>>
  readonly seconds: number
  readonly warnings: ReadonlyArray<string>
}

/** The rows of the measurements that ran, the pool's cap check when it ran, and every warning. */
const summarize = ({ results, warnings }: Measured) => {
  const rows = ROWS.filter(([, name]) => results.has(`${name} library`)).map(
    ([label, name, field, unit, least]): Row & { readonly label: string } => {
      const measurement = measurementOf(name)
      const compared = isInWorker(measurement)
      const samples = {
        library: (results.get(`${name} library`) ?? []).map((result) => result[field]!),
        baseline: compared ? (results.get(baselineKey(measurement)) ?? []).map((result) => result[field]!) : []
      }
      const library = median(samples.library)
      const baseline = compared ? median(samples.baseline) : null
      return {
        label,
        group: measurement.group,
        measurement: name,
        field,
        row: label.trim(),
        unit,
        library,
        baseline,
        ratio: baseline !== null && baseline > 0 && baseline >= least ? Number((library / baseline).toFixed(2)) : null,
        samples
      }
    }
  )
  // the most pool handlers seen running at once, over the repetitions: a sanity check of the cap, not a timing
  const saturation = (impl: Impl) => results.get(`pool-saturation ${impl}`)
  const mostRunning = (impl: Impl) => Math.max(...(saturation(impl) ?? []).map((result) => result.maxRunning!))
  const poolMostRunning = saturation("library") === undefined
    ? undefined
    : { library: mostRunning("library"), baseline: mostRunning("baseline") }
  const overCap = poolMostRunning === undefined ? [] : IMPLS.filter((impl) => poolMostRunning[impl] > SATURATION_CAP)
  // the calls per operation of the shards group are exact counts: get and cancel reach the job's shard alone, list every shard
  const miscounted = SHARD_EXTREMES.flatMap((shards) =>
    (results.get(`shards-calls-${shards} library`) ?? []).flatMap((result) =>
      ([["get", 1], ["cancel", 1], ["list", shards]] as const)
        .filter(([operation, expected]) => result[`${operation}Calls`] !== expected)
        .map(([operation, expected]) =>
          `shards-calls-${shards}: ${operation} made ${result[`${operation}Calls`]} calls into SchedulerDOs, not ${expected}`
        )
    )
  )
  return {
    rows,
    poolMostRunning,
    warnings: [
      ...overCap.map((impl) => `${impl} ran ${poolMostRunning![impl]} pool handlers at once, over the cap of ${SATURATION_CAP}`),
      ...new Set(miscounted),
      ...warnings
    ]
  }
}

/**
 * The notes under the table, each with the groups it explains (none: always
 * printed), in the order printed.
 */
const NOTES = (most: { readonly library: number; readonly baseline: number } | undefined): ReadonlyArray<
  readonly [ReadonlyArray<string>, ReadonlyArray<string>]
> => [
  [[], [
    "jobs/s, calls/s: higher is better, a ratio below 1x means the library is slower; ms, alarms: lower is better, a",
    "  ratio above 1x means the library is slower (or needs more alarm invocations); where the baseline is within a",
    "  few ticks of workerd's clock (1 ms resolution, advancing on I/O) only the difference is shown."
  ]],
  [["schedule", "submit", "fire", "drift", "drain", "confirm"], [
    `Library: Scheduler.make over SchedulerDO, default settings: batched dispatch, up to ${DEFAULT_DISPATCH_BATCH} due jobs per`,
    "  signed request to Dispatch.batchPath (LUNORA_SCHEDULER_DISPATCH_BATCH), 6 requests in flight, each batch leased as",
    "  a slot frees, at most 500 requests per alarm. Per job: payload checked against its Schema, the call's arguments",
    "  checked again by the DO (plain checks of the protocol Schema's rules, the Schema itself for anything they do not",
    "  pass), retry plan, job id, lease; per request: HMAC-signed with the binding's fetch",
    "  (no redirects), verified, confirmed with the DO (one RPC: the replay check), each job decoded and run through",
    "  the JobRegistry by Dispatch, one signed outcome line per job checked, the outcomes that came in together",
    "  recorded in one transaction; the DO's table carries seven indexes (due time, pool, state, function, function",
    "  and state; the live key and pending children, partial), besides its unique id.",
    "Baseline: a hand-written SQLite DO, table (id, run_at, state, args, started_at, done_at) with one index on",
    "  (state, run_at); one INSERT per RPC, or one transaction of 25-row INSERTs per batch; one alarm that selects",
    "  due rows (50 at a time, at most 500 per alarm), marks them started, POSTs each to a plain no-op route over the",
    "  same service binding (one request per job), 6 at once, marks it done and re-arms. Deliberately minimal: no",
    "  retries, no lease or lease expiry, no signing, no payload validation, no dedupe keys, no retention sweep."
  ]],
  [["pool"], [
    "Pool: Workpool.make over WideSchedulerDO (a SchedulerDO with LUNORA_SCHEDULER_CONCURRENCY 64, so the pool's cap is",
    "  the only limit; the rows above keep SchedulerDO at its default 6), the pool declared before the clock starts, then",
    "  one enqueueMany of all jobs; baseline: a table of queued jobs (one transaction of 25-row INSERTs), one alarm",
    "  that keeps at most maxConcurrency POSTs to a no-op in flight and starts the next queued job as one completes",
    "  (500 per alarm, then re-armed to now), no retries, leases or signing. Jobs/s: from the enqueue call until the last",
    "  handler ended; hand-off: at maxConcurrency 1, a handler's start minus the previous handler's end; both on the",
    "  handlers' clock, in the Worker.",
    `Most pool handlers running at once (${SLOW_MS} ms handlers, maxConcurrency ${SATURATION_CAP}, most over the repetitions):`,
    `  library ${most?.library}, baseline ${most?.baseline} (a no-op handler returns before another can start).`
  ]],
  [["confirm"], [
    "Replay check: the call the dispatch endpoint makes into the SchedulerDO before each handler (arguments decoded",
    "  with Schema, answered from memory), against a no-op RPC into the baseline DO; both sequential, from the Worker."
  ]],
  [["fire", "drift"], [
    "Fire: from the instant all jobs are due to the last completion. Drift: start (library: the job's batch leased as",
    "  it is sent; baseline: its batch of 50 marked started) minus scheduled time; arrival: the no-op handler's clock",
    "  minus scheduled time.",
    `Batched rows: SchedulerDO at the default ${DEFAULT_DISPATCH_BATCH} jobs per request, Batch25SchedulerDO (${LARGE_DISPATCH_BATCH}) or`,
    `  Batch100SchedulerDO (${MAX_DISPATCH_BATCH}, the ceiling);`,
    "  one request per job: SingleSchedulerDO (LUNORA_SCHEDULER_DISPATCH_BATCH 1: a signed request to Dispatch.path",
    "  per job, as before batching and as the baseline). Those two run the library only and compare with the baseline",
    "  of the default row above them (the same samples)."
  ]],
  [["drain"], [
    `Drain: ${DRAIN.toLocaleString("en-US")} no-op jobs due at one instant, counted in alarm invocations until all ran: the library in`,
    "  CountingSchedulerDO (SchedulerDO at its default settings, counting alarm() calls), whose alarm may send 500",
    `  requests of ${DEFAULT_DISPATCH_BATCH} jobs; the baseline counts its own, 500 jobs per alarm. Jobs/s: from the instant to the`,
    "  last completion."
  ]],
  [["shards"], [
    "Shards: the library only, Scheduler.make({ shards: N }) over SchedulerDO at its default settings, a fresh instance",
    "  per run (shard 0 the instance, shard k the instance <name>#k); no shardKey, so the jobs' ids spread them over",
    "  the shards. Its baseline column is the same measurement at 1 shard in the same run: a ratio reads N shards / 1",
    `  shard. Fire: as the fire rows, ${FIRE} no-op jobs due at once, from that instant to the last completion (every`,
    "  shard's alarm dispatching at once, 6 requests in flight each). Schedule: jobs due in an hour, one runAfter per call",
    `  (one call to one shard each, after ${SHARD_PRIME} untimed ones that wake every shard's object), or each submit split by`,
    "  shard and the parts sent at once (on fresh objects). Calls: RPC calls reaching the SchedulerDO stubs (the namespace given to",
    "  Scheduler.make wrapped to count them) of one get, cancel and list, after a first write that pays the one-off",
    `  check of the shard count. List: ${SHARD_LIST_CALLS} sequential calls over ${SHARD_LIST_JOBS} pending jobs, each shard returning up to`,
    `  ${SHARD_LIST_LIMIT}, merged in the Worker.`
  ]],
  [["metrics"], [
    "Metrics: the library only, fire as the fire rows at the default batch of 10, on a SchedulerDO with",
    "  LUNORA_SCHEDULER_METRICS off (the baseline column) and at its default (on: start drift, outcomes, retries, dead",
    "  letters, expired leases and alarm passes counted per batch and per write of outcomes), in the same run."
  ]],
  [["testclock"], [
    `Test layer: in Node, no workerd, no baseline process. TestScheduler.layer() (src/testing.ts) with a no-op handler under`,
    `  TestContext: N jobs submitted in calls of ${TESTCLOCK_CHUNK}, due uniformly at random (seeded) over ${YEAR_DAYS} days, then`,
    `  ${YEAR_DAYS + 1} x TestClock.adjust("1 day"); the handler must have run N times and no job be left pending, in progress,`,
    "  failed or dead-lettered. Wall time of the adjusts; the issue's budget is at most 1 ms per job (10,000 jobs",
    `  over a year: under 10 s). The yardstick: the same ${YEAR_DAYS + 1} adjusts with no scheduler, just before in the same`,
    "  process (Effect's own wait for every fiber to suspend, a few timer turns each); the per-job cost over it is the",
    `  scheduler's. The advance row: the same with one TestScheduler.advance("${YEAR_DAYS + 1} days"), the bulk`,
    `  driver (budget: ${ADVANCE_JOBS.toLocaleString("en-US")} jobs in under 5 s). Each repetition runs in a Node process of its`,
    "  own, after a warm-up there, as a test runner runs the test layer."
  ]],
  [WORKER_GROUPS, [
    "Worker, its Durable Objects and the no-op share one workerd process on this machine: absolute numbers are not",
    "  production numbers; the ratios show the cost of the library's per-job work. The Worker (library and baseline",
    "  alike) is bundled with \"keep_names\": false, as the README recommends (bench/wrangler.jsonc)."
  ]]
]

const printTable = (summary: ReturnType<typeof summarize>, groups: ReadonlyArray<string>, seconds: number) => {
  const header = ["measure", "library", "baseline", "library/baseline"] as const
  const withUnit = (n: number, unit: Unit) =>
    `${format(n)} ${(unit === "alarms" || unit === "calls") && Math.abs(n) === 1 ? unit.slice(0, -1) : unit}`
  const table = summary.rows.map(({ baseline, label, library, ratio, unit }) => {
    if (baseline === null) return [label, withUnit(library, unit), "-", "-"]
    const shown = ratio === null ? "-" : `${ratio.toFixed(2)}x`
    const difference = library - baseline
    return [
      label,
      withUnit(library, unit),
      withUnit(baseline, unit),
      isRate(unit) ? shown : `${shown} (${difference >= 0 ? "+" : ""}${withUnit(difference, unit)})`
    ]
  })
  const widths = header.map((title, i) => Math.max(title.length, ...table.map((row) => row[i]!.length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ")
  console.log()
  console.log(line(header))
  console.log(line(widths.map((width) => "-".repeat(width))))
  for (const row of table) console.log(line(row))
  console.log()
  console.log([
    `Medians of ${REPS} repetitions ${
      [
        ...(WORKER_GROUPS.some((group) => groups.includes(group))
          ? [`inside local workerd (wrangler ${wranglerVersion} / Miniflare)`]
          : []),
        ...(NODE_GROUPS.some((group) => groups.includes(group)) ? [`in Node ${process.version} (the test layer)`] : [])
      ].join(" and ")
    }, ${seconds} s in all.`,
    ...NOTES(summary.poolMostRunning)
      .filter(([about]) => about.length === 0 || about.some((group) => groups.includes(group)))
      .flatMap(([, lines]) => lines),
    ...summary.warnings.map((warning) => `WARNING: ${warning}`)
  ].join("\n"))
}

/** Runs the measurements in local workerd, from a snapshot of `src/` and `bench/`, and disposes of it. */
const measureInWorker = async (measurements: ReadonlyArray<InWorker>): Promise<Measured> => {
  const { unstable_startWorker } = await import("wrangler")
  const dir = await mkdtemp(join(tmpdir(), "lunora-bench-"))
  const started = Date.now()
  let worker: Awaited<ReturnType<typeof unstable_startWorker>> | undefined
  let cleaning: Promise<void> | undefined
  const cleanup = () =>
    (cleaning ??= Promise.resolve(worker?.dispose()).catch(() => undefined).then(() =>
      rm(dir, { recursive: true, force: true })
    ))
  // wrangler may end the process itself on a signal: remove the snapshot on any exit
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }))
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => void cleanup().finally(() => process.exit(130)))
  }
  try {
    await snapshot(dir, "bench")
    worker = await unstable_startWorker({
      config: join(dir, "bench", "wrangler.jsonc"),
      sendMetrics: false,
      dev: {
        remote: false,
        persist: join(dir, "state"),
        watch: false,
        inspector: false,
        logLevel: "warn",
        server: { hostname: "127.0.0.1", port: 0 }
      }
    })
    await worker.ready
    const base = await worker.url
    const call = async (path: string, impl: Impl, query: Record<string, number>): Promise<Result> => {
      const url = new URL(path, base)
      url.searchParams.set("impl", impl)
      for (const [name, value] of Object.entries(query)) url.searchParams.set(name, String(value))
      const response = await fetch(url, { signal: AbortSignal.timeout(CALL_TIMEOUT_MS) })
      const text = await response.text()
      let body: Result & { error?: string }
      try {
        body = JSON.parse(text)
      } catch {
        throw new Error(`${path} (${impl}): HTTP ${response.status}: ${text.slice(0, 500)}`)
      }
      if (!response.ok || body.error !== undefined) throw new Error(`${path} (${impl}): ${body.error ?? response.status}`)
      return body
    }

    process.stdout.write("warming up")
    for (const measurement of measurements) {
      for (const impl of implsOf(measurement)) {
        await call(measurement.at, impl, measurement.warm)
        process.stdout.write(".")
      }
    }
    process.stdout.write("\n")

    const results = new Map<string, Array<Result>>()
    const warnings: Array<string> = []
    for (let rep = 0; rep < REPS; rep++) {
      process.stdout.write(`repetition ${rep + 1}/${REPS}`)
      for (const measurement of measurements) {
        const { at, name, query } = measurement
        const impls = implsOf(measurement)
        // alternate which side goes first, so neither always runs right after the other's load
        for (const impl of rep % 2 === 0 ? impls : [...impls].reverse()) {
          const key = `${name} ${impl}`
          const result = await call(at, impl, query)
          results.set(key, [...(results.get(key) ?? []), result])
          if (result.scheduledEarlyMs !== undefined && result.scheduledEarlyMs < 0) {
            warnings.push(`${key}: scheduling outlasted the ${query.lead} ms lead by ${-result.scheduledEarlyMs} ms`)
          }
          process.stdout.write(VERBOSE ? `\n  ${key}: ${JSON.stringify(result)}` : ".")
        }
      }
      process.stdout.write("\n")
    }
    return { results, seconds: Math.round((Date.now() - started) / 1000), warnings }
  } finally {
    await cleanup()
  }
}

/** A small seeded generator (mulberry32): the same spread of due times in every run. */
const seeded = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
}

/**
 * The test layer over a simulated year: `TestScheduler.layer()` with a no-op
 * handler under `TestContext`, `n` jobs submitted in calls of
 * `TESTCLOCK_CHUNK`, due uniformly at random over `YEAR_DAYS` days, then one
 * `TestClock.adjust("1 day")` per day and one more (`adjust`), or one
 * `TestScheduler.advance` over as many days (`advance`). Fails unless the handler
 * ran `n` times and no job is left unfinished, failed or dead-lettered, or
 * when it outlasts `TESTCLOCK_LIMIT_MS` of wall time.
 */
const testClockYear = async (n: number, driver: "adjust" | "advance"): Promise<Result> => {
  const [{ Effect, Layer, Schema, TestClock, TestContext }, Job, Scheduler, TestScheduler] = await Promise.all([
    import("effect"),
    import("../src/Job.js"),
    import("../src/Scheduler.js"),
    import("../src/testing.js")
  ])
  const Noop = Job.make("bench:noop", { payload: Schema.Struct({ n: Schema.Number }) })
  let ran = 0
  const layer = Noop.toLayer(() =>
    Effect.sync(() => {
      ran++
    })
  ).pipe(Layer.provideMerge(TestScheduler.layer()))
  const yearMs = YEAR_DAYS * 86_400_000
  const program = Effect.gen(function*() {
    const scheduler = yield* Scheduler.Scheduler
    const random = seeded(n)
    const started = performance.now()
    for (let i = 0; i < n; i += TESTCLOCK_CHUNK) {
      yield* scheduler.submit(
        Array.from({ length: Math.min(TESTCLOCK_CHUNK, n - i) }, (_, k) => ({
          job: Noop,
          payload: { n: i + k },
          after: Math.floor(random() * yearMs)
        }))
      )
    }
    const submitted = performance.now()
    if (driver === "advance") yield* TestScheduler.advance(`${YEAR_DAYS + 1} days`)
    else for (let day = 0; day <= YEAR_DAYS; day++) yield* TestClock.adjust("1 day")
    const adjusted = performance.now()
    const left = yield* Effect.forEach(
      ["pending", "inProgress", "failed", "deadLettered"] as const,
      (state) => Effect.map(scheduler.list({ state, limit: 1 }), (page) => [state, page.jobs.length] as const)
    )
    const unfinished = left.filter(([, count]) => count > 0).map(([state]) => state)
    if (ran !== n || unfinished.length > 0) {
      return yield* Effect.dieMessage(
        `the handler ran ${ran} times for ${n} jobs${unfinished.length > 0 ? `; jobs left ${unfinished.join(", ")}` : ""}`
      )
    }
    const adjustMs = adjusted - submitted
    return { jobs: n, submitMs: submitted - started, adjustMs, msPerJob: adjustMs / n }
  })
  // the yardstick of the adjust driver, in the same process just before: as many adjusts with no scheduler
  const bare = Effect.gen(function*() {
    const started = performance.now()
    for (let day = 0; day <= YEAR_DAYS; day++) yield* TestClock.adjust("1 day")
    return performance.now() - started
  })
  const bareAdjustMs = driver === "adjust" ? await Effect.runPromise(bare.pipe(Effect.provide(TestContext.TestContext))) : undefined
  const signal = AbortSignal.timeout(TESTCLOCK_LIMIT_MS)
  try {
    const result = await Effect.runPromise(program.pipe(Effect.provide(layer), Effect.provide(TestContext.TestContext)), { signal })
    return bareAdjustMs === undefined
      ? result
      : { ...result, bareAdjustMs, msPerJobOverBare: (result.adjustMs - bareAdjustMs) / n }
  } catch (error) {
    if (signal.aborted) throw new Error(`stopped after ${TESTCLOCK_LIMIT_MS / 1000} s of wall time (${ran} of ${n} jobs ran)`)
    throw error
  }
}

/** Set in the process that runs one Node measurement (`inChild`): the measurement's name. */
const CHILD_MEASUREMENT = "BENCH_NODE_MEASUREMENT"

/**
 * Runs a Node measurement in a process of its own, as a test runner runs the
 * test layer: this one holds Miniflare, whose heap slows the collector. The
 * child warms up with the measurement's `warm` query, then runs `query`, and
 * prints the result as its last line.
 */
const inChild = (name: string, query: Record<string, number>): Promise<Result> =>
  new Promise((done, fail) => {
    const viteNode = createRequire(import.meta.url).resolve("vite-node/vite-node.mjs")
    const child = spawn(process.execPath, [viteNode, fileURLToPath(import.meta.url)], {
      env: { ...process.env, [CHILD_MEASUREMENT]: JSON.stringify({ name, query }) },
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()))
    child.on("error", fail)
    child.on("close", (code) => {
      const last = out.trim().split("\n").pop() ?? ""
      if (code === 0) done(JSON.parse(last) as Result)
      else fail(new Error(last === "" ? `the measurement's process exited with ${code}` : last))
    })
  })

/** In the child of `inChild`: runs the measurement named in the environment, warm-up first, and prints its result. */
const runChild = async (job: string): Promise<number> => {
  const { name, query } = JSON.parse(job) as { name: string; query: Record<string, number> }
  const { at, warm } = measurementOf(name)
  if (typeof at === "string") throw new Error(`${name} runs in workerd, not in Node`)
  await at(warm)
  const result = await at(query).catch((error: unknown) => {
    console.log(error instanceof Error ? error.message : String(error))
    return undefined
  })
  if (result === undefined) return 1
  console.log(JSON.stringify(result))
  return 0
}

/**
 * Runs the Node-side measurements (the library only): each repetition in a
 * process of its own (`inChild`), which warms up first. One that fails
 * leaves its rows out, with a warning.
 */
const measureInNode = async (measurements: ReadonlyArray<Measurement>): Promise<Measured> => {
  const started = Date.now()
  const results = new Map<string, Array<Result>>()
  const warnings: Array<string> = []
  const failed = new Set<string>()
  const run = async ({ at, name }: Measurement, query: Record<string, number>) => {
    if (typeof at === "string" || failed.has(name)) return undefined
    try {
      return await inChild(name, query)
    } catch (error) {
      failed.add(name)
      results.delete(`${name} library`)
      warnings.push(`${name}: ${error instanceof Error ? error.message : String(error)}`)
      return undefined
    }
  }
  // each repetition is a process of its own, which warms up first
  for (let rep = 0; rep < REPS; rep++) {
    process.stdout.write(`in Node: repetition ${rep + 1}/${REPS}`)
    for (const measurement of measurements) {
      const key = `${measurement.name} library`
      const result = await run(measurement, measurement.query)
      if (result !== undefined) results.set(key, [...(results.get(key) ?? []), result])
      process.stdout.write(VERBOSE && result !== undefined ? `\n  ${key}: ${JSON.stringify(result)}` : ".")
    }
    process.stdout.write("\n")
  }
  return { results, seconds: Math.round((Date.now() - started) / 1000), warnings }
}

const main = async (): Promise<number> => {
  const args = parseArgs(process.argv.slice(2))
  if ("error" in args) {
    console.error(`bench: ${args.error}\n${USAGE}`)
    return 2
  }
  if (args.help) {
    console.log(USAGE)
    return 0
  }
  const { groups, json } = args
  if (json !== undefined && !(await stat(dirname(json)).then((found) => found.isDirectory(), () => false))) {
    console.error(`bench: --json ${json}: no such directory ${dirname(json)}\n${USAGE}`)
    return 2
  }
  const date = new Date().toISOString()
  const measurements = MEASUREMENTS.filter(({ group }) => groups.includes(group))
  const inWorker = measurements.filter(isInWorker)
  const inNode = measurements.filter((measurement) => !isInWorker(measurement))
  const none: Measured = { results: new Map(), seconds: 0, warnings: [] }
  // the Node side runs once workerd is gone, so that neither loads the machine while the other is measured
  const measuredInWorker = inWorker.length === 0 ? none : await measureInWorker(inWorker)
  const measuredInNode = inNode.length === 0 ? none : await measureInNode(inNode)
  const measured: Measured = {
    results: new Map([...measuredInWorker.results, ...measuredInNode.results]),
    seconds: measuredInWorker.seconds + measuredInNode.seconds,
    warnings: [...measuredInWorker.warnings, ...measuredInNode.warnings]
  }
  const summary = measurements.length === 0
    ? { rows: [], poolMostRunning: undefined, warnings: [] }
    : summarize(measured)
  if (measurements.length > 0) printTable(summary, groups, measured.seconds)
  const write = (size: Report | undefined) =>
    json === undefined ? Promise.resolve() : writeFile(
      json,
      `${
        JSON.stringify(
          {
            date,
            reps: REPS,
            node: process.version,
            wrangler: wranglerVersion,
            groups,
            rows: summary.rows.map(({ label: _label, ...row }) => row),
            ...(summary.poolMostRunning === undefined ? {} : { poolMostRunning: summary.poolMostRunning }),
            warnings: summary.warnings,
            ...(size === undefined ? {} : { size })
          },
          null,
          2
        )
      }\n`
    )
  await write(undefined)
  if (groups.includes(SIZE)) {
    // what a Worker pays in script size (cold start) for each part of the package
    const { format, measure } = await import("../scripts/size.js")
    const size = await measure()
    console.log(`\nbundle sizes (scripts/size.ts)\n${format(size)}`)
    await write(size)
  }
  if (json !== undefined) console.log(`\nwrote ${json}`)
  return 0
}

const child = process.env[CHILD_MEASUREMENT]
;(child === undefined ? main() : runChild(child)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  }
)
