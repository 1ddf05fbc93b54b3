/// <reference types="@cloudflare/workers-types" />
/**
 * The benchmark Worker (`npm run bench`, local workerd only). It holds the
 * library's `SchedulerDO` and `BaselineDO`, a minimal hand-written SQLite
 * Durable Object doing the same work, and answers `GET /bench/<measure>` by
 * running the measurement here, inside workerd, and returning JSON.
 *
 * Both dispatch over the same self service binding `SELF_APP` to a no-op:
 * the library to `Dispatch.path` (signed, decoded, run through the registry),
 * the baseline to `POST /bench/noop`.
 *
 * The library batches its dispatches: at its default, one signed request to
 * `Dispatch.batchPath` carries up to 10 due jobs (`LUNORA_SCHEDULER_DISPATCH_BATCH`).
 * `SchedulerDO` runs with the default settings; `SingleSchedulerDO` and
 * `Batch25SchedulerDO` and `Batch100SchedulerDO` differ only in that setting
 * (1: one request per job, as the baseline; 25; 100, its ceiling), and the
 * fire and drift measurements pick one by their `batch` query (1, 10, 25 or 100). The baseline always sends one request per job.
 *
 * `/bench/schedule-single` schedules one job per call through the Effect
 * service, or, with the `promise` query 1, through `createScheduler`.
 *
 * The drain measurement (`/bench/drain`) runs in `CountingSchedulerDO` (the
 * default settings, its alarm invocations counted) and in `BaselineDO`, which
 * counts its own.
 *
 * The workpool measurement (`/bench/pool`) runs the library's `Workpool` in
 * `WideSchedulerDO` (a `SchedulerDO` allowed 64 dispatches at once, so a pool
 * of 64 is not held under the default 6) and a minimal hand-written pool in
 * `BaselineDO`; their handlers (`bench:pool`, `POST /bench/pool-noop`) record
 * when they start and end in this isolate, keyed by the run.
 *
 * The shards group runs the library only, over `SchedulerDO` at its default
 * settings: `/bench/fire` and `/bench/schedule-batch` take a `shards` query
 * (the library's `Scheduler.make({ shards })`, 1 by default and for the
 * baseline), `/bench/shard-calls` counts the calls into the Durable Objects
 * that one `get`, `cancel` and `list` make, and `/bench/shard-list` times
 * `list` over many stored jobs.
 */
import { DurableObject } from "cloudflare:workers"
import { DateTime, Effect, Layer, Option, Schema } from "effect"
import { createScheduler, SchedulerDO } from "../src/cloudflare/index.js"
import * as Dispatch from "../src/Dispatch.js"
import * as Job from "../src/Job.js"
import * as Scheduler from "../src/Scheduler.js"
import * as Workpool from "../src/Workpool.js"

export { SchedulerDO }

/**
 * The library's Durable Object for the workpool measurement: `SchedulerDO`
 * with `LUNORA_SCHEDULER_CONCURRENCY` 64 (its most), the per-object ceiling on
 * dispatches in flight, so that a pool of 64 can run 64 at once. The
 * schedule, fire and drift measurements keep `SchedulerDO` at its default 6.
 */
export class WideSchedulerDO extends SchedulerDO {
  constructor(ctx: DurableObjectState, env: Record<string, unknown>) {
    super(ctx, { ...env, LUNORA_SCHEDULER_CONCURRENCY: "64" })
  }
}

/**
 * `SchedulerDO` with `LUNORA_SCHEDULER_DISPATCH_BATCH` 1: one request per due
 * job, to `Dispatch.path`, as before batched dispatch and as the baseline.
 */
export class SingleSchedulerDO extends SchedulerDO {
  constructor(ctx: DurableObjectState, env: Record<string, unknown>) {
    super(ctx, { ...env, LUNORA_SCHEDULER_DISPATCH_BATCH: "1" })
  }
}

/** `SchedulerDO` with `LUNORA_SCHEDULER_DISPATCH_BATCH` 25: up to 25 due jobs per request. */
export class Batch25SchedulerDO extends SchedulerDO {
  constructor(ctx: DurableObjectState, env: Record<string, unknown>) {
    super(ctx, { ...env, LUNORA_SCHEDULER_DISPATCH_BATCH: "25" })
  }
}

/** `SchedulerDO` with `LUNORA_SCHEDULER_DISPATCH_BATCH` 100, its ceiling: up to 100 due jobs per request. */
export class Batch100SchedulerDO extends SchedulerDO {
  constructor(ctx: DurableObjectState, env: Record<string, unknown>) {
    super(ctx, { ...env, LUNORA_SCHEDULER_DISPATCH_BATCH: "100" })
  }
}

/**
 * `SchedulerDO` at its default settings that counts its alarm invocations,
 * for the drain measurement. The count lives in the object: a fresh instance
 * per run starts at 0, and the polling of the run keeps it from being evicted.
 */
export class CountingSchedulerDO extends SchedulerDO {
  #alarms = 0

  override async alarm(): Promise<void> {
    this.#alarms++
    return super.alarm()
  }

  /** How many times the platform has run `alarm()` on this object. */
  alarms(): number {
    return this.#alarms
  }
}

/** `SchedulerDO` at its default settings but `LUNORA_SCHEDULER_METRICS` off: the metrics rows' baseline. */
export class NoMetricsSchedulerDO extends SchedulerDO {
  constructor(ctx: DurableObjectState, env: Record<string, unknown>) {
    super(ctx, { ...env, LUNORA_SCHEDULER_METRICS: "false" })
  }
}

interface Env {
  readonly SCHEDULER: DurableObjectNamespace<SchedulerDO>
  readonly NO_METRICS_SCHEDULER: DurableObjectNamespace<NoMetricsSchedulerDO>
  readonly SINGLE_SCHEDULER: DurableObjectNamespace<SingleSchedulerDO>
  readonly BATCH25_SCHEDULER: DurableObjectNamespace<Batch25SchedulerDO>
  readonly BATCH100_SCHEDULER: DurableObjectNamespace<Batch100SchedulerDO>
  readonly COUNTING_SCHEDULER: DurableObjectNamespace<CountingSchedulerDO>
  readonly WIDE_SCHEDULER: DurableObjectNamespace<WideSchedulerDO>
  readonly BASELINE: DurableObjectNamespace<BaselineDO>
  readonly SELF_APP: Fetcher
  readonly LUNORA_SCHEDULER_SECRET: string
}

/** Mirrors the library's defaults: `LUNORA_SCHEDULER_BATCH_SIZE`, `_CONCURRENCY`, `_MAX_PER_ALARM`. */
const BASELINE_BATCH = 50
const BASELINE_CONCURRENCY = 6
const BASELINE_MAX_PER_ALARM = 500
const BASELINE_ROWS_PER_INSERT = 25

interface BaselineJob {
  readonly runAt: number
  readonly args: string
}

interface BaselinePoolCounts {
  readonly queued: number
  readonly started: number
  readonly done: number
  readonly failed: number
}

interface BaselineRecord {
  readonly id: number
  readonly runAt: number
  readonly state: string
  readonly startedAt: number | null
  readonly doneAt: number | null
}

/**
 * The yardstick: a table `(id, run_at, state, args, started_at, done_at)`,
 * an insert per RPC (or a batch in one transaction), one alarm that selects
 * due rows, marks them started, POSTs each to the no-op with concurrency 6,
 * marks it done and re-arms. No retries, no leases, no signing, no dedupe.
 *
 * It counts its alarm invocations (`alarms()`), for the drain measurement.
 *
 * It also holds one minimal workpool: a table of queued jobs and a cap; the
 * same alarm keeps at most `cap` POSTs to the pool no-op in flight, starting
 * the next queued job (FIFO) as soon as one completes, 500 per alarm like the
 * scheduled jobs, and re-arms to now when jobs are left.
 */
export class BaselineDO extends DurableObject<Env> {
  readonly #sql: SqlStorage
  #alarms = 0

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    this.#sql = ctx.storage.sql
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS jobs (
      id INTEGER PRIMARY KEY, run_at INTEGER NOT NULL, state TEXT NOT NULL,
      args TEXT NOT NULL, started_at INTEGER, done_at INTEGER)`)
    this.#sql.exec("CREATE INDEX IF NOT EXISTS jobs_due ON jobs (state, run_at)")
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS pool_jobs (
      id INTEGER PRIMARY KEY, state TEXT NOT NULL, args TEXT NOT NULL, started_at INTEGER, done_at INTEGER)`)
    this.#sql.exec("CREATE INDEX IF NOT EXISTS pool_jobs_state ON pool_jobs (state, id)")
    this.#sql.exec("CREATE TABLE IF NOT EXISTS pool (id INTEGER PRIMARY KEY CHECK (id = 1), cap INTEGER NOT NULL)")
  }

  async #arm(at: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm()
    if (current === null || at < current) await this.ctx.storage.setAlarm(at)
  }

  async schedule(job: BaselineJob): Promise<number> {
    const row = this.#sql.exec<{ id: number }>(
      "INSERT INTO jobs (run_at, state, args) VALUES (?, 'pending', ?) RETURNING id",
      job.runAt,
      job.args
    ).one()
    await this.#arm(job.runAt)
    return row.id
  }

  async scheduleMany(jobs: ReadonlyArray<BaselineJob>): Promise<number> {
    if (jobs.length === 0) return 0
    this.ctx.storage.transactionSync(() => {
      for (let i = 0; i < jobs.length; i += BASELINE_ROWS_PER_INSERT) {
        const chunk = jobs.slice(i, i + BASELINE_ROWS_PER_INSERT)
        this.#sql.exec(
          `INSERT INTO jobs (run_at, state, args) VALUES ${chunk.map(() => "(?, 'pending', ?)").join(", ")}`,
          ...chunk.flatMap((job) => [job.runAt, job.args])
        )
      }
    })
    await this.#arm(Math.min(...jobs.map((job) => job.runAt)))
    return jobs.length
  }

  /** An RPC that does nothing: the yardstick of one call into a Durable Object. */
  ping(): boolean {
    return false
  }

  /** How many times the platform has run `alarm()` on this object. */
  alarms(): number {
    return this.#alarms
  }

  unfinished(): number {
    return this.#sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM jobs WHERE state IN ('pending', 'started')").one().n
  }

  records(): Array<BaselineRecord> {
    return this.#sql.exec<{ id: number; run_at: number; state: string; started_at: number | null; done_at: number | null }>(
      "SELECT id, run_at, state, started_at, done_at FROM jobs ORDER BY id"
    ).toArray().map((row) => ({
      id: row.id,
      runAt: row.run_at,
      state: row.state,
      startedAt: row.started_at,
      doneAt: row.done_at
    }))
  }

  /** Creates the pool, or sets its cap. */
  definePool(cap: number): void {
    this.#sql.exec("INSERT OR REPLACE INTO pool (id, cap) VALUES (1, ?)", cap)
  }

  /** Queues jobs in the pool, in one transaction, and arms the alarm for now. */
  async enqueue(args: ReadonlyArray<string>): Promise<number> {
    this.ctx.storage.transactionSync(() => {
      for (let i = 0; i < args.length; i += BASELINE_ROWS_PER_INSERT) {
        const chunk = args.slice(i, i + BASELINE_ROWS_PER_INSERT)
        this.#sql.exec(
          `INSERT INTO pool_jobs (state, args) VALUES ${chunk.map(() => "('queued', ?)").join(", ")}`,
          ...chunk
        )
      }
    })
    await this.#arm(Date.now())
    return args.length
  }

  poolCounts(): BaselinePoolCounts {
    const counts = { queued: 0, started: 0, done: 0, failed: 0 }
    for (const row of this.#sql.exec<{ state: keyof BaselinePoolCounts; n: number }>(
      "SELECT state, COUNT(*) AS n FROM pool_jobs GROUP BY state"
    )) counts[row.state] = row.n
    return counts
  }

  /**
   * Keeps at most the pool's cap of POSTs in flight: each completion marks its
   * job done and starts the next queued one. Stops starting after
   * `BASELINE_MAX_PER_ALARM`, waits for what is in flight; true when jobs are left.
   */
  async #drainPool(): Promise<boolean> {
    const cap = this.#sql.exec<{ cap: number }>("SELECT cap FROM pool").toArray()[0]?.cap
    if (cap === undefined) return false
    let budget = BASELINE_MAX_PER_ALARM
    let inFlight = 0
    const send = async (job: { id: number; args: string }) => {
      let state = "failed"
      try {
        const response = await this.env.SELF_APP.fetch("https://baseline.internal/bench/pool-noop", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: job.args
        })
        await response.arrayBuffer()
        if (response.ok) state = "done"
      } catch {
        // no retries: the baseline records the failure and moves on
      }
      this.#sql.exec("UPDATE pool_jobs SET state = ?, done_at = ? WHERE id = ?", state, Date.now(), job.id)
    }
    await new Promise<void>((resolve) => {
      const fill = () => {
        while (inFlight < cap && budget > 0) {
          const job = this.#sql.exec<{ id: number; args: string }>(
            "SELECT id, args FROM pool_jobs WHERE state = 'queued' ORDER BY id LIMIT 1"
          ).toArray()[0]
          if (job === undefined) break
          this.#sql.exec("UPDATE pool_jobs SET state = 'started', started_at = ? WHERE id = ?", Date.now(), job.id)
          budget--
          inFlight++
          void send(job).catch(() => undefined).finally(() => {
            inFlight--
            fill()
          })
        }
        if (inFlight === 0) resolve()
      }
      fill()
    })
    return this.#sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM pool_jobs WHERE state = 'queued'").one().n > 0
  }

  override async alarm(): Promise<void> {
    this.#alarms++
    let budget = BASELINE_MAX_PER_ALARM
    while (budget > 0) {
      const now = Date.now()
      const due = this.#sql.exec<{ id: number; run_at: number; args: string }>(
        "SELECT id, run_at, args FROM jobs WHERE state = 'pending' AND run_at <= ? ORDER BY run_at LIMIT ?",
        now,
        Math.min(BASELINE_BATCH, budget)
      ).toArray()
      if (due.length === 0) break
      budget -= due.length
      for (const job of due) this.#sql.exec("UPDATE jobs SET state = 'started', started_at = ? WHERE id = ?", now, job.id)
      let next = 0
      const lane = async () => {
        while (next < due.length) {
          const job = due[next++]!
          let state = "failed"
          try {
            const response = await this.env.SELF_APP.fetch("https://baseline.internal/bench/noop", {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ id: job.id, runAt: job.run_at, args: JSON.parse(job.args) })
            })
            await response.arrayBuffer()
            if (response.ok) state = "done"
          } catch {
            // no retries: the baseline records the failure and moves on
          }
          this.#sql.exec("UPDATE jobs SET state = ?, done_at = ? WHERE id = ?", state, Date.now(), job.id)
        }
      }
      await Promise.all(Array.from({ length: BASELINE_CONCURRENCY }, lane))
    }
    const poolLeft = await this.#drainPool()
    const wake = this.#sql.exec<{ at: number | null }>("SELECT MIN(run_at) AS at FROM jobs WHERE state = 'pending'").one().at
    if (poolLeft) await this.ctx.storage.setAlarm(Date.now())
    else if (wake !== null) await this.ctx.storage.setAlarm(wake)
  }
}

/** The no-op job of the library side. */
export const Noop = Job.make("bench:noop", { payload: Schema.Struct({ n: Schema.Number }) })

/** Handler-side arrival times: `Date.now()` at the no-op minus the job's scheduled time, of the current measurement. */
let arrivals: Array<number> = []

/** The library's dispatch requests of the current measurement, at `Dispatch.path` (one job) and `Dispatch.batchPath`. */
let requests = { single: 0, batch: 0 }

/** The pool job of the library side: `POST /bench/pool-noop` of the baseline takes the same body. */
export const PoolJob = Job.make("bench:pool", {
  payload: Schema.Struct({ run: Schema.String, n: Schema.Number, sleepMs: Schema.Number })
})

/** What the pool handlers of one run saw: each job's [start, end] at the handler, in order of ending. */
interface Trace {
  readonly spans: Array<readonly [number, number]>
  running: number
  maxRunning: number
}

/** The runs of `/bench/pool` under way, by run id. */
const traces = new Map<string, Trace>()

/** Records a pool handler's start; the returned function records its end. */
const begin = (run: string): () => void => {
  const trace = traces.get(run)
  const start = Date.now()
  if (trace === undefined) return () => undefined
  trace.running++
  trace.maxRunning = Math.max(trace.maxRunning, trace.running)
  return () => {
    trace.running--
    trace.spans.push([start, Date.now()])
  }
}

const handlers = Layer.mergeAll(
  Noop.toLayer((_payload, { scheduledFor }) =>
    Effect.sync(() => {
      arrivals.push(Date.now() - DateTime.toEpochMillis(scheduledFor))
    })
  ),
  PoolJob.toLayer(({ run, sleepMs }) =>
    Effect.gen(function*() {
      const end = begin(run)
      if (sleepMs > 0) yield* Effect.promise(() => sleep(sleepMs))
      end()
    })
  )
)

let dispatch: ((request: Request) => Promise<Response>) | undefined

const baselineNoop = async (request: Request) => {
  const body = await request.json<{ runAt: number }>()
  arrivals.push(Date.now() - body.runAt)
  return Response.json({})
}

const baselinePoolNoop = async (request: Request) => {
  const { run, sleepMs } = await request.json<typeof PoolJob.payloadSchema.Type>()
  const end = begin(run)
  if (sleepMs > 0) await sleep(sleepMs)
  end()
  return Response.json({})
}

/** Nearest-rank percentile of unsorted samples. */
const percentile = (samples: ReadonlyArray<number>, p: number): number => {
  if (samples.length === 0) return Number.NaN
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const POLL_MS = 100
const WAIT_LIMIT_MS = 90_000

type Impl = "library" | "baseline"

/** One finished job, in milliseconds since the epoch. */
interface Outcome {
  readonly scheduledFor: number
  readonly startedAt: number | null
  readonly doneAt: number | null
  /** Whether it succeeded at its first attempt. */
  readonly ok: boolean
  readonly error: string
}

/** What the library and the baseline each provide to the measurements. */
interface Subject {
  /** One job per call, due in an hour. */
  readonly scheduleOne: (n: number) => Promise<void>
  /** Many jobs in one call, each at its time. */
  readonly scheduleMany: (runAts: ReadonlyArray<number>) => Promise<void>
  /** Whether no job is pending or running. */
  readonly idle: () => Promise<boolean>
  /** Every job: when it was scheduled for, started (leased) and finished, and its state. */
  readonly records: () => Promise<ReadonlyArray<Outcome>>
  /** How many alarm invocations its Durable Object has run, where it counts them. */
  readonly alarms: () => Promise<number>
}

const HOUR = 3_600_000

/** The library's Durable Objects the fire, drift and drain measurements run in. */
type LibraryNamespace = DurableObjectNamespace<SchedulerDO> | DurableObjectNamespace<CountingSchedulerDO>

const librarySubject = async (
  namespace: LibraryNamespace,
  instanceName: string,
  shards: number,
  promise = false
): Promise<Subject> => {
  const scheduler = await Effect.runPromise(
    Scheduler.make({ namespace, binding: "SELF_APP", instanceName, shards })
  )
  // the Promise facade over the same instance, for the `promise` rows
  const facade = promise ? createScheduler({ namespace, binding: "SELF_APP", instanceName, shards }) : undefined
  const millis = (value: Option.Option<DateTime.Utc>) =>
    Option.match(value, { onNone: () => null, onSome: DateTime.toEpochMillis })
  return {
    scheduleOne: facade === undefined
      ? (n) => Effect.runPromise(Effect.asVoid(scheduler.runAfter("1 hour", Noop, { n })))
      : async (n) => void await facade.runAfter("1 hour", Noop, { n }),
    scheduleMany: (runAts) =>
      Effect.runPromise(Effect.asVoid(scheduler.submit(runAts.map((at, n) => ({ job: Noop, payload: { n }, at }))))),
    idle: () =>
      Effect.runPromise(
        Effect.map(
          Effect.all([scheduler.list({ state: "pending", limit: 1 }), scheduler.list({ state: "inProgress", limit: 1 })]),
          ([pending, running]) => pending.jobs.length === 0 && running.jobs.length === 0
        )
      ),
    records: () =>
      Effect.runPromise(Effect.gen(function*() {
        const jobs: Array<Job.JobInfo> = []
        let cursor: string | undefined
        do {
          const page = yield* scheduler.list({ limit: 1000, ...(cursor === undefined ? {} : { cursor }) })
          jobs.push(...page.jobs)
          cursor = Option.getOrUndefined(page.cursor)
        } while (cursor !== undefined)
        return jobs.map((job) => ({
          scheduledFor: DateTime.toEpochMillis(job.scheduledFor),
          startedAt: millis(job.startedAt),
          doneAt: millis(job.completedAt),
          ok: job.state === "success" && job.attempt === 1,
          error: `${job.state} after ${job.attempt} attempt(s): ${Option.getOrElse(job.lastError, () => "")}`
        }))
      })),
    // only CountingSchedulerDO answers it: another SchedulerDO rejects the call
    alarms: () => {
      const counting = namespace as DurableObjectNamespace<CountingSchedulerDO>
      return counting.get(counting.idFromName(instanceName)).alarms()
    }
  }
}

const baselineSubject = (namespace: DurableObjectNamespace<BaselineDO>, instanceName: string): Subject => {
  const stub = namespace.get(namespace.idFromName(instanceName))
  return {
    scheduleOne: async (n) => {
      await stub.schedule({ runAt: Date.now() + HOUR, args: JSON.stringify({ n }) })
    },
    scheduleMany: async (runAts) => {
      await stub.scheduleMany(runAts.map((runAt, n) => ({ runAt, args: JSON.stringify({ n }) })))
    },
    idle: async () => (await stub.unfinished()) === 0,
    records: async () =>
      (await stub.records()).map((row) => ({
        scheduledFor: row.runAt,
        startedAt: row.startedAt,
        doneAt: row.doneAt,
        ok: row.state === "done",
        error: row.state
      })),
    alarms: () => stub.alarms()
  }
}

/** The library's `SchedulerDO` by its `LUNORA_SCHEDULER_DISPATCH_BATCH`: the default 10, 1, 25 or 100. */
const byBatch = (env: Env, batch: number): DurableObjectNamespace<SchedulerDO> => {
  switch (batch) {
    case 1:
      return env.SINGLE_SCHEDULER
    case 10:
      return env.SCHEDULER
    case 25:
      return env.BATCH25_SCHEDULER
    case 100:
      return env.BATCH100_SCHEDULER
    default:
      throw new Error(`batch must be 1, 10 (the default), 25 or 100, not ${batch}`)
  }
}

/**
 * The subject of `impl` on a fresh instance; the library's spread over
 * `shards` SchedulerDOs (the baseline has one), scheduling one job per call
 * through `createScheduler` with `promise`.
 */
const subjectOf = async (
  impl: Impl,
  library: LibraryNamespace,
  baseline: DurableObjectNamespace<BaselineDO>,
  shards = 1,
  promise = false
) => {
  const instanceName = `bench-${impl}-${crypto.randomUUID()}`
  if (impl === "baseline" && shards !== 1) throw new Error("the baseline has one Durable Object: shards must be 1")
  return impl === "library" ? librarySubject(library, instanceName, shards, promise) : baselineSubject(baseline, instanceName)
}

/** `n` sequential one-job calls, after `prime` untimed ones (which wake the subject's Durable Objects). */
const scheduleSingle = async (subject: Subject, n: number, prime = 0) => {
  for (let i = 0; i < prime; i++) await subject.scheduleOne(-1 - i)
  const latencies: Array<number> = []
  const start = Date.now()
  for (let i = 0; i < n; i++) {
    const before = Date.now()
    await subject.scheduleOne(i)
    latencies.push(Date.now() - before)
  }
  const elapsedMs = Date.now() - start
  return {
    jobs: n,
    elapsedMs,
    jobsPerSec: (n * 1000) / elapsedMs,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    meanMs: elapsedMs / n
  }
}

/**
 * The replay check's price: `n` sequential calls of the library's
 * `confirmDispatch` (what the dispatch endpoint asks the `SchedulerDO` before
 * a handler runs, arguments decoded with Schema), against a no-op RPC.
 */
const confirm = async (env: Env, impl: Impl, n: number) => {
  const name = `bench-confirm-${crypto.randomUUID()}`
  const call = impl === "library"
    ? (() => {
      const stub = env.SCHEDULER.get(env.SCHEDULER.idFromName(name))
      return () => stub.confirmDispatch(crypto.randomUUID(), "job_0_0000000000000000", 1)
    })()
    : (() => {
      const stub = env.BASELINE.get(env.BASELINE.idFromName(name))
      return () => stub.ping()
    })()
  await call()
  const latencies: Array<number> = []
  const start = Date.now()
  for (let i = 0; i < n; i++) {
    const before = Date.now()
    await call()
    latencies.push(Date.now() - before)
  }
  const elapsedMs = Date.now() - start
  return { calls: n, elapsedMs, callsPerSec: (n * 1000) / elapsedMs, p50Ms: percentile(latencies, 50), meanMs: elapsedMs / n }
}

/** `batches` sequential calls of `size` jobs each, due in an hour. */
const scheduleBatch = async (subject: Subject, batches: number, size: number) => {
  const start = Date.now()
  for (let b = 0; b < batches; b++) {
    const at = Date.now() + HOUR
    await subject.scheduleMany(Array.from({ length: size }, () => at))
  }
  const elapsedMs = Date.now() - start
  return { jobs: batches * size, elapsedMs, jobsPerSec: (batches * size * 1000) / elapsedMs }
}

/** Schedules `runAts` (relative to a start `leadMs` from now) in calls of `chunk`, then waits until every job ran. */
const runToCompletion = async (subject: Subject, offsets: ReadonlyArray<number>, leadMs: number, chunk: number) => {
  arrivals = []
  requests = { single: 0, batch: 0 }
  const t0 = Date.now() + leadMs
  const runAts = offsets.map((offset) => t0 + offset)
  for (let i = 0; i < runAts.length; i += chunk) await subject.scheduleMany(runAts.slice(i, i + chunk))
  const scheduledBy = Date.now()
  const deadline = Date.now() + WAIT_LIMIT_MS
  while (!(await subject.idle())) {
    if (Date.now() > deadline) throw new Error(`jobs still unfinished after ${WAIT_LIMIT_MS} ms`)
    await sleep(POLL_MS)
  }
  const records = await subject.records()
  const bad = records.filter((record) => !record.ok)
  if (records.length !== offsets.length || bad.length > 0) {
    throw new Error(
      `${records.length} jobs stored for ${offsets.length} scheduled; ${bad.length} did not succeed at once` +
        (bad[0] === undefined ? "" : ` (first: ${bad[0].error})`)
    )
  }
  if (arrivals.length !== offsets.length) {
    throw new Error(`the no-op ran ${arrivals.length} times for ${offsets.length} jobs`)
  }
  return { t0, scheduledBy, records, arrivals: [...arrivals], requests: { ...requests } }
}

/** `n` jobs all due at one instant: from that instant until the last one finished. */
const fire = async (subject: Subject, n: number, leadMs: number) => {
  const { arrivals: seen, records, requests, scheduledBy, t0 } = await runToCompletion(
    subject,
    Array.from({ length: n }, () => 0),
    leadMs,
    500
  )
  const lastDone = Math.max(...records.map((record) => record.doneAt!))
  const firstStart = Math.min(...records.map((record) => record.startedAt!))
  const elapsedMs = lastDone - t0
  return {
    jobs: n,
    elapsedMs,
    jobsPerSec: (n * 1000) / elapsedMs,
    wakeMs: firstStart - t0,
    scheduledEarlyMs: t0 - scheduledBy,
    handlerP50Ms: percentile(seen, 50),
    singleRequests: requests.single,
    batchRequests: requests.batch
  }
}

/**
 * `n` jobs all due at one instant, run to completion: how many alarm
 * invocations that took (the library leases up to `LUNORA_SCHEDULER_MAX_PER_ALARM`
 * requests per alarm, 10 jobs each at its default; the baseline 500 jobs), and
 * jobs/s from the instant until the last one finished.
 */
const drain = async (subject: Subject, n: number, leadMs: number) => {
  const result = await fire(subject, n, leadMs)
  return { ...result, alarms: await subject.alarms() }
}

/** `n` jobs spread evenly over `spreadMs`: start (lease) time minus scheduled time, and arrival at the no-op minus scheduled time. */
const drift = async (subject: Subject, n: number, spreadMs: number, leadMs: number) => {
  const { arrivals: seen, records, requests, scheduledBy, t0 } = await runToCompletion(
    subject,
    Array.from({ length: n }, (_, i) => Math.floor((i * spreadMs) / n)),
    leadMs,
    500
  )
  const drifts = records.map((record) => record.startedAt! - record.scheduledFor)
  return {
    jobs: n,
    p50Ms: percentile(drifts, 50),
    p99Ms: percentile(drifts, 99),
    maxMs: Math.max(...drifts),
    handlerP50Ms: percentile(seen, 50),
    handlerP99Ms: percentile(seen, 99),
    scheduledEarlyMs: t0 - scheduledBy,
    singleRequests: requests.single,
    batchRequests: requests.batch
  }
}

/** What the library's and the baseline's pools each provide to `/bench/pool`. */
interface PoolSubject {
  /** Creates the pool with its cap (and wakes its Durable Object), before the clock starts. */
  readonly declare: () => Promise<void>
  /** Queues the jobs in one call. */
  readonly enqueue: (payloads: ReadonlyArray<typeof PoolJob.payloadSchema.Type>) => Promise<void>
  /** Whether nothing is queued or in flight any more, and how many jobs failed for good. */
  readonly settled: () => Promise<{ readonly idle: boolean; readonly failed: number }>
}

const libraryPool = async (env: Env, instanceName: string, maxConcurrency: number): Promise<PoolSubject> => {
  const pool = await Effect.runPromise(
    Workpool.make({ namespace: env.WIDE_SCHEDULER, binding: "SELF_APP", instanceName, name: "bench", maxConcurrency })
  )
  return {
    declare: () => Effect.runPromise(Effect.asVoid(pool.status)),
    enqueue: (payloads) =>
      Effect.runPromise(Effect.asVoid(pool.enqueueMany(payloads.map((payload) => ({ job: PoolJob, payload }))))),
    settled: () =>
      Effect.runPromise(Effect.map(pool.status, (status) => ({
        idle: status.inFlight === 0 && status.queued === 0,
        failed: status.deadLettered
      })))
  }
}

const baselinePool = (env: Env, instanceName: string, maxConcurrency: number): PoolSubject => {
  const stub = env.BASELINE.get(env.BASELINE.idFromName(instanceName))
  return {
    declare: () => stub.definePool(maxConcurrency),
    enqueue: async (payloads) => {
      await stub.enqueue(payloads.map((payload) => JSON.stringify(payload)))
    },
    settled: async () => {
      const counts = await stub.poolCounts()
      return { idle: counts.queued === 0 && counts.started === 0, failed: counts.failed }
    }
  }
}

const POOL_POLL_MS = 20

/**
 * `n` jobs enqueued at once into a pool of `maxConcurrency`, each handler
 * sleeping `sleepMs`: jobs/s from the enqueue call until the last handler
 * ended, the most handlers seen running at once, and with a cap of 1 the
 * hand-off (one handler's end to the next one's start), all on the handlers' clock.
 */
const pool = async (subject: PoolSubject, run: string, n: number, maxConcurrency: number, sleepMs: number) => {
  const trace: Trace = { spans: [], running: 0, maxRunning: 0 }
  traces.set(run, trace)
  try {
    await subject.declare()
    const start = Date.now()
    await subject.enqueue(Array.from({ length: n }, (_, i) => ({ run, n: i, sleepMs })))
    const deadline = start + WAIT_LIMIT_MS
    const wait = async (done: () => Promise<boolean>, what: string) => {
      while (!(await done())) {
        if (Date.now() > deadline) throw new Error(`${what} after ${WAIT_LIMIT_MS} ms`)
        await sleep(POOL_POLL_MS)
      }
    }
    await wait(async () => trace.spans.length >= n, `${n - trace.spans.length} of ${n} handlers not run`)
    // the pool records the last outcomes once their handlers have answered
    await wait(async () => {
      const { failed, idle } = await subject.settled()
      if (failed > 0) throw new Error(`${failed} of ${n} jobs failed`)
      return idle
    }, "jobs still unfinished")
    if (trace.spans.length !== n) throw new Error(`the pool handler ran ${trace.spans.length} times for ${n} jobs`)
    const spans = [...trace.spans].sort((a, b) => a[0] - b[0])
    const elapsedMs = Math.max(...spans.map(([, end]) => end)) - start
    const handoffs = spans.slice(1).map(([next], i) => next - spans[i]![1])
    return {
      jobs: n,
      maxConcurrency,
      elapsedMs,
      jobsPerSec: (n * 1000) / elapsedMs,
      firstStartMs: spans[0]![0] - start,
      maxRunning: trace.maxRunning,
      ...(maxConcurrency === 1
        ? { handoffP50Ms: percentile(handoffs, 50), handoffP99Ms: percentile(handoffs, 99), handoffMaxMs: Math.max(...handoffs) }
        : {})
    }
  } finally {
    traces.delete(run)
  }
}

/**
 * The part of a `DurableObjectNamespace` that `Scheduler.make` uses, over
 * `namespace`: `idFromName` and `get` pass through, and each method called on
 * a stub it returns is one call into a `SchedulerDO`, counted in `calls.n`.
 */
const countingNamespace = (namespace: DurableObjectNamespace<SchedulerDO>, calls: { n: number }) => ({
  idFromName: (name: string) => namespace.idFromName(name),
  get: (id: DurableObjectId) =>
    new Proxy(namespace.get(id), {
      get: (stub, property) => {
        const value: unknown = Reflect.get(stub, property)
        if (typeof value !== "function") return value
        return (...args: ReadonlyArray<unknown>) => {
          calls.n++
          return Reflect.apply(value, stub, args)
        }
      }
    })
})

/** The library's scheduler over `shards` SchedulerDOs of `namespace`, on a fresh instance. */
const shardedScheduler = (namespace: Scheduler.LiveOptions["namespace"], shards: number) =>
  Effect.runPromise(
    Scheduler.make({ namespace, binding: "SELF_APP", instanceName: `bench-shards-${crypto.randomUUID()}`, shards })
  )

/**
 * The calls into SchedulerDOs of one `get`, one `cancel` and one
 * `list({ limit })` of a scheduler over `shards`, counted at the stubs of its
 * namespace. A first write (one job, due in an hour) comes before them: it
 * pays the one-off check of the shard count (a `shards` call to shard 0),
 * counted apart in `firstWriteCalls`. The job is the one got and canceled.
 */
const shardCalls = async (env: Env, shards: number, limit: number) => {
  const calls = { n: 0 }
  const scheduler = await shardedScheduler(countingNamespace(env.SCHEDULER, calls), shards)
  const callsOf = async <A>(operation: Effect.Effect<A, unknown>) => {
    const before = calls.n
    const result = await Effect.runPromise(operation)
    return [calls.n - before, result] as const
  }
  const [firstWriteCalls, id] = await callsOf(scheduler.runAfter("1 hour", Noop, { n: 0 }))
  const [getCalls] = await callsOf(scheduler.get(id))
  const [cancelCalls, canceled] = await callsOf(scheduler.cancel(id))
  if (canceled._tag !== "Canceled") throw new Error(`cancel of a pending job answered ${canceled._tag}`)
  const [listCalls, page] = await callsOf(scheduler.list({ limit }))
  if (page.jobs.length !== 1) throw new Error(`list found ${page.jobs.length} jobs, not the 1 scheduled`)
  return { shards, firstWriteCalls, getCalls, cancelCalls, listCalls }
}

/**
 * `n` jobs stored pending (due in an hour, in submit calls of 500) in a
 * scheduler over `shards`, then `calls` sequential `list({ limit })`: their
 * latency. Over several shards each returns up to `limit` jobs, merged here.
 */
const shardList = async (env: Env, shards: number, n: number, calls: number, limit: number) => {
  const scheduler = await shardedScheduler(env.SCHEDULER, shards)
  for (let i = 0; i < n; i += 500) {
    const at = Date.now() + HOUR
    await Effect.runPromise(
      scheduler.submit(Array.from({ length: Math.min(500, n - i) }, (_, k) => ({ job: Noop, payload: { n: i + k }, at })))
    )
  }
  const latencies: Array<number> = []
  const start = Date.now()
  for (let i = 0; i < calls; i++) {
    const before = Date.now()
    const page = await Effect.runPromise(scheduler.list({ limit }))
    latencies.push(Date.now() - before)
    if (page.jobs.length !== Math.min(limit, n)) throw new Error(`list found ${page.jobs.length} of ${n} jobs`)
  }
  const elapsedMs = Date.now() - start
  return { shards, jobs: n, calls, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), meanMs: elapsedMs / calls }
}

const measure = async (env: Env, url: URL): Promise<unknown> => {
  const impl = url.searchParams.get("impl")
  if (impl !== "library" && impl !== "baseline") throw new Error("impl must be library or baseline")
  const int = (name: string, fallback: number) => {
    const value = Number(url.searchParams.get(name) ?? fallback)
    if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer`)
    return value
  }
  if (url.pathname === "/bench/pool") {
    const maxConcurrency = int("max", 8)
    if (maxConcurrency < 1) throw new Error("max must be at least 1")
    const run = `bench-pool-${impl}-${crypto.randomUUID()}`
    const subject = impl === "library"
      ? await libraryPool(env, run, maxConcurrency)
      : baselinePool(env, run, maxConcurrency)
    return pool(subject, run, int("n", 600), maxConcurrency, int("sleep", 0))
  }
  if (url.pathname === "/bench/confirm") return confirm(env, impl, int("n", 500))
  if (url.pathname === "/bench/drain") {
    return drain(await subjectOf(impl, env.COUNTING_SCHEDULER, env.BASELINE), int("n", 5000), int("lead", 3000))
  }
  const shards = int("shards", 1)
  if (shards < 1) throw new Error("shards must be at least 1")
  if (url.pathname === "/bench/shard-calls" || url.pathname === "/bench/shard-list") {
    if (impl !== "library") throw new Error(`${url.pathname} measures the library only`)
    return url.pathname === "/bench/shard-calls"
      ? shardCalls(env, shards, int("limit", 100))
      : shardList(env, shards, int("n", 2000), int("calls", 30), int("limit", 100))
  }
  const library = int("metrics", 1) === 0 ? env.NO_METRICS_SCHEDULER : byBatch(env, int("batch", 10))
  const subject = await subjectOf(impl, library, env.BASELINE, shards, int("promise", 0) === 1)
  switch (url.pathname) {
    case "/bench/schedule-single":
      return scheduleSingle(subject, int("n", 500), int("prime", 0))
    case "/bench/schedule-batch":
      return scheduleBatch(subject, int("batches", 20), int("size", 500))
    case "/bench/fire":
      return fire(subject, int("n", 2000), int("lead", 1500))
    case "/bench/drift":
      return drift(subject, int("n", 2000), int("spread", 2000), int("lead", 1500))
    default:
      throw new Error(`no measurement at ${url.pathname}`)
  }
}

export default {
  fetch: async (request: Request, env: Env) => {
    const url = new URL(request.url)
    if (url.pathname === "/bench/noop") return baselineNoop(request)
    if (url.pathname === "/bench/pool-noop") return baselinePoolNoop(request)
    if (url.pathname.startsWith("/bench/")) {
      try {
        return Response.json(await measure(env, url))
      } catch (error) {
        return Response.json({ error: error instanceof Error ? error.message : String(error) }, { status: 500 })
      }
    }
    if (url.pathname === Dispatch.batchPath) requests.batch++
    else if (url.pathname === Dispatch.path) requests.single++
    // as the README recommends: each dispatch is confirmed with the SchedulerDO that sent it
    dispatch ??= Dispatch.toFetchHandlerWith(handlers, {
      secret: env.LUNORA_SCHEDULER_SECRET,
      namespace: [
        env.SCHEDULER,
        env.SINGLE_SCHEDULER,
        env.BATCH25_SCHEDULER,
        env.BATCH100_SCHEDULER,
        env.COUNTING_SCHEDULER,
        env.WIDE_SCHEDULER,
        env.NO_METRICS_SCHEDULER
      ]
    })
    return dispatch(request)
  }
} satisfies ExportedHandler<Env>
