/**
 * The typed errors of the scheduler. Each is a `Schema.TaggedError`, so it
 * crosses the wire between a Worker and the `SchedulerDO` intact.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * No job with this id exists in this scheduler instance (never did, or was
 * swept or purged).
 *
 * @since 0.1.0
 * @category errors
 */
export class JobNotFound extends Schema.TaggedError<JobNotFound>("@lunora/scheduler/JobNotFound")("JobNotFound", {
  jobId: Schema.String
}) {
  override get message(): string {
    return `job ${this.jobId} not found`
  }
}

/**
 * A delay or a fire time was refused: negative, NaN, non-finite, malformed, or
 * more than 5 years ahead. Nothing was stored.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidTime extends Schema.TaggedError<InvalidTime>("@lunora/scheduler/InvalidTime")("InvalidTime", {
  input: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `invalid time ${this.input}: ${this.reason}`
  }
}

/**
 * Why a payload was refused: it failed the job's Schema, it is not plain JSON
 * data, or its JSON form is over the size limit.
 *
 * @since 0.1.0
 * @category errors
 */
export const PayloadProblem = Schema.Literal("schema", "serialization", "size")

/**
 * @since 0.1.0
 * @category errors
 */
export type PayloadProblem = typeof PayloadProblem.Type

/**
 * A payload was refused at the call; nothing was stored.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidPayload extends Schema.TaggedError<InvalidPayload>("@lunora/scheduler/InvalidPayload")(
  "InvalidPayload",
  {
    functionPath: Schema.String,
    problem: PayloadProblem,
    reason: Schema.String
  }
) {
  override get message(): string {
    return `invalid payload for ${this.functionPath} (${this.problem}): ${this.reason}`
  }
}

/**
 * Options of a call were refused (a malformed function path, key, retry
 * policy or query); nothing was stored.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidOptions extends Schema.TaggedError<InvalidOptions>("@lunora/scheduler/InvalidOptions")(
  "InvalidOptions",
  {
    reason: Schema.String
  }
) {
  override get message(): string {
    return `invalid options: ${this.reason}`
  }
}

/**
 * The job ran out of attempts (or failed in a way no retry can mend) and is
 * parked as `deadLettered` with its last error.
 *
 * @since 0.1.0
 * @category errors
 */
export class JobDeadLettered extends Schema.TaggedError<JobDeadLettered>("@lunora/scheduler/JobDeadLettered")(
  "JobDeadLettered",
  {
    jobId: Schema.String,
    functionPath: Schema.String,
    attempt: Schema.Number,
    lastError: Schema.String
  }
) {
  override get message(): string {
    return `job ${this.jobId} (${this.functionPath}) dead-lettered after attempt ${this.attempt}: ${this.lastError}`
  }
}

/**
 * The job ended without success and without a dead letter (it was scheduled
 * with `deadLetter: false`, or was canceled).
 *
 * @since 0.1.0
 * @category errors
 */
export class JobNotSucceeded extends Schema.TaggedError<JobNotSucceeded>("@lunora/scheduler/JobNotSucceeded")(
  "JobNotSucceeded",
  {
    jobId: Schema.String,
    state: Schema.Literal("failed", "canceled"),
    lastError: Schema.NullOr(Schema.String)
  }
) {
  override get message(): string {
    return `job ${this.jobId} ended ${this.state}${this.lastError === null ? "" : `: ${this.lastError}`}`
  }
}

/**
 * Only a `deadLettered` or `failed` job can be replayed, and only while no
 * other live job holds its key.
 *
 * @since 0.1.0
 * @category errors
 */
export class JobNotReplayable extends Schema.TaggedError<JobNotReplayable>("@lunora/scheduler/JobNotReplayable")(
  "JobNotReplayable",
  {
    jobId: Schema.String,
    reason: Schema.String
  }
) {
  override get message(): string {
    return `job ${this.jobId} cannot be replayed: ${this.reason}`
  }
}

/**
 * The scheduler could not be reached or did not answer (the Durable Object
 * was reset, overloaded or misconfigured). The call may or may not have taken
 * effect; scheduling with a `key` makes a retry safe.
 *
 * @since 0.1.0
 * @category errors
 */
export class SchedulerUnavailable extends Schema.TaggedError<SchedulerUnavailable>(
  "@lunora/scheduler/SchedulerUnavailable"
)("SchedulerUnavailable", {
  operation: Schema.String,
  reason: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  override get message(): string {
    return `scheduler unavailable during ${this.operation}: ${this.reason}`
  }
}

/**
 * A `submit` spread over several shards stored the jobs of some shards and
 * not of the others: each shard's part is atomic, the whole is not.
 * `stored` follows the submissions' order: the id of each job that was
 * stored (created, or the live job that held its key), `null` for each whose
 * shard failed (`failure` says how; when it is `SchedulerUnavailable`, that
 * part may have been stored after all). Submitting the `null` ones again is
 * safe; with keys, so is submitting them all again.
 *
 * @since 0.1.0
 * @category errors
 */
export class SubmitIncomplete extends Schema.TaggedError<SubmitIncomplete>("@lunora/scheduler/SubmitIncomplete")(
  "SubmitIncomplete",
  {
    stored: Schema.Array(Schema.NullOr(Schema.String)),
    failure: Schema.Union(InvalidTime, InvalidPayload, InvalidOptions, SchedulerUnavailable)
  }
) {
  override get message(): string {
    const stored = this.stored.filter((id) => id !== null).length
    return `${stored} of ${this.stored.length} jobs were stored; the others were not: ${this.failure.message}`
  }
}

/**
 * No workpool of that name exists in this scheduler instance: declare it
 * with a `maxConcurrency` first.
 *
 * @since 0.1.0
 * @category errors
 */
export class PoolNotFound extends Schema.TaggedError<PoolNotFound>("@lunora/scheduler/PoolNotFound")("PoolNotFound", {
  pool: Schema.String
}) {
  override get message(): string {
    return `no workpool named "${this.pool}": declare it with a maxConcurrency first`
  }
}

/**
 * No cron with this name is declared.
 *
 * @since 0.1.0
 * @category errors
 */
export class CronNotFound extends Schema.TaggedError<CronNotFound>("@lunora/scheduler/CronNotFound")("CronNotFound", {
  name: Schema.String
}) {
  override get message(): string {
    return `no cron named "${this.name}" is declared`
  }
}

/**
 * `trigger` started nothing: a run of the cron (scheduled or triggered) is
 * still pending or in progress, and at most one run of a cron is in progress.
 *
 * @since 0.1.0
 * @category errors
 */
export class CronRunInProgress extends Schema.TaggedError<CronRunInProgress>("@lunora/scheduler/CronRunInProgress")(
  "CronRunInProgress",
  {
    name: Schema.String,
    /** The live run's job. */
    jobId: Schema.String
  }
) {
  override get message(): string {
    return `cron "${this.name}" was not triggered: its run ${this.jobId} is still pending or in progress`
  }
}

/**
 * Every typed error the scheduler can return.
 *
 * @since 0.1.0
 * @category errors
 */
export const SchedulerError = Schema.Union(
  JobNotFound,
  InvalidTime,
  InvalidPayload,
  InvalidOptions,
  JobDeadLettered,
  JobNotSucceeded,
  JobNotReplayable,
  PoolNotFound,
  CronNotFound,
  CronRunInProgress,
  SchedulerUnavailable,
  SubmitIncomplete
)

/**
 * @since 0.1.0
 * @category errors
 */
export type SchedulerError = typeof SchedulerError.Type
