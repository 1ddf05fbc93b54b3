/**
 * The job model the registry and the payload rules need, below the public
 * `Job` module (which re-exports it): ids, references, the handler's context.
 */
import * as DateTime from "effect/DateTime"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { Pipeable } from "effect/Pipeable"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("@lunora/scheduler/Job")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * A job's identifier: `job_<shard>_<unique part>`. The shard part (base 36)
 * names the scheduler shard that holds the job, so `get` and `cancel` can go
 * straight to it.
 *
 * @since 0.1.0
 * @category models
 */
/** What a function path looks like: `namespace:function`, each part 1 to 100 letters, digits, `_`, `-`, `.` or `/`. */
export const FUNCTION_PATH_PATTERN = /^[A-Za-z0-9_./-]{1,100}:[A-Za-z0-9_./-]{1,100}$/

/** What a job id looks like: `job_<shard>_<time><random>`, in base 36. */
export const JOB_ID_PATTERN = /^job_[0-9a-z]{1,8}_[0-9a-z]{8,40}$/

export const JobId = Schema.String.pipe(
  Schema.pattern(JOB_ID_PATTERN),
  Schema.brand("@lunora/scheduler/JobId")
).annotations({ identifier: "JobId", description: "a job id such as job_0_lq2x8c1f9d3k0a7b2c" })

/**
 * @since 0.1.0
 * @category models
 */
export type JobId = typeof JobId.Type

/**
 * What a handler is told about the run it is part of. `id` and `attempt`
 * together let a handler be idempotent under at-least-once delivery.
 *
 * @since 0.1.0
 * @category models
 */
export interface JobContext {
  readonly id: JobId
  readonly functionPath: string
  readonly attempt: number
  readonly scheduledFor: DateTime.Utc
  /** The routing hint the job was scheduled with, if any. */
  readonly shardKey: Option.Option<string>
  /** The job's dedupe key, if any; a cron's fire has `cron:<name>:<scheduled epoch ms>`. */
  readonly key: Option.Option<string>
  /** The workpool the job runs in, if any: work it enqueues into that pool counts against the pool's cap. */
  readonly pool: Option.Option<string>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Any extends Pipeable {
  readonly [TypeId]: TypeId
  readonly path: string
  readonly payloadSchema: Schema.Schema.AnyNoContext
  readonly successSchema: Schema.Schema.AnyNoContext
  /** Set on a webhook reference (`Webhook.make`): the job is delivered to a URL, not to a handler of the app. */
  readonly webhook?: {
    readonly url: string | undefined
    readonly method: "POST" | "PUT" | "PATCH" | "DELETE"
    readonly headers: Readonly<Record<string, string>>
  } | undefined
  /** Set on a workflow reference (`Workflow.target`): an attempt creates an instance of the Workflow bound as `binding`. */
  readonly workflow?: { readonly binding: string } | undefined
}

/**
 * What the scheduling methods accept: a `Job` made with {@link make}, or a
 * plain `"namespace:function"` path (untyped JSON payload).
 *
 * @since 0.1.0
 * @category models
 */
export type Ref = Any | string

/**
 * @since 0.1.0
 * @category guards
 */
export const isJob = (u: unknown): u is Any => typeof u === "object" && u !== null && TypeId in u

/**
 * The function path of a reference.
 *
 * @since 0.1.0
 * @category accessors
 */
export const pathOf = (ref: Ref): string => (typeof ref === "string" ? ref : ref.path)

/** The one mapping from a job as stored or sent to what its handler is told. */
export const contextOf = (job: {
  readonly id: string
  readonly functionPath: string
  readonly attempt: number
  readonly scheduledFor: number
  readonly shardKey: string | null
  readonly key: string | null
  readonly pool: string | null
}): JobContext => ({
  id: job.id as JobId,
  functionPath: job.functionPath,
  attempt: job.attempt,
  scheduledFor: DateTime.unsafeMake(job.scheduledFor),
  shardKey: Option.fromNullable(job.shardKey),
  key: Option.fromNullable(job.key),
  pool: Option.fromNullable(job.pool)
})
