/**
 * The `Scheduler` service: run a job after a delay or at a time, cancel it,
 * look it up, and handle its dead letter.
 *
 * @since 0.1.0
 */
import type * as ConfigError from "effect/ConfigError"
import type * as Duration from "effect/Duration"
import type * as Scope from "effect/Scope"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { type Backend, SchedulerEngine } from "./internal/services/backend.js"
import { invalidOptions } from "./internal/domain/failure.js"
import { toInfo } from "./internal/engine/engine.js"
import { makeBackend, type MemoryOptions } from "./internal/services/memory.js"
import { type LiveOptions, makeRemote } from "./internal/services/remote.js"
import {
  CancelResult,
  prepareAll,
  type RunOptions,
  Scheduled,
  type ScheduleError,
  type Submission,
  toCancelResult,
  toScheduled
} from "./internal/engine/submission.js"
import * as CronRegistry from "./CronRegistry.js"
import * as Job from "./Job.js"
import * as JobRegistry from "./JobRegistry.js"
import * as JobStore from "./internal/engine/store.js"
import {
  InvalidOptions,
  JobDeadLettered,
  JobNotFound,
  JobNotReplayable,
  JobNotSucceeded,
  type SchedulerUnavailable
} from "./SchedulerError.js"

/**
 * Options of `runAfter`, `runAt` and `submit`: `key` (dedupe while live),
 * `shardKey`, `retry` (a `Schedule` or the data form) and `deadLetter`.
 *
 * @since 0.1.0
 * @category models
 */
export type { RunOptions }

/**
 * What a submission asks for: a job, its payload, and when it should run
 * (`after` a delay or `at` a time; neither means now).
 *
 * @since 0.1.0
 * @category models
 */
export type { Submission }

/**
 * The errors a scheduling call can refuse with; nothing is stored then.
 *
 * @since 0.1.0
 * @category models
 */
export type { ScheduleError }

export {
  /**
   * The outcome of `cancel`: `Canceled` (it will not run), `TooLate` (it is
   * running and will finish, without a retry; what it schedules until then
   * is canceled), or `AlreadyFinished` (with its final state). `Canceled`
   * and `TooLate` carry `children`: how many pending jobs its handler had
   * scheduled (and theirs) were canceled with it.
   *
   * @since 0.1.0
   * @category models
   */
  CancelResult,
  /**
   * The outcome of scheduling: a new job, or (with a `key`) the live job that
   * already held the key.
   *
   * @since 0.1.0
   * @category models
   */
  Scheduled
}

/**
 * A filter and page of `list`. `limit` is 1 to 1000 (default 100); pass the
 * `cursor` of one page to get the next. A cursor carries its page's filter:
 * `list({ cursor })` goes on with the same `state` and `functionPath`, and a
 * cursor given with a different filter is refused (`InvalidOptions`).
 *
 * @since 0.1.0
 * @category models
 */
export const ListQuery = Schema.Struct({
  state: Schema.optional(Job.JobState),
  functionPath: Schema.optional(Schema.String),
  limit: Schema.optional(Schema.Int.pipe(Schema.between(1, 1000))),
  cursor: Schema.optional(Schema.String.pipe(Schema.maxLength(1024)))
})

/**
 * @since 0.1.0
 * @category models
 */
export type ListQuery = typeof ListQuery.Type

/**
 * One page of jobs, in the order they were scheduled (over several shards:
 * to the millisecond, jobs of the same millisecond in shard order).
 *
 * @since 0.1.0
 * @category models
 */
export class JobPage extends Schema.Class<JobPage>("@lunora/scheduler/JobPage")({
  jobs: Schema.Array(Job.JobInfo),
  cursor: Schema.OptionFromNullOr(Schema.String)
}) {}

/**
 * Which dead letters `purge` deletes: the given ids, or up to `limit`
 * (1 to 1000, default 1000) of them, of one function if named.
 *
 * @since 0.1.0
 * @category models
 */
export const PurgeQuery = Schema.Struct({
  ids: Schema.optional(Schema.Array(Schema.String).pipe(Schema.maxItems(1000))),
  functionPath: Schema.optional(Schema.String),
  limit: Schema.optional(Schema.Int.pipe(Schema.between(1, 1000)))
})

/**
 * @since 0.1.0
 * @category models
 */
export type PurgeQuery = typeof PurgeQuery.Type

/**
 * The payload and options of `runAfter` and `runAt`. The payload may be left
 * out for a job whose payload can be `{}` (an empty Struct, optional fields
 * only, or a function path given as text); it is then `{}`.
 *
 * @since 0.1.0
 * @category models
 */
export type RunArgs<R extends Job.Ref, Options = RunOptions> = {} extends Job.Payload<R>
  ? [payload?: Job.Payload<R>, options?: Options]
  : [payload: Job.Payload<R>, options?: Options]

/**
 * @since 0.1.0
 * @category tags
 */
export class Scheduler extends Context.Tag("@lunora/scheduler/Scheduler")<Scheduler, {
  /** Runs `job` once `delay` has passed; `0` hands it off to run as soon as possible. */
  readonly runAfter: <R extends Job.Ref>(
    delay: Duration.DurationInput,
    job: R,
    ...args: RunArgs<R>
  ) => Effect.Effect<Job.JobId, ScheduleError>
  /** Runs `job` at a time; a time in the past runs as soon as possible. */
  readonly runAt: <R extends Job.Ref>(
    at: DateTime.DateTime | Date | number,
    job: R,
    ...args: RunArgs<R>
  ) => Effect.Effect<Job.JobId, ScheduleError>
  /**
   * Schedules many jobs atomically: all are stored, or (on any refusal) none.
   * Over several `shards`, atomic per shard: a partial outcome fails with
   * `SubmitIncomplete`, saying which were stored.
   */
  readonly submit: (submissions: ReadonlyArray<Submission>) => Effect.Effect<ReadonlyArray<Scheduled>, ScheduleError>
  readonly cancel: (id: string) => Effect.Effect<CancelResult, JobNotFound | SchedulerUnavailable>
  readonly get: (id: string) => Effect.Effect<Job.JobInfo, JobNotFound | SchedulerUnavailable>
  readonly list: (query?: ListQuery) => Effect.Effect<JobPage, InvalidOptions | SchedulerUnavailable>
  /** Waits until the job has finished: its info on success, else why it did not succeed. */
  readonly await: (
    id: string
  ) => Effect.Effect<Job.JobInfo, JobNotFound | JobDeadLettered | JobNotSucceeded | SchedulerUnavailable>
  /** Runs a dead-lettered (or failed) job again from its first attempt, now. */
  readonly replay: (id: string) => Effect.Effect<Job.JobInfo, JobNotFound | JobNotReplayable | SchedulerUnavailable>
  /** Deletes dead letters; returns how many. */
  readonly purge: (query?: PurgeQuery) => Effect.Effect<number, InvalidOptions | SchedulerUnavailable>
}>() {}

const decodeListQuery = Schema.decodeUnknownEither(ListQuery)

/** The spans of the scheduling calls capture no stack trace: each call would pay for one. */
const SPAN = { captureStackTrace: false } as const
const decodePurgeQuery = Schema.decodeUnknownEither(PurgeQuery)

/**
 * What a `list` cursor carries: where the next page starts (the last `seq`
 * listed; over several shards, one per shard, `-1` where a shard has no
 * more), and the filter of the pages.
 */
const Filter = [Schema.NullOr(Job.JobState), Schema.NullOr(Schema.String)] as const
const ListCursor = Schema.compose(
  Schema.StringFromBase64Url,
  Schema.parseJson(Schema.Union(
    Schema.Tuple(Schema.Literal(1), Schema.NonNegativeInt, ...Filter),
    Schema.Tuple(Schema.Literal(2), Schema.Array(Schema.Int.pipe(Schema.greaterThanOrEqualTo(-1))), ...Filter)
  ))
)
const encodeCursor = Schema.encodeSync(ListCursor)
const decodeCursor = Schema.decodeUnknownEither(ListCursor)

/** The cursor of the page after one ending at `next`: over one shard, the form cursors had before shards. */
const cursorOf = (next: ReadonlyArray<number>, query: Parameters<Backend["list"]>[0]) =>
  encodeCursor(
    next.length === 1
      ? [1, next[0]!, query.state ?? null, query.functionPath ?? null]
      : [2, next, query.state ?? null, query.functionPath ?? null]
  )

/** The query a page is read with: the call's filter, or the cursor's, which must agree. */
const resolveListQuery = (
  query: ListQuery,
  shardCount: number
): Either.Either<Parameters<Backend["list"]>[0], InvalidOptions> => {
  const limit = query.limit ?? 100
  if (query.cursor === undefined) return Either.right({ state: query.state, functionPath: query.functionPath, limit })
  return Either.flatMap(
    Either.mapLeft(decodeCursor(query.cursor), () => new InvalidOptions({ reason: "cursor is not a cursor of a list page" })),
    ([version, position, state, functionPath]) => {
      const after = version === 1 ? [position] : position
      if (after.length !== shardCount) {
        return Either.left(
          new InvalidOptions({ reason: `cursor belongs to a list over ${after.length} shards, not ${shardCount}` })
        )
      }
      if (query.state !== undefined && query.state !== state) {
        return Either.left(new InvalidOptions({ reason: `cursor belongs to a list with state ${state ?? "(any)"}, not ${query.state}` }))
      }
      if (query.functionPath !== undefined && query.functionPath !== functionPath) {
        return Either.left(
          new InvalidOptions({ reason: `cursor belongs to a list with functionPath ${functionPath ?? "(any)"}, not ${query.functionPath}` })
        )
      }
      return Either.right({ state: state ?? undefined, functionPath: functionPath ?? undefined, after, limit })
    }
  )
}

/**
 * Builds the service over a backend: validation and the mapping of engine
 * results to typed outcomes live here, once, for every runtime.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromBackend = (backend: Backend): Scheduler["Type"] => {
  const scheduleAll = (submissions: ReadonlyArray<Submission>) =>
    backend.now.pipe(
      Effect.flatMap((now) => prepareAll(submissions, now)),
      Effect.flatMap(backend.schedule),
      Effect.map((results) => results.map(toScheduled))
    )
  const submit = (submissions: ReadonlyArray<Submission>) =>
    scheduleAll(submissions).pipe(Effect.withSpan("Scheduler.submit", SPAN))

  // under the span of runAfter or runAt alone
  const submitOne = (submission: Submission) =>
    Effect.map(scheduleAll([submission]), (scheduled) => scheduled[0]!.id).pipe(
      Effect.annotateLogs({ functionPath: Job.pathOf(submission.job) })
    )

  const get = Effect.fn("Scheduler.get")(function*(id: string) {
    const job = yield* backend.get(id)
    if (job === undefined) return yield* new JobNotFound({ jobId: id })
    return toInfo(job)
  })

  return Scheduler.of({
    runAfter: (delay, job, ...[payload = {}, options]: RunArgs<Job.Ref>) =>
      submitOne({ job, payload, after: delay, options }).pipe(Effect.withSpan("Scheduler.runAfter", SPAN)),
    runAt: (at, job, ...[payload = {}, options]: RunArgs<Job.Ref>) =>
      submitOne({ job, payload, at, options }).pipe(Effect.withSpan("Scheduler.runAt", SPAN)),
    submit,
    cancel: Effect.fn("Scheduler.cancel")(function*(id: string) {
      return yield* toCancelResult(id, yield* backend.cancel(id))
    }),
    get,
    list: Effect.fn("Scheduler.list")(function*(query: ListQuery = {}) {
      const resolved = yield* resolveListQuery(
        yield* Either.mapLeft(decodeListQuery(query), invalidOptions),
        backend.shardCount
      )
      const page = yield* backend.list(resolved)
      return new JobPage({
        jobs: page.jobs.map(toInfo),
        cursor: page.next === null ? Option.none() : Option.some(cursorOf(page.next, resolved))
      })
    }),
    await: Effect.fn("Scheduler.await")(function*(id: string) {
      const job = yield* backend.awaitFinished(id)
      if (job === undefined) return yield* new JobNotFound({ jobId: id })
      switch (job.state) {
        case "deadLettered":
          return yield* new JobDeadLettered({
            jobId: job.id,
            functionPath: job.functionPath,
            attempt: job.attempt,
            lastError: job.lastError ?? "unknown"
          })
        case "failed":
        case "canceled":
          return yield* new JobNotSucceeded({ jobId: job.id, state: job.state, lastError: job.lastError })
        default:
          return toInfo(job)
      }
    }),
    replay: Effect.fn("Scheduler.replay")(function*(id: string) {
      const result = yield* backend.replay(id)
      if (result._tag === "NotFound") return yield* new JobNotFound({ jobId: id })
      if (result._tag === "NotReplayable") return yield* new JobNotReplayable({ jobId: id, reason: result.reason })
      return toInfo(result.job)
    }),
    purge: Effect.fn("Scheduler.purge")(function*(query: PurgeQuery = {}) {
      const { functionPath, ids, limit } = yield* Either.mapLeft(decodePurgeQuery(query), invalidOptions)
      return yield* backend.purge({ ids, functionPath, limit: limit ?? 1000 })
    })
  })
}

/**
 * Options of the in-memory scheduler.
 *
 * @since 0.1.0
 * @category models
 */
export type { MemoryOptions }

/**
 * The scheduler in this process: the engine over a store in memory, running due
 * jobs through the `JobRegistry` on a loop driven by Effect's `Clock`. With
 * `TestClock`, `TestClock.adjust` runs every job due by then.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory = (
  options?: MemoryOptions
): Effect.Effect<Scheduler["Type"], never, JobRegistry.JobRegistry | Scope.Scope> =>
  Effect.map(makeBackend(options), fromBackend).pipe(Effect.provideService(JobStore.JobStore, JobStore.makeMemory()))

/**
 * What the services run on: the engine in this process or behind a
 * `SchedulerDO`. The in-memory and live layers build it; `fromBackend`
 * builds a service over one.
 *
 * @since 0.1.0
 * @category models
 */
export type { Backend }

export {
  /**
   * The engine one scheduler runs on, shared by the services over it. The
   * in-memory layer provides it, so `Workpool.layerMemory` runs its pool on the
   * same engine, store and clock as the `Scheduler`.
   *
   * @since 0.1.0
   * @category tags
   */
  SchedulerEngine
}

/**
 * The in-memory scheduler with its own store and registry, and the
 * `CronRegistry` over the same engine (with `options.crons` reconciled): for
 * tests (with `TestClock`) and local runs. Add handlers with `Job.toLayer`,
 * and workpools with `Workpool.layerMemory`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (
  options?: MemoryOptions
): Layer.Layer<Scheduler | CronRegistry.CronRegistry | JobRegistry.JobRegistry | SchedulerEngine> =>
  Layer.scopedContext(Effect.gen(function*() {
    const backend = yield* makeBackend(options)
    const crons = CronRegistry.fromBackend(backend)
    if (options?.crons !== undefined) yield* Effect.orDie(crons.reconcile(options.crons))
    return Context.make(Scheduler, fromBackend(backend)).pipe(
      Context.add(CronRegistry.CronRegistry, crons),
      Context.add(SchedulerEngine, backend)
    )
  })).pipe(Layer.provideMerge(Layer.merge(JobStore.layerMemory, JobRegistry.layer)))

/**
 * Options of the live scheduler: the `SchedulerDO` namespace binding, where
 * its Durable Object sends due jobs (`originUrl` over HTTP, or the name of a
 * service binding of the Worker, such as a binding to itself), and the
 * instance (tenant) to use.
 *
 * @since 0.1.0
 * @category models
 */
export type { LiveOptions }

/**
 * The live scheduler: every call goes to the `SchedulerDO` instance named
 * `instanceName`, which stores the job and dispatches it when due.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: LiveOptions): Effect.Effect<Scheduler["Type"], InvalidOptions> =>
  Effect.map(makeRemote(options), fromBackend)

/**
 * The live scheduler as a layer. Provide it in a Worker and re-export
 * `SchedulerDO` from `@lunora/scheduler/cloudflare`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: LiveOptions): Layer.Layer<Scheduler, InvalidOptions> =>
  Layer.effect(Scheduler, make(options))

/**
 * The live scheduler with its options read from `Config`, for instance
 * `{ namespace: env.SCHEDULER, originUrl: Config.string("APP_ORIGIN") }`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<LiveOptions>
): Layer.Layer<Scheduler, InvalidOptions | ConfigError.ConfigError> =>
  Layer.effect(Scheduler, Effect.flatMap(Config.unwrap<LiveOptions>(options), make))
