/**
 * Pull-based workers: work that does not fit a Worker request (a container,
 * a long job, a process outside Cloudflare) pulls the jobs of a pull pool
 * (`Workpool.layer({ name, maxConcurrency, pull: true })`) instead of having
 * them dispatched. A worker leases up to N due jobs for a lease duration,
 * extends the lease with heartbeats while it works, and completes or fails
 * each with its lease token. The pool's cap counts leased jobs as jobs in
 * flight. A worker that dies holds its leases only until they run out: the
 * `SchedulerDO` then counts the attempt as failed, and the job follows its
 * retry policy (leased again, or dead-lettered). A token whose lease ran out
 * or ended is refused (`LeaseLost`), so a late worker cannot overwrite the
 * outcome of the attempt that replaced it.
 *
 * `PullWorker.run` is the loop: it leases as many jobs as it has free
 * slots, runs each with its handler, heartbeats every third of the lease,
 * and backs off (from `idle`, doubling to 30 seconds) while nothing is due.
 *
 * @since 0.1.0
 */
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import { JobId } from "./Job.js"
import { InvalidOptions, PoolNotFound, type SchedulerUnavailable } from "./SchedulerError.js"
import { describeFailure } from "./internal/domain/failure.js"
import { MAX_PULL_LEASE_MS, MIN_PULL_LEASE_MS } from "./internal/engine/pools.js"
import type { JobRecord } from "./internal/engine/store.js"
import { type Backend, SchedulerEngine } from "./internal/services/backend.js"
import { type LiveOptions, makeRemote } from "./internal/services/remote.js"

/**
 * The lease of a pulled job ran out, or its outcome was recorded already:
 * the attempt is no longer this worker's, and nothing was changed.
 *
 * @since 0.1.0
 * @category errors
 */
export class LeaseLost extends Schema.TaggedError<LeaseLost>()("LeaseLost", {
  jobId: Schema.String,
  token: Schema.String
}) {
  override get message(): string {
    return `the lease ${this.token} of job ${this.jobId} ran out or ended: its attempt is no longer this worker's`
  }
}

/**
 * A leased job: what to run (`functionPath`, `payload`), which attempt it
 * is, until when the lease holds, and its lease token (what `heartbeat`,
 * `complete` and `fail` take).
 *
 * @since 0.1.0
 * @category models
 */
export const PulledJob = Schema.Struct({
  id: JobId,
  functionPath: Schema.String,
  payload: Schema.Unknown,
  attempt: Schema.Int,
  scheduledFor: Schema.DateTimeUtc,
  leaseUntil: Schema.DateTimeUtc,
  token: Schema.String
})

/**
 * @since 0.1.0
 * @category models
 */
export interface PulledJob extends Schema.Schema.Type<typeof PulledJob> {}

/**
 * What `heartbeat`, `complete` and `fail` need of a leased job: its id and
 * lease token (`<id>@<attempt>`).
 *
 * @since 0.1.0
 * @category models
 */
export type Held = Pick<PulledJob, "id" | "token">

/**
 * The attempt a lease token names, if it is one of `id`'s.
 *
 * @since 0.1.0
 * @category models
 */
export const attemptOf = (held: { readonly id: string; readonly token: string }): number | undefined => {
  const at = held.token.lastIndexOf("@")
  const attempt = Number(held.token.slice(at + 1))
  return held.token.slice(0, at) === held.id && Number.isInteger(attempt) && attempt >= 1 ? attempt : undefined
}

/**
 * The calls of a pull worker on one pull pool.
 *
 * @since 0.1.0
 * @category models
 */
export interface Client {
  readonly pool: string
  /** Leases up to `max` (1–100) due jobs for `lease` (default 5 minutes; 1 second to 1 hour), as the pool's cap allows. */
  readonly lease: (
    max: number,
    lease?: Duration.DurationInput
  ) => Effect.Effect<ReadonlyArray<PulledJob>, PoolNotFound | InvalidOptions | SchedulerUnavailable>
  /** Extends a job's lease to `lease` from now; when it now ends. */
  readonly heartbeat: (
    job: Held,
    lease?: Duration.DurationInput
  ) => Effect.Effect<DateTime.Utc, LeaseLost | InvalidOptions | SchedulerUnavailable>
  /** Records the attempt's success with its result (JSON). */
  readonly complete: (job: Held, result?: unknown) => Effect.Effect<void, LeaseLost | InvalidOptions | SchedulerUnavailable>
  /** Records the attempt's failure: retried on the job's policy, unless `retry: false`. */
  readonly fail: (
    job: Held,
    error: unknown,
    options?: { readonly retry?: boolean | undefined }
  ) => Effect.Effect<void, LeaseLost | InvalidOptions | SchedulerUnavailable>
}

const DEFAULT_LEASE = Duration.minutes(5)

const tokenOf = (job: JobRecord) => `${job.id}@${job.attempt}`

const leaseMillis = (lease: Duration.DurationInput | undefined): Effect.Effect<number, InvalidOptions> => {
  const ms = Math.round(Duration.toMillis(lease ?? DEFAULT_LEASE))
  return Number.isFinite(ms) && ms >= MIN_PULL_LEASE_MS && ms <= MAX_PULL_LEASE_MS
    ? Effect.succeed(ms)
    : Effect.fail(new InvalidOptions({ reason: `a lease is from 1 second to 1 hour, not ${Duration.format(lease ?? DEFAULT_LEASE)}` }))
}

/**
 * The pull worker's calls over a backend (a live scheduler's, or the test
 * layer's engine).
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromBackend = (backend: Backend, pool: string): Client => {
  const pulled = (job: JobRecord): PulledJob => ({
    id: job.id as JobId,
    functionPath: job.functionPath,
    payload: JSON.parse(job.args),
    attempt: job.attempt,
    scheduledFor: DateTime.unsafeMake(job.scheduledFor),
    leaseUntil: DateTime.unsafeMake(job.runAt),
    token: tokenOf(job)
  })
  const lost = (job: Held) => new LeaseLost({ jobId: job.id, token: job.token })
  /** The attempt `job`'s token names; a token that names none is a lost lease. */
  const held = (job: Held) => {
    const attempt = attemptOf(job)
    return attempt === undefined ? Effect.fail(lost(job)) : Effect.succeed(attempt)
  }
  const report = (job: Held, outcome: (attempt: number) => Parameters<Backend["reportPulled"]>[1]) =>
    Effect.flatMap(held(job), (attempt) =>
      Effect.flatMap(backend.reportPulled(pool, outcome(attempt)), (result) =>
        result._tag === "Recorded" ? Effect.void : Effect.fail(lost(job))))
  return {
    pool,
    lease: (max, lease) =>
      Effect.gen(function*() {
        if (!Number.isInteger(max) || max < 1 || max > 100) {
          return yield* new InvalidOptions({ reason: `a worker leases 1 to 100 jobs at once, not ${max}` })
        }
        const result = yield* backend.leasePulled(pool, max, yield* leaseMillis(lease))
        if (result._tag === "PoolNotFound") return yield* new PoolNotFound({ pool })
        if (result._tag === "NotPull") {
          return yield* new InvalidOptions({ reason: `the pool ${pool} is not a pull pool: declare it with pull: true` })
        }
        return result.jobs.map(pulled)
      }).pipe(Effect.withSpan("PullWorker.lease", { attributes: { pool, max } })),
    heartbeat: (job, lease) =>
      Effect.gen(function*() {
        const result = yield* backend.heartbeatPulled(pool, job.id, yield* held(job), yield* leaseMillis(lease))
        if (result._tag === "Stale") return yield* lost(job)
        return DateTime.unsafeMake(result.until)
      }),
    complete: (job, result) =>
      report(job, (attempt) => ({
        id: job.id,
        attempt,
        ok: true,
        result: result === undefined ? null : JSON.stringify(result)
      })).pipe(Effect.withSpan("PullWorker.complete", { attributes: { pool, jobId: job.id } })),
    fail: (job, error, options) =>
      report(job, (attempt) => ({ id: job.id, attempt, ok: false, retryable: options?.retry ?? true, error: describeFailure(error) }))
        .pipe(Effect.withSpan("PullWorker.fail", { attributes: { pool, jobId: job.id } }))
  }
}

/**
 * The pull worker's calls on the pull pool `pool` of a live scheduler,
 * over the `SchedulerDO` namespace binding (a Worker's RPC).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: LiveOptions & { readonly pool: string }): Effect.Effect<Client, InvalidOptions> =>
  Effect.map(makeRemote(options), (backend) => fromBackend(backend, options.pool))

/**
 * The pull worker's calls over the engine of the test layer
 * (`TestScheduler.layer()`), for a pull pool declared there with
 * `Workpool.layerMemory({ name, maxConcurrency, pull: true })`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromEngine = (pool: string): Effect.Effect<Client, never, SchedulerEngine> =>
  Effect.map(SchedulerEngine, (backend) => fromBackend(backend, pool))

/**
 * A job's handler in a pull worker: its payload and the job; its success is
 * the job's result (JSON), its failure a failed attempt.
 *
 * @since 0.1.0
 * @category models
 */
export type Handler = (payload: unknown, job: PulledJob) => Effect.Effect<unknown, unknown>

/**
 * Runs a pull worker until interrupted: leases as many jobs as it has free
 * slots (`concurrency`, default 4), runs each with the handler of its
 * function path (a job with none fails without a retry), heartbeats every
 * third of `lease` (an attempt whose lease is lost is interrupted), records
 * each outcome, and waits `idle` (default 1 second, doubling to 30 seconds)
 * while nothing is due. Fails only when the pool cannot be pulled from
 * (`PoolNotFound`, `InvalidOptions`); an unavailable scheduler is retried.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (
  client: Client,
  handlers: Readonly<Record<string, Handler>>,
  options: {
    readonly concurrency?: number | undefined
    readonly lease?: Duration.DurationInput | undefined
    readonly idle?: Duration.DurationInput | undefined
  } = {}
): Effect.Effect<never, PoolNotFound | InvalidOptions> =>
  Effect.scoped(Effect.gen(function*() {
    const concurrency = options.concurrency ?? 4
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 100) {
      return yield* new InvalidOptions({ reason: `concurrency is from 1 to 100, not ${concurrency}` })
    }
    const lease = Duration.millis(yield* leaseMillis(options.lease))
    const beatEvery = Duration.millis(Math.max(250, Duration.toMillis(lease) / 3))
    const idleFrom = Duration.toMillis(options.idle ?? Duration.seconds(1))
    const slots = yield* Queue.unbounded<void>()
    yield* Queue.offerAll(slots, Array.from({ length: concurrency }, () => undefined))
    const running = yield* FiberSet.make()

    const attempt = (job: PulledJob) =>
      Effect.gen(function*() {
        const handler = handlers[job.functionPath]
        if (handler === undefined) {
          return yield* client.fail(job, `no handler for ${job.functionPath} in this worker`, { retry: false })
        }
        const work = yield* Effect.fork(handler(job.payload, job))
        // a heartbeat that does not get through is tried again at the next beat; a lost lease stops the attempt
        const beat = client.heartbeat(job, lease).pipe(
          Effect.asVoid,
          Effect.catchTags({
            SchedulerUnavailable: (error) => Effect.logWarning("pull worker: a heartbeat did not get through", error),
            InvalidOptions: (error) => Effect.logWarning("pull worker: a heartbeat was refused", error)
          })
        )
        const beats = yield* Effect.fork(
          Effect.forever(Effect.zipRight(Effect.sleep(beatEvery), beat)).pipe(
            Effect.catchTag("LeaseLost", () => Fiber.interrupt(work))
          )
        )
        const exit = yield* Fiber.await(work)
        yield* Fiber.interrupt(beats)
        if (Exit.isSuccess(exit)) return yield* client.complete(job, exit.value)
        if (Exit.isInterrupted(exit)) return
        return yield* client.fail(job, exit.cause)
      }).pipe(
        Effect.catchAllCause((cause) => Effect.logWarning(`pull worker: job ${job.id} attempt ${job.attempt}`, cause)),
        Effect.ensuring(Queue.offer(slots, undefined)),
        Effect.annotateLogs({ jobId: job.id, functionPath: job.functionPath, pool: client.pool })
      )

    let idleMs = idleFrom
    for (;;) {
      yield* Queue.take(slots)
      const free = 1 + (yield* Queue.takeAll(slots)).length
      const jobs = yield* client.lease(free, lease).pipe(
        Effect.catchTag("SchedulerUnavailable", (error) =>
          Effect.as(Effect.logWarning("pull worker: the scheduler is unavailable", error), [] as ReadonlyArray<PulledJob>))
      )
      yield* Queue.offerAll(slots, Array.from({ length: free - jobs.length }, () => undefined))
      for (const job of jobs) yield* FiberSet.run(running, attempt(job))
      if (jobs.length > 0) idleMs = idleFrom
      else {
        yield* Effect.sleep(Duration.millis(idleMs))
        idleMs = Math.min(idleMs * 2, 30_000)
      }
    }
  }))
