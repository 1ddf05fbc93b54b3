/**
 * Job definitions: typed references to functions the scheduler runs later,
 * and the data the scheduler keeps about each job.
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type { Pipeable } from "effect/Pipeable"
import { pipeArguments } from "effect/Pipeable"
import type { JobContext } from "./internal/domain/job.js"
import { type Any, FUNCTION_PATH_PATTERN, JobId, type Ref, TypeId } from "./internal/domain/job.js"
import { type Handler, type JobRegistry, register } from "./internal/domain/registry.js"

export {
  /**
   * A job's identifier: `job_<shard>_<unique part>`. The shard part (base 36)
   * names the scheduler shard that holds the job, so `get` and `cancel` can go
   * straight to it.
   *
   * @since 0.1.0
   * @category models
   */
  JobId,
  /**
   * @since 0.1.0
   * @category guards
   */
  isJob,
  /**
   * The function path of a reference.
   *
   * @since 0.1.0
   * @category accessors
   */
  pathOf,
  /**
   * @since 0.1.0
   * @category type ids
   */
  TypeId
} from "./internal/domain/job.js"

export type {
  /**
   * @since 0.1.0
   * @category models
   */
  Any,
  /**
   * What a handler is told about the run it is part of. `id` and `attempt`
   * together let a handler be idempotent under at-least-once delivery.
   *
   * @since 0.1.0
   * @category models
   */
  JobContext,
  /**
   * What the scheduling methods accept: a `Job` made with {@link make}, or a
   * plain `"namespace:function"` path (untyped JSON payload).
   *
   * @since 0.1.0
   * @category models
   */
  Ref
} from "./internal/domain/job.js"

/**
 * The life of a job: `pending` → `inProgress` → `success` | `failed` |
 * `deadLettered`, or `pending` → `canceled`. A failed attempt with attempts
 * left goes back to `pending` at its next retry time.
 *
 * @since 0.1.0
 * @category models
 */
export const JobState = Schema.Literal("pending", "inProgress", "success", "failed", "canceled", "deadLettered")

/**
 * @since 0.1.0
 * @category models
 */
export type JobState = typeof JobState.Type

/**
 * States from which a job never moves again on its own.
 *
 * @since 0.1.0
 * @category models
 */
export const isTerminal = (state: JobState): boolean => state !== "pending" && state !== "inProgress"

/**
 * A job's function path, `"namespace:function"` (letters, digits, `_`, `-`,
 * `.` and `/` in each part).
 *
 * @since 0.1.0
 * @category models
 */
export const FunctionPath = Schema.String.pipe(
  Schema.pattern(FUNCTION_PATH_PATTERN)
).annotations({ identifier: "FunctionPath", description: "a function path such as \"email:sendReminder\"" })

/**
 * Everything the scheduler knows about one job.
 *
 * @since 0.1.0
 * @category models
 */
export class JobInfo extends Schema.Class<JobInfo>("@lunora/scheduler/JobInfo")({
  id: JobId,
  functionPath: Schema.String,
  /** The payload in its encoded (JSON) form. */
  args: Schema.Unknown,
  state: JobState,
  /** When the current (or last) attempt was due. */
  scheduledFor: Schema.DateTimeUtc,
  createdAt: Schema.DateTimeUtc,
  startedAt: Schema.OptionFromNullOr(Schema.DateTimeUtc),
  completedAt: Schema.OptionFromNullOr(Schema.DateTimeUtc),
  /** Attempts started so far. */
  attempt: Schema.Int,
  maxAttempts: Schema.Int,
  key: Schema.OptionFromNullOr(Schema.String),
  shardKey: Schema.OptionFromNullOr(Schema.String),
  /** The workpool the job belongs to; none for a scheduled job. */
  pool: Schema.OptionFromNullOr(Schema.String),
  /** The job whose handler scheduled this one; canceling it cancels this one while it is pending. */
  parentId: Schema.OptionFromNullOr(JobId),
  lastError: Schema.OptionFromNullOr(Schema.String),
  /** The handler's result, encoded with the job's `success` Schema. */
  result: Schema.Option(Schema.Unknown)
}) {}

/**
 * A typed reference to a function the scheduler can run later.
 *
 * @since 0.1.0
 * @category models
 */
export interface Job<
  Path extends string,
  Payload extends Schema.Schema.AnyNoContext,
  Success extends Schema.Schema.AnyNoContext
> extends Pipeable {
  readonly [TypeId]: TypeId
  readonly path: Path
  readonly payloadSchema: Payload
  readonly successSchema: Success
  /**
   * Registers the Effect that runs this job. The layer needs the
   * `JobRegistry` (the scheduler's layers provide it) and whatever the
   * handler needs, captured when the layer is built.
   */
  readonly toLayer: <R>(
    handler: (payload: Payload["Type"], context: JobContext) => Effect.Effect<Success["Type"], unknown, R>
  ) => Layer.Layer<never, never, JobRegistry | R>
}

/**
 * The payload type a reference takes.
 *
 * @since 0.1.0
 * @category models
 */
export type Payload<R extends Ref> = R extends { readonly [TypeId]: TypeId; readonly payloadSchema: infer P }
  ? P extends Schema.Schema.AnyNoContext ? Schema.Schema.Type<P> : never
  : unknown

const Proto = {
  [TypeId]: TypeId,
  pipe() {
    return pipeArguments(this, arguments)
  },
  toLayer(this: Any, handler: Handler) {
    return Layer.effectDiscard(register(this, handler))
  }
}

/**
 * Defines a job: a function path and the Schema of its payload (and,
 * optionally, of its result).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Job } from "@lunora/scheduler"
 *
 * export const SendReminder = Job.make("email:sendReminder", {
 *   payload: Schema.Struct({ userId: Schema.String })
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <
  const Path extends string,
  Payload extends Schema.Schema.AnyNoContext,
  Success extends Schema.Schema.AnyNoContext = typeof Schema.Void
>(
  path: Path,
  options: { readonly payload: Payload; readonly success?: Success }
): Job<Path, Payload, Success> => {
  if (!Schema.is(FunctionPath)(path)) {
    throw new TypeError(`Job.make: "${path}" is not a function path of the form "namespace:function"`)
  }
  const job = Object.create(Proto)
  job.path = path
  job.payloadSchema = options.payload
  job.successSchema = options.success ?? Schema.Void
  return job
}
