/**
 * The Promise facade of the live scheduler, for plain Workers and scripts
 * that do not run Effect.
 *
 * @since 0.1.0
 */
import type * as DateTime from "effect/DateTime"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { runPromise as run, runSyncOrThrow } from "./internal/promise.js"
import type * as Job from "../Job.js"
import * as Scheduler from "../Scheduler.js"
import { prepareAllPlainly } from "../internal/engine/submission.js"
import { makeRemote } from "../internal/services/remote.js"

/**
 * The scheduler with Promises: each method resolves with its value or rejects
 * with the typed error of the Effect API (`InvalidTime`, `JobNotFound`, ...).
 *
 * @since 0.1.0
 * @category models
 */
export interface PromiseScheduler {
  /** Runs `job` after `delay` (milliseconds, or any `Duration` input); the payload may be left out when it can be `{}`. */
  readonly runAfter: <R extends Job.Ref>(
    delay: Duration.DurationInput,
    job: R,
    ...args: Scheduler.RunArgs<R>
  ) => Promise<{ readonly id: Job.JobId; readonly scheduledFor: Date }>
  /** Runs `job` at a time (a `Date`, epoch milliseconds or a `DateTime`); the payload may be left out when it can be `{}`. */
  readonly runAt: <R extends Job.Ref>(
    at: Date | number | DateTime.DateTime,
    job: R,
    ...args: Scheduler.RunArgs<R>
  ) => Promise<{ readonly id: Job.JobId; readonly scheduledFor: Date }>
  /** The outcome, with `cancelled`: whether the job itself will not run (`Canceled`). */
  readonly cancel: (id: string) => Promise<Scheduler.CancelResult & { readonly cancelled: boolean }>
  readonly get: (id: string) => Promise<Job.JobInfo>
  readonly list: (query?: Scheduler.ListQuery) => Promise<Scheduler.JobPage>
  readonly replay: (id: string) => Promise<Job.JobInfo>
  readonly purge: (query?: Scheduler.PurgeQuery) => Promise<number>
}

/**
 * Builds the Promise scheduler over the `SchedulerDO` namespace. Throws
 * `InvalidOptions` at once when the options are malformed.
 *
 * ```ts
 * const scheduler = createScheduler({ namespace: env.SCHEDULER, originUrl: "https://app.example.com" })
 * const { id, scheduledFor } = await scheduler.runAfter(30_000, "notifications:notifySubscribers", { postId })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const createScheduler = (options: Scheduler.LiveOptions): PromiseScheduler => {
  const backend = runSyncOrThrow(makeRemote(options))
  const scheduler = Scheduler.fromBackend(backend)
  // checked and sent without Effect where it can be (no retry to step, the shard count settled), else through the service
  const submitOne = (submission: Scheduler.Submission): Promise<{ readonly id: Job.JobId; readonly scheduledFor: Date }> => {
    const jobs = prepareAllPlainly([submission], Date.now())
    if (jobs !== undefined && Either.isLeft(jobs)) return Promise.reject(jobs.left)
    const sent = jobs === undefined ? undefined : backend.schedulePlainly?.(jobs.right)
    if (sent !== undefined) {
      return sent.then(([stored]) => ({ id: stored!.job.id as Job.JobId, scheduledFor: new Date(stored!.job.scheduledFor) }))
    }
    return run(Effect.map(scheduler.submit([submission]), ([scheduled]) => ({
      id: scheduled!.id,
      scheduledFor: new Date(scheduled!.scheduledFor.epochMillis)
    })))
  }
  return {
    runAfter: (after, job, ...[payload = {}, options]: Scheduler.RunArgs<Job.Ref>) =>
      submitOne({ job, payload, after, options }),
    runAt: (at, job, ...[payload = {}, options]: Scheduler.RunArgs<Job.Ref>) => submitOne({ job, payload, at, options }),
    cancel: (id) =>
      run(Effect.map(scheduler.cancel(id), (result) => ({ ...result, cancelled: result._tag === "Canceled" }))),
    get: (id) => run(scheduler.get(id)),
    list: (query) => run(scheduler.list(query)),
    replay: (id) => run(scheduler.replay(id)),
    purge: (query) => run(scheduler.purge(query))
  }
}
