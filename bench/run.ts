/// <reference types="node" />
/**
 * `npm run bench`: starts bench/worker.ts in local workerd (wrangler's
 * programmatic API, local mode, no account, no network), runs each
 * measurement inside the Worker for the library and for the hand-written
 * baseline, and prints the medians over the repetitions with their ratio.
 *
 * The Worker is built from a snapshot of `src/` and `bench/` taken at start,
 * in a temporary directory that also holds its Durable Object storage:
 * wrangler's bundler watches its inputs whatever `dev.watch` says, so an edit
 * to the working tree during a run would otherwise reload the Worker mid-way.
 *
 * BENCH_REPS (default 3) sets the repetitions; BENCH_VERBOSE=1 prints each result.
 */
import { rmSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { snapshot } from "../scripts/snapshot.js"

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
const POOL_JOBS = 600
const POOL_CAPS = [1, 8, 64] as const
const HANDOFF_JOBS = 100
const SLOW_MS = 20
const SATURATION_CAP = 8
const SATURATION_JOBS = 160
const CALL_TIMEOUT_MS = 120_000

type Impl = "library" | "baseline"
type Result = Record<string, number>

const IMPLS: ReadonlyArray<Impl> = ["library", "baseline"]

/** Each measurement: a name for the rows, the path it runs at, its query, and a smaller query to warm up with. */
const MEASUREMENTS: ReadonlyArray<{
  readonly name: string
  readonly path: string
  readonly query: Record<string, number>
  readonly warm: Record<string, number>
}> = [
  { name: "schedule-single", path: "/bench/schedule-single", query: { n: SINGLE }, warm: { n: 50 } },
  {
    name: "schedule-batch",
    path: "/bench/schedule-batch",
    query: { batches: BATCHES, size: BATCH_SIZE },
    warm: { batches: 2, size: 500 }
  },
  { name: "fire", path: "/bench/fire", query: { n: FIRE, lead: LEAD_MS }, warm: { n: 200, lead: 500 } },
  {
    name: "drift",
    path: "/bench/drift",
    query: { n: DRIFT, spread: SPREAD_MS, lead: LEAD_MS },
    warm: { n: 200, spread: 200, lead: 500 }
  },
  ...POOL_CAPS.map((max) => ({
    name: `pool-${max}`,
    path: "/bench/pool",
    query: { n: POOL_JOBS, max, sleep: 0 },
    warm: { n: 100, max, sleep: 0 }
  })),
  {
    name: "pool-handoff",
    path: "/bench/pool",
    query: { n: HANDOFF_JOBS, max: 1, sleep: SLOW_MS },
    warm: { n: 10, max: 1, sleep: SLOW_MS }
  },
  { name: "confirm", path: "/bench/confirm", query: { n: SINGLE }, warm: { n: 50 } },
  {
    name: "pool-saturation",
    path: "/bench/pool",
    query: { n: SATURATION_JOBS, max: SATURATION_CAP, sleep: SLOW_MS },
    warm: { n: 2 * SATURATION_CAP, max: SATURATION_CAP, sleep: SLOW_MS }
  }
]

/**
 * The rows of the table: label, measurement, field of its result, whether it
 * is a rate (else milliseconds), and the least baseline value a ratio is
 * shown for (below it the clock's 1 ms resolution decides the ratio).
 */
const ROWS: ReadonlyArray<readonly [string, string, string, boolean, number]> = [
  [`schedule, 1 job per call (${SINGLE} sequential runAfter)`, "schedule-single", "jobsPerSec", true, 0],
  ["  per-call latency p50", "schedule-single", "p50Ms", false, 1],
  ["  per-call latency mean", "schedule-single", "meanMs", false, 0.1],
  [`schedule, batched (${BATCHES} submit x ${BATCH_SIZE} jobs)`, "schedule-batch", "jobsPerSec", true, 0],
  [`fire, no-op over service binding (${FIRE} due at once)`, "fire", "jobsPerSec", true, 0],
  ["  first start after due", "fire", "wakeMs", false, 10],
  [`drift p50, start - scheduled (${DRIFT} over ${SPREAD_MS / 1000} s)`, "drift", "p50Ms", false, 10],
  [`drift p99, start - scheduled (${DRIFT} over ${SPREAD_MS / 1000} s)`, "drift", "p99Ms", false, 10],
  ["  arrival at the no-op - scheduled, p50", "drift", "handlerP50Ms", false, 10],
  ["  arrival at the no-op - scheduled, p99", "drift", "handlerP99Ms", false, 10],
  ...POOL_CAPS.map((max) =>
    [`pool, no-op, maxConcurrency ${max} (${POOL_JOBS} enqueued at once)`, `pool-${max}`, "jobsPerSec", true, 0] as const
  ),
  [
    `pool, ${SLOW_MS} ms jobs, maxConcurrency ${SATURATION_CAP} (${SATURATION_JOBS}; ideal ${
      (SATURATION_CAP * 1000) / SLOW_MS
    }/s)`,
    "pool-saturation",
    "jobsPerSec",
    true,
    0
  ],
  [`replay check: confirmDispatch per dispatch (${SINGLE} sequential; baseline: a no-op RPC)`, "confirm", "callsPerSec", true, 0],
  ["  per-call latency mean", "confirm", "meanMs", false, 0.1],
  [`pool hand-off p50, end to next start (max 1, ${HANDOFF_JOBS} x ${SLOW_MS} ms)`, "pool-handoff", "handoffP50Ms", false, 10],
  [`pool hand-off p99, end to next start (max 1, ${HANDOFF_JOBS} x ${SLOW_MS} ms)`, "pool-handoff", "handoffP99Ms", false, 10]
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

const printTable = (results: ReadonlyMap<string, ReadonlyArray<Result>>, seconds: number, warnings: ReadonlyArray<string>) => {
  const value = (name: string, impl: Impl, field: string) =>
    median((results.get(`${name} ${impl}`) ?? []).map((result) => result[field]!))
  const header = ["measure", "library", "baseline", "library/baseline"] as const
  const table = ROWS.map(([label, name, field, rate, least]) => {
    const library = value(name, "library", field)
    const baseline = value(name, "baseline", field)
    const unit = rate ? (field === "callsPerSec" ? "calls/s" : "jobs/s") : "ms"
    const ratio = baseline > 0 && baseline >= least ? `${(library / baseline).toFixed(2)}x` : "-"
    const difference = library - baseline
    return [
      label,
      `${format(library)} ${unit}`,
      `${format(baseline)} ${unit}`,
      rate ? ratio : `${ratio} (${difference >= 0 ? "+" : ""}${format(difference)} ms)`
    ]
  })
  // the most pool handlers seen running at once, over the repetitions: a sanity check of the cap, not a timing
  const mostRunning = (impl: Impl) =>
    Math.max(...(results.get(`pool-saturation ${impl}`) ?? []).map((result) => result.maxRunning!))
  const running = { library: mostRunning("library"), baseline: mostRunning("baseline") }
  const overCap = IMPLS.filter((impl) => running[impl] > SATURATION_CAP)
  const widths = header.map((title, i) => Math.max(title.length, ...table.map((row) => row[i]!.length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ")
  console.log()
  console.log(line(header))
  console.log(line(widths.map((width) => "-".repeat(width))))
  for (const row of table) console.log(line(row))
  console.log()
  console.log([
    `Medians of ${REPS} repetitions inside local workerd (wrangler ${wranglerVersion} / Miniflare, ${seconds} s in all).`,
    "jobs/s: higher is better, a ratio below 1x means the library is slower; ms: lower is better, a ratio above 1x",
    "  means the library is slower; where the baseline is within a few ticks of workerd's clock (1 ms resolution,",
    "  advancing on I/O) only the difference is shown.",
    "Library: Scheduler.make over SchedulerDO, default settings (6 dispatches at once, each job leased as a slot",
    "  frees, 500 per alarm). Per job: payload checked against its Schema, the call's arguments decoded again with",
    "  Schema by the DO, retry plan, job id, lease, HMAC-signed dispatch with the binding's fetch (no",
    "  redirects), verified, confirmed with the DO (one RPC: the replay check), decoded and run through the",
    "  JobRegistry by Dispatch, its answer signed and checked, outcome recorded; the DO's table carries five",
    "  indexes (due time, live key, state, function).",
    "Baseline: a hand-written SQLite DO, table (id, run_at, state, args, started_at, done_at) with one index on",
    "  (state, run_at); one INSERT per RPC, or one transaction of 25-row INSERTs per batch; one alarm that selects",
    "  due rows (50 at a time, at most 500 per alarm), marks them started, POSTs each to a plain no-op route over the",
    "  same service binding, 6 at once, marks it done and re-arms. Deliberately minimal: no retries, no lease or lease",
    "  expiry, no signing, no payload validation, no dedupe keys, no retention sweep.",
    "Pool: Workpool.make over WideSchedulerDO (a SchedulerDO with LUNORA_SCHEDULER_CONCURRENCY 64, so the pool's cap is",
    "  the only limit; the rows above keep SchedulerDO at its default 6), the pool declared before the clock starts, then",
    "  one enqueueMany of all jobs; baseline: a table of queued jobs (one transaction of 25-row INSERTs), one alarm",
    "  that keeps at most maxConcurrency POSTs to a no-op in flight and starts the next queued job as one completes",
    "  (500 per alarm, then re-armed to now), no retries, leases or signing. Jobs/s: from the enqueue call until the last",
    "  handler ended; hand-off: at maxConcurrency 1, a handler's start minus the previous handler's end; both on the",
    "  handlers' clock, in the Worker.",
    `Most pool handlers running at once (${SLOW_MS} ms handlers, maxConcurrency ${SATURATION_CAP}, most over the repetitions):`,
    `  library ${running.library}, baseline ${running.baseline} (a no-op handler returns before another can start).`,
    "Replay check: the call the dispatch endpoint makes into the SchedulerDO before each handler (arguments decoded",
    "  with Schema, answered from memory), against a no-op RPC into the baseline DO; both sequential, from the Worker.",
    "Fire: from the instant all jobs are due to the last completion. Drift: start (library: the job leased as it is",
    "  sent; baseline: its batch of 50 marked started) minus scheduled time; arrival: the no-op handler's clock minus",
    "  scheduled time.",
    "Worker, both Durable Objects and the no-op share one workerd process on this machine: absolute numbers are not",
    "  production numbers; the ratios show the cost of the library's per-job work.",
    ...overCap.map((impl) => `WARNING: ${impl} ran ${running[impl]} pool handlers at once, over the cap of ${SATURATION_CAP}`),
    ...warnings.map((warning) => `WARNING: ${warning}`)
  ].join("\n"))
}

const main = async () => {
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
    for (const { path, warm } of MEASUREMENTS) {
      for (const impl of IMPLS) {
        await call(path, impl, warm)
        process.stdout.write(".")
      }
    }
    process.stdout.write("\n")

    const results = new Map<string, Array<Result>>()
    const warnings: Array<string> = []
    for (let rep = 0; rep < REPS; rep++) {
      process.stdout.write(`repetition ${rep + 1}/${REPS}`)
      for (const { name, path, query } of MEASUREMENTS) {
        // alternate which side goes first, so neither always runs right after the other's load
        for (const impl of rep % 2 === 0 ? IMPLS : [...IMPLS].reverse()) {
          const key = `${name} ${impl}`
          const result = await call(path, impl, query)
          results.set(key, [...(results.get(key) ?? []), result])
          if (result.scheduledEarlyMs !== undefined && result.scheduledEarlyMs < 0) {
            warnings.push(`${key}: scheduling outlasted the ${LEAD_MS} ms lead by ${-result.scheduledEarlyMs} ms`)
          }
          process.stdout.write(VERBOSE ? `\n  ${key}: ${JSON.stringify(result)}` : ".")
        }
      }
      process.stdout.write("\n")
    }
    printTable(results, Math.round((Date.now() - started) / 1000), warnings)
  } finally {
    await cleanup()
  }
  // what a Worker pays in script size (cold start) for each part of the package
  const { format, measure } = await import("../scripts/size.js")
  console.log(`\nbundle sizes (scripts/size.ts)\n${format(await measure())}`)
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  }
)
