/**
 * Turning a request to run a job into the engine's `NewJob`: the time, the
 * function path, the payload encoded with the job's Schema, the options and
 * the retry plan, each checked; and the job's id. Shared by every service that
 * schedules (`Scheduler`, `Workpool`, the Queues-backed pool).
 */
import type * as Duration from "effect/Duration"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import * as Either from "effect/Either"
import * as Random from "effect/Random"
import * as Schema from "effect/Schema"
import * as Job from "../../Job.js"
import * as Retry from "../../Retry.js"
import {
  InvalidOptions,
  JobNotFound,
  type InvalidPayload,
  type InvalidTime,
  type SchedulerUnavailable,
  type SubmitIncomplete
} from "../../SchedulerError.js"
import type * as Engine from "./engine.js"
import { invalidOptions } from "../domain/failure.js"
import { OptionText } from "../domain/names.js"
import { encodePayload } from "../domain/payload.js"
import { type Callback, checkTarget, type OwnTarget } from "../domain/targets.js"
import { delayMillis, instantMillis } from "../domain/time.js"
import { CurrentJob } from "../domain/registry.js"

export interface RunOptions {
  /** Dedupe: while a job with this key is pending or running, scheduling the key again returns that job. */
  readonly key?: string | undefined
  /**
   * Places the job, with every job of the same `shardKey`, on one shard of a
   * sharded scheduler (`shards`); stored and delivered with the job.
   */
  readonly shardKey?: string | undefined
  /** The retry policy: a `Schedule` or the data form. Default: 5 attempts, exponential from 30 s. */
  readonly retry?: Retry.Retry | undefined
  /** Whether exhaustion parks the job as `deadLettered` (default) or ends it `failed`. */
  readonly deadLetter?: boolean | undefined
  /**
   * For a webhook job (`Webhook.make`) only: this run's URL, method or
   * headers, over the definition's (its headers merged with these).
   */
  readonly webhook?: Partial<Callback> | undefined
}

export interface Submission<R extends Job.Ref = Job.Ref> {
  readonly job: R
  readonly payload: Job.Payload<R>
  readonly after?: Duration.DurationInput | undefined
  readonly at?: DateTime.DateTime | Date | number | undefined
  readonly options?: RunOptions | undefined
}

export type ScheduleError = InvalidTime | InvalidPayload | InvalidOptions | SchedulerUnavailable | SubmitIncomplete


const RunOptionsSchema = Schema.Struct({
  key: Schema.optional(OptionText),
  shardKey: Schema.optional(OptionText),
  retry: Schema.optional(Schema.Unknown),
  deadLetter: Schema.optional(Schema.Boolean),
  webhook: Schema.optional(Schema.Unknown)
})

const decodeRunOptions = Schema.decodeUnknownEither(RunOptionsSchema)
const isFunctionPath = Schema.is(Job.FunctionPath)

const jobIdSuffix = Effect.gen(function*() {
  let suffix = ""
  for (let i = 0; i < 3; i++) suffix += (yield* Random.nextIntBetween(0, 36 ** 6)).toString(36).padStart(6, "0")
  return suffix
})

/** `job_<shard>_<time><random>`: unique, and sortable by creation time within a shard. */
export const makeJobId = (now: number, shard: number): Effect.Effect<string> =>
  Effect.map(jobIdSuffix, (suffix) => `job_${shard.toString(36)}_${now.toString(36).padStart(9, "0")}${suffix}`)

/**
 * A submission's own target: a workflow's binding, or a webhook's target
 * (its definition's, with the run's URL, method and headers over it).
 */
const ownTarget = (job: Job.Ref, run: Partial<Callback> | undefined): Effect.Effect<OwnTarget | null, InvalidOptions> => {
  const definition = typeof job === "string" ? undefined : job.webhook
  if (definition === undefined) {
    if (run !== undefined) {
      return Effect.fail(new InvalidOptions({ reason: "the webhook option is for webhook jobs (Webhook.make) only" }))
    }
    const workflow = typeof job === "string" ? undefined : job.workflow
    return Effect.succeed(workflow === undefined ? null : { workflow })
  }
  const url = run?.url ?? definition.url
  if (url === undefined) {
    return Effect.fail(new InvalidOptions({ reason: `the webhook ${Job.pathOf(job)} has no URL: give one with { webhook: { url } }` }))
  }
  return Either.match(
    checkTarget({
      url,
      method: run?.method ?? definition.method,
      headers: { ...definition.headers, ...run?.headers }
    }),
    {
      onLeft: (reason) => Effect.fail(new InvalidOptions({ reason: `webhook: ${reason}` })),
      onRight: (webhook) => Effect.succeed({ webhook })
    }
  )
}

/** Checks a submission and builds the job the engine stores; `pool` names the workpool it joins, if any. */
export const prepare = (
  submission: Submission,
  now: number,
  pool: string | null = null
): Effect.Effect<Engine.NewJob, ScheduleError> =>
  Effect.gen(function*() {
    const runAt = submission.at !== undefined
      ? yield* instantMillis(submission.at, now)
      : yield* delayMillis(submission.after ?? 0, now)
    const functionPath = Job.pathOf(submission.job)
    if (!isFunctionPath(functionPath)) {
      return yield* new InvalidOptions({ reason: `"${functionPath}" is not a function path of the form "namespace:function"` })
    }
    const args = yield* encodePayload(submission.job, submission.payload)
    const options = yield* Either.mapLeft(decodeRunOptions(submission.options ?? {}), invalidOptions)
    const plan = yield* Retry.resolve(submission.options?.retry, runAt)
    const own = yield* ownTarget(submission.job, submission.options?.webhook)
    const parent = yield* FiberRef.get(CurrentJob)
    return {
      id: yield* makeJobId(now, 0),
      functionPath,
      args,
      runAt,
      retryDelaysMs: plan.delaysMs,
      deadLetter: options.deadLetter ?? true,
      key: options.key ?? null,
      shardKey: options.shardKey ?? null,
      pool,
      parentId: Option.getOrNull(parent),
      ...(own === null ? {} : { own })
    }
  })

export class Scheduled extends Schema.Class<Scheduled>("@lunora/scheduler/Scheduled")({
  _tag: Schema.Literal("Created", "Existing"),
  id: Job.JobId,
  scheduledFor: Schema.DateTimeUtc
}) {}

/** `children`: the pending jobs its handler scheduled (and theirs), canceled with it. */
const Children = Schema.NonNegativeInt

export const CancelResult = Schema.Union(
  Schema.TaggedStruct("Canceled", { id: Job.JobId, children: Children }),
  Schema.TaggedStruct("TooLate", { id: Job.JobId, state: Schema.Literal("inProgress"), children: Children }),
  Schema.TaggedStruct("AlreadyFinished", { id: Job.JobId, state: Job.JobState })
)
export type CancelResult = typeof CancelResult.Type

/** Built from the engine's own records, so the constructor's validation is skipped. */
export const toScheduled = (result: Engine.ScheduleResult): Scheduled =>
  new Scheduled({
    _tag: result._tag,
    id: result.job.id as Job.JobId,
    scheduledFor: DateTime.unsafeMake(result.job.scheduledFor)
  }, true)

/** The engine's answer to a cancel, as the typed outcome (`JobNotFound` when there is no such job). */
export const toCancelResult = (id: string, result: Engine.CancelResult): Effect.Effect<CancelResult, JobNotFound> => {
  if (result._tag === "NotFound") return new JobNotFound({ jobId: id })
  const jobId = result.job.id as Job.JobId
  return Effect.succeed(
    result._tag === "Canceled"
      ? CancelResult.members[0].make({ id: jobId, children: result.children })
      : result._tag === "TooLate"
      ? CancelResult.members[1].make({ id: jobId, state: "inProgress", children: result.children })
      : CancelResult.members[2].make({ id: jobId, state: result.job.state })
  )
}
