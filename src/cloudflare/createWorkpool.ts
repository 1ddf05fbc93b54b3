/**
 * The Promise facade of a live workpool, for plain Workers and scripts that
 * do not run Effect.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import { runPromise as run, runSyncOrThrow } from "./internal/promise.js"
import type * as Job from "../Job.js"
import type * as Scheduler from "../Scheduler.js"
import * as Workpool from "../Workpool.js"

/**
 * A workpool with Promises: each method resolves with its value or rejects
 * with the typed error of the Effect API (`PoolNotFound`, `InvalidPayload`,
 * `JobNotFound`, ...).
 *
 * @since 0.1.0
 * @category models
 */
export interface PromiseWorkpool {
  readonly name: string
  /** Queues a job; it starts when a slot is free and the jobs queued before it have started. */
  readonly enqueue: <R extends Job.Ref>(
    job: R,
    payload: Job.Payload<R>,
    options?: Scheduler.RunOptions
  ) => Promise<{ readonly id: Job.JobId }>
  readonly status: () => Promise<Workpool.PoolStatus>
  readonly cancel: (id: string) => Promise<Scheduler.CancelResult>
  /** Cancels everything queued; returns how many. */
  readonly cancelQueued: () => Promise<number>
  readonly pause: () => Promise<void>
  readonly resume: () => Promise<void>
  readonly setMaxConcurrency: (maxConcurrency: number) => Promise<void>
  readonly get: (id: string) => Promise<Job.JobInfo>
}

/**
 * Builds the Promise workpool over the `SchedulerDO` namespace. With
 * `maxConcurrency` the pool is declared on first use; without it the pool
 * must exist. Throws `InvalidOptions` at once when the options are malformed.
 *
 * ```ts
 * const pool = createWorkpool({ namespace: env.SCHEDULER, originUrl: "https://app.example.com", name: "email", maxConcurrency: 5 })
 * const { id } = await pool.enqueue("email:send", { to: "ada@example.com" })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const createWorkpool = (options: Scheduler.LiveOptions & Workpool.PoolOptions): PromiseWorkpool => {
  const pool = runSyncOrThrow(Workpool.make(options))
  return {
    name: pool.name,
    enqueue: (job, payload, options) => run(Effect.map(pool.enqueue(job, payload, options), ({ id }) => ({ id }))),
    status: () => run(pool.status),
    cancel: (id) => run(pool.cancel(id)),
    cancelQueued: () => run(pool.cancelQueued),
    pause: () => run(pool.pause),
    resume: () => run(pool.resume),
    setMaxConcurrency: (maxConcurrency) => run(pool.setMaxConcurrency(maxConcurrency)),
    get: (id) => run(pool.get(id))
  }
}
