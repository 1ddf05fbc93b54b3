/**
 * Turning a request to run a job into the engine's `NewJob`: the time, the
 * function path, the payload encoded with the job's Schema, the options and
 * the retry plan, each checked; and the job's id. Shared by every service that
 * schedules (`Scheduler`, `Workpool`, the Queues-backed pool).
 */
import type * as Duration from "effect/Duration"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Either from "effect/Either"
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
import type { Stored } from "./operations.js"
import { invalidOptions } from "../domain/failure.js"
import { OptionText } from "../domain/names.js"
import { encodePayload } from "../domain/payload.js"
import { type Callback, checkTarget, type OwnTarget } from "../domain/targets.js"
import { delayMillis, instantMillis } from "../domain/time.js"
import { CurrentJob } from "../domain/registry.js"
import { FUNCTION_PATH_PATTERN } from "../domain/job.js"

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
/** `Job.FunctionPath`'s rule, by its pattern: a Schema check per job costs a parse. */
const isFunctionPath = (path: string) => FUNCTION_PATH_PATTERN.test(path)

const ID_DIGITS = 36 ** 6

/** The most 32-bit values one `crypto.getRandomValues` call gives (65,536 bytes). */
const RANDOM_VALUES_MAX = 16_384

/**
 * `count` job ids for `now` on shard 0, `job_0_<time><random>`: unique, and
 * sortable by creation time within a shard. The random part is 18 base-36
 * digits from the platform's `crypto.getRandomValues`, read in as few calls
 * as it allows.
 */
export const makeJobIds = (now: number, count: number): Array<string> => {
  const random = new Uint32Array(count * 3)
  for (let at = 0; at < random.length; at += RANDOM_VALUES_MAX) {
    crypto.getRandomValues(random.subarray(at, at + RANDOM_VALUES_MAX))
  }
  const prefix = `job_0_${now.toString(36).padStart(9, "0")}`
  const ids = new Array<string>(count)
  for (let i = 0; i < count; i++) {
    let suffix = ""
    for (let k = 0; k < 3; k++) suffix += (random[i * 3 + k]! % ID_DIGITS).toString(36).padStart(6, "0")
    ids[i] = prefix + suffix
  }
  return ids
}

/**
 * A submission's own target: a workflow's binding, or a webhook's target
 * (its definition's, with the run's URL, method and headers over it).
 */
const ownTarget = (job: Job.Ref, run: Partial<Callback> | undefined): Either.Either<OwnTarget | null, InvalidOptions> => {
  const definition = typeof job === "string" ? undefined : job.webhook
  if (definition === undefined) {
    if (run !== undefined) {
      return Either.left(new InvalidOptions({ reason: "the webhook option is for webhook jobs (Webhook.make) only" }))
    }
    const workflow = typeof job === "string" ? undefined : job.workflow
    return Either.right(workflow === undefined ? null : { workflow })
  }
  const url = run?.url ?? definition.url
  if (url === undefined) {
    return Either.left(new InvalidOptions({ reason: `the webhook ${Job.pathOf(job)} has no URL: give one with { webhook: { url } }` }))
  }
  return Either.mapBoth(
    checkTarget({
      url,
      method: run?.method ?? definition.method,
      headers: { ...definition.headers, ...run?.headers }
    }),
    {
      onLeft: (reason) => new InvalidOptions({ reason: `webhook: ${reason}` }),
      onRight: (webhook) => ({ webhook })
    }
  )
}

/** What a submission without options is checked with. */
const NO_OPTIONS: RunOptions = {}

/** The default retry policy's plan, once stepped: its delays do not depend on when the job starts. */
let defaultPlan: Retry.Plan | undefined

/**
 * Checks one submission and builds its job, in plain code: every rule but
 * the retry plan, which `plan` gives (`undefined`: the caller steps it).
 */
const check = (
  submission: Submission,
  now: number,
  pool: string | null,
  parentId: string | null,
  id: string,
  plan: Retry.Plan | undefined
): Either.Either<Engine.NewJob, ScheduleError> => {
  const runAt = submission.at !== undefined
    ? instantMillis(submission.at, now)
    : delayMillis(submission.after ?? 0, now)
  if (Either.isLeft(runAt)) return Either.left(runAt.left)
  const functionPath = Job.pathOf(submission.job)
  if (!isFunctionPath(functionPath)) {
    return Either.left(new InvalidOptions({ reason: `"${functionPath}" is not a function path of the form "namespace:function"` }))
  }
  const args = encodePayload(submission.job, submission.payload)
  if (Either.isLeft(args)) return Either.left(args.left)
  const given = submission.options ?? NO_OPTIONS
  const options = given === NO_OPTIONS ? Either.right(given) : Either.mapLeft(decodeRunOptions(given), invalidOptions)
  if (Either.isLeft(options)) return Either.left(options.left)
  const own = ownTarget(submission.job, given.webhook)
  if (Either.isLeft(own)) return Either.left(own.left)
  return Either.right({
    id,
    functionPath,
    args: args.right,
    runAt: runAt.right,
    retryDelaysMs: plan?.delaysMs ?? [],
    deadLetter: options.right.deadLetter ?? true,
    key: options.right.key ?? null,
    shardKey: options.right.shardKey ?? null,
    pool,
    parentId,
    ...(own.right === null ? {} : { own: own.right })
  })
}

/** A call's jobs being checked in order: `jobs` holds those built so far. */
interface Checking {
  readonly submissions: ReadonlyArray<Submission>
  readonly now: number
  readonly pool: string | null
  readonly parentId: string | null
  readonly ids: ReadonlyArray<string>
  readonly jobs: Array<Engine.NewJob>
}

const checking = (
  submissions: ReadonlyArray<Submission>,
  now: number,
  pool: string | null,
  parentId: string | null
): Checking => ({ submissions, now, pool, parentId, ids: makeJobIds(now, submissions.length), jobs: [] })

/**
 * Checks and builds jobs in plain code from the next one on, until all are
 * built or one's retry must be stepped (the default retry, once stepped,
 * needs no step): the refusal of the first refused one, if any.
 */
const checkPlainly = (call: Checking): Either.Either<void, ScheduleError> => {
  const { ids, jobs, now, parentId, pool, submissions } = call
  for (let i = jobs.length; i < submissions.length; i++) {
    const plan = submissions[i]!.options?.retry === undefined ? defaultPlan : undefined
    if (plan === undefined) return Either.void
    const job = check(submissions[i]!, now, pool, parentId, ids[i]!, plan)
    if (Either.isLeft(job)) return Either.left(job.left)
    jobs.push(job.right)
  }
  return Either.void
}

/** Checks and builds the next job, whose retry is stepped in Effect, then goes on plainly. */
const checkStepping = (call: Checking): Effect.Effect<ReadonlyArray<Engine.NewJob>, ScheduleError> =>
  Effect.flatMap(checkPlainly(call), () => {
    const { ids, jobs, now, parentId, pool, submissions } = call
    const submission = submissions[jobs.length]
    if (submission === undefined) return Effect.succeed(jobs)
    const retry = submission.options?.retry
    return Effect.flatMap(check(submission, now, pool, parentId, ids[jobs.length]!, undefined), (job) =>
      Effect.flatMap(Retry.resolve(retry, job.runAt), (stepped) => {
        if (retry === undefined && !stepped.capped) defaultPlan = stepped
        jobs.push({ ...job, retryDelaysMs: stepped.delaysMs })
        return checkStepping(call)
      }))
  })

/**
 * Checks submissions and builds the jobs the engine stores, in one Effect
 * for the whole call (no fiber or generator per job); `pool` names the
 * workpool they join, if any. The first refused submission fails the call.
 * A retry given in the options (a `Schedule`, or the data form) is stepped
 * in Effect once the job's other checks passed; the default one once.
 */
export const prepareAll = (
  submissions: ReadonlyArray<Submission>,
  now: number,
  pool: string | null = null
): Effect.Effect<ReadonlyArray<Engine.NewJob>, ScheduleError> =>
  Effect.flatMap(CurrentJob, (parent) => checkStepping(checking(submissions, now, pool, Option.getOrNull(parent))))

/**
 * `prepareAll` without Effect, for a caller outside any job (the Promise
 * facades): the jobs, or the refusal; `undefined` when a retry must be
 * stepped (`prepareAll` then does it).
 */
export const prepareAllPlainly = (
  submissions: ReadonlyArray<Submission>,
  now: number,
  pool: string | null = null
): Either.Either<ReadonlyArray<Engine.NewJob>, ScheduleError> | undefined => {
  const call = checking(submissions, now, pool, null)
  const checked = checkPlainly(call)
  if (Either.isLeft(checked)) return Either.left(checked.left)
  return call.jobs.length === submissions.length ? Either.right(call.jobs) : undefined
}

/** Checks a submission and builds the job the engine stores; `pool` names the workpool it joins, if any. */
export const prepare = (
  submission: Submission,
  now: number,
  pool: string | null = null
): Effect.Effect<Engine.NewJob, ScheduleError> => Effect.map(prepareAll([submission], now, pool), (jobs) => jobs[0]!)

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
export const toScheduled = (result: Stored): Scheduled =>
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
