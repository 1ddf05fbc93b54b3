/**
 * The `Workpool` service: a named pool with a hard concurrency cap, inside
 * the same `SchedulerDO` as the scheduled jobs. At most `maxConcurrency` of
 * its jobs are in flight at any moment (across alarms, restarts and
 * retries); the rest wait durably in FIFO order, and a completion starts the
 * next at once.
 *
 * @since 0.1.0
 */
import type * as ConfigError from "effect/ConfigError"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { MaxConcurrency, PoolName } from "./internal/domain/names.js"
import { type Backend, SchedulerEngine } from "./internal/services/backend.js"
import { toInfo } from "./internal/engine/engine.js"
import { invalidOptions } from "./internal/domain/failure.js"
import type * as PoolEngine from "./internal/engine/pools.js"
import { type LiveOptions, makeRemote } from "./internal/services/remote.js"
import {
  type CancelResult,
  prepareAll,
  type RunOptions,
  type Scheduled,
  type ScheduleError,
  type Submission,
  toCancelResult,
  toScheduled
} from "./internal/engine/submission.js"
import type * as Job from "./Job.js"
import {
  type InvalidOptions,
  JobNotFound,
  PoolNotFound,
  type SchedulerUnavailable
} from "./SchedulerError.js"

export {
  /**
   * A pool's cap: an integer from 1 to 1000.
   *
   * @since 0.1.0
   * @category models
   */
  MaxConcurrency,
  /**
   * A pool's name: letters, digits, `_`, `-`, `.` and `:`, 1 to 64 characters.
   *
   * @since 0.1.0
   * @category models
   */
  PoolName
}

/**
 * Which pool a `Workpool` serves. With `maxConcurrency` the pool is declared:
 * created, or its cap set when the declared cap changed (a cap changed at
 * runtime with `setMaxConcurrency` stays until the declaration changes).
 * Without it the pool must exist already (`PoolNotFound` otherwise).
 * With `pull: true` (and a `maxConcurrency`) it is a pull pool: the
 * scheduler never dispatches its jobs; workers lease them (`PullWorker`).
 *
 * @since 0.1.0
 * @category models
 */
export const PoolOptions = Schema.Struct({
  name: PoolName,
  maxConcurrency: Schema.optional(MaxConcurrency),
  pull: Schema.optional(Schema.Boolean)
})

/**
 * @since 0.1.0
 * @category models
 */
export type PoolOptions = typeof PoolOptions.Encoded

/**
 * A pool's state: its cap, whether it is paused, the jobs in flight, queued
 * (waiting for a slot or for their next attempt) and dead-lettered, and how
 * long the job first in line has been waiting.
 *
 * @since 0.1.0
 * @category models
 */
export class PoolStatus extends Schema.Class<PoolStatus>("@lunora/scheduler/PoolStatus")({
  name: Schema.String,
  maxConcurrency: Schema.Int,
  paused: Schema.Boolean,
  inFlight: Schema.Int,
  queued: Schema.Int,
  deadLettered: Schema.Int,
  /** When the job first in line became due, if one is due. */
  oldestQueuedAt: Schema.OptionFromNullOr(Schema.DateTimeUtc),
  /** How long it has waited since. */
  oldestQueuedAge: Schema.OptionFromNullOr(Schema.DurationFromMillis)
}) {}

/**
 * What `enqueue` accepts: a job, its payload, and its options (`key` dedupes
 * while the job is live, `retry` and `deadLetter` as for scheduled jobs).
 *
 * @since 0.1.0
 * @category models
 */
export interface Enqueue<R extends Job.Ref = Job.Ref> {
  readonly job: R
  readonly payload: Job.Payload<R>
  readonly options?: RunOptions | undefined
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Workpool extends Context.Tag("@lunora/scheduler/Workpool")<Workpool, {
  readonly name: string
  /** Queues a job in the pool; it starts when a slot is free and the jobs before it have started. */
  readonly enqueue: <R extends Job.Ref>(
    job: R,
    payload: Job.Payload<R>,
    options?: RunOptions
  ) => Effect.Effect<Scheduled, ScheduleError | PoolNotFound>
  /** Queues many jobs atomically, in order: all are stored, or (on any refusal) none. */
  readonly enqueueMany: (
    items: ReadonlyArray<Enqueue>
  ) => Effect.Effect<ReadonlyArray<Scheduled>, ScheduleError | PoolNotFound>
  readonly status: Effect.Effect<PoolStatus, PoolNotFound | SchedulerUnavailable>
  /** Cancels a job of this pool, with the outcomes of `Scheduler.cancel`. */
  readonly cancel: (id: string) => Effect.Effect<CancelResult, JobNotFound | PoolNotFound | SchedulerUnavailable>
  /** Cancels everything the pool has queued (in batches of 500); jobs in flight finish. Returns how many. */
  readonly cancelQueued: Effect.Effect<number, PoolNotFound | SchedulerUnavailable>
  /** Starts nothing more until `resume`; jobs in flight finish. Survives restarts and redeploys. */
  readonly pause: Effect.Effect<void, PoolNotFound | SchedulerUnavailable>
  readonly resume: Effect.Effect<void, PoolNotFound | SchedulerUnavailable>
  /** Changes the cap now; a lower cap holds back new starts, it interrupts nothing. */
  readonly setMaxConcurrency: (
    maxConcurrency: number
  ) => Effect.Effect<void, InvalidOptions | PoolNotFound | SchedulerUnavailable>
  /** A job of this pool (`Scheduler.get` finds it too). */
  readonly get: (id: string) => Effect.Effect<Job.JobInfo, JobNotFound | PoolNotFound | SchedulerUnavailable>
}>() {}

const decodePoolOptions = Schema.decodeUnknownEither(PoolOptions)
const decodeMaxConcurrency = Schema.decodeUnknownEither(MaxConcurrency)
const CANCEL_BATCH = 500

/**
 * Builds a pool's service over a scheduler backend. The pool is declared (or
 * looked up) by the first call, once per service.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromBackend = (backend: Backend, options: PoolOptions): Effect.Effect<Workpool["Type"], InvalidOptions> =>
  Effect.map(Either.mapLeft(decodePoolOptions(options), invalidOptions), ({ maxConcurrency, name, pull }) => {
    const found = <A extends { readonly _tag: string }>(
      result: A
    ): Effect.Effect<Exclude<A, { readonly _tag: "PoolNotFound" }>, PoolNotFound> =>
      result._tag === "PoolNotFound"
        ? new PoolNotFound({ pool: name })
        : Effect.succeed(result as Exclude<A, { readonly _tag: "PoolNotFound" }>)
    let declared = false
    const declare = Effect.suspend(() =>
      declared ? Effect.void : backend.definePool(name, maxConcurrency, pull).pipe(
        Effect.flatMap(found),
        Effect.zipRight(Effect.sync(() => {
          declared = true
        }))
      )
    )
    const update = (change: PoolEngine.PoolChange) =>
      declare.pipe(Effect.zipRight(backend.updatePool(name, change)), Effect.flatMap(found), Effect.asVoid)

    const enqueueMany = Effect.fn("Workpool.enqueueMany")(function*(items: ReadonlyArray<Enqueue>) {
      const now = yield* backend.now
      const jobs = yield* prepareAll(
        items.map((item): Submission => ({ job: item.job, payload: item.payload, options: item.options })),
        now,
        name
      )
      yield* declare
      const { results } = yield* Effect.flatMap(backend.enqueue(name, jobs), found)
      return results.map(toScheduled)
    }, Effect.annotateLogs({ pool: name }))

    return Workpool.of({
      name,
      enqueue: (job, payload, options) =>
        Effect.map(enqueueMany([{ job, payload, options }]), (scheduled) => scheduled[0]!).pipe(
          Effect.withSpan("Workpool.enqueue", { attributes: { pool: name } })
        ),
      enqueueMany,
      status: Effect.gen(function*() {
        yield* declare
        const status = yield* backend.poolStatus(name)
        if (status === undefined) return yield* new PoolNotFound({ pool: name })
        const now = yield* backend.now
        const oldest = Option.fromNullable(status.oldestQueuedAt)
        return new PoolStatus({
          ...status,
          oldestQueuedAt: Option.map(oldest, DateTime.unsafeMake),
          oldestQueuedAge: Option.map(oldest, (at) => Duration.millis(Math.max(0, now - at)))
        }, true)
      }).pipe(Effect.withSpan("Workpool.status", { attributes: { pool: name } })),
      cancel: (id) =>
        declare.pipe(
          Effect.zipRight(backend.cancel(id, name)),
          Effect.flatMap((result) => toCancelResult(id, result)),
          Effect.withSpan("Workpool.cancel", { attributes: { pool: name, jobId: id } })
        ),
      cancelQueued: Effect.gen(function*() {
        yield* declare
        let total = 0
        while (true) {
          const { canceled, more } = yield* Effect.flatMap(backend.cancelQueued(name, CANCEL_BATCH), found)
          total += canceled
          if (!more || canceled === 0) return total
        }
      }).pipe(Effect.withSpan("Workpool.cancelQueued", { attributes: { pool: name } })),
      pause: update({ paused: true }).pipe(Effect.withSpan("Workpool.pause", { attributes: { pool: name } })),
      resume: update({ paused: false }).pipe(Effect.withSpan("Workpool.resume", { attributes: { pool: name } })),
      setMaxConcurrency: (maxConcurrency) =>
        Either.mapLeft(decodeMaxConcurrency(maxConcurrency), invalidOptions).pipe(
          Effect.flatMap((cap) => update({ maxConcurrency: cap })),
          Effect.withSpan("Workpool.setMaxConcurrency", { attributes: { pool: name, maxConcurrency } })
        ),
      get: (id) =>
        declare.pipe(
          Effect.zipRight(backend.get(id)),
          Effect.flatMap((job) =>
            job === undefined || job.pool !== name ? new JobNotFound({ jobId: id }) : Effect.succeed(toInfo(job))
          ),
          Effect.withSpan("Workpool.get", { attributes: { pool: name, jobId: id } })
        )
    })
  })

/**
 * A pool on the scheduler engine in context: with `Scheduler.layerMemory`
 * (or `@lunora/scheduler/testing`), the pool runs in memory on Effect's
 * `Clock`, beside the scheduled jobs.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeFromEngine = (
  options: PoolOptions
): Effect.Effect<Workpool["Type"], InvalidOptions, SchedulerEngine> =>
  Effect.flatMap(SchedulerEngine, (backend) => fromBackend(backend, options))

/**
 * The live pool: every call goes to the `SchedulerDO` instance named
 * `instanceName`, which holds the pool and dispatches its jobs.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: LiveOptions & PoolOptions): Effect.Effect<Workpool["Type"], InvalidOptions> =>
  Effect.flatMap(makeRemote(options), (backend) => fromBackend(backend, options))

/**
 * The live pool as a layer. For several pools, give each its own tag:
 * `Layer.effect(EmailPool, Workpool.make({ ..., name: "email", maxConcurrency: 5 }))`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: LiveOptions & PoolOptions): Layer.Layer<Workpool, InvalidOptions> =>
  Layer.effect(Workpool, make(options))

/**
 * The live pool with its options read from `Config`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<LiveOptions & PoolOptions>
): Layer.Layer<Workpool, InvalidOptions | ConfigError.ConfigError> =>
  Layer.effect(Workpool, Effect.flatMap(Config.unwrap<LiveOptions & PoolOptions>(options), make))

/**
 * The pool in memory, over the engine of `Scheduler.layerMemory`:
 * `Workpool.layerMemory({ name: "email", maxConcurrency: 2 }).pipe(Layer.provideMerge(TestScheduler.layer()))`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options: PoolOptions): Layer.Layer<Workpool, InvalidOptions, SchedulerEngine> =>
  Layer.effect(Workpool, makeFromEngine(options))
