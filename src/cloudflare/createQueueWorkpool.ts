/**
 * The Promise facade of the Queues-backed pool, for plain Workers that do not
 * run Effect.
 *
 * @since 0.1.0
 */
import { runPromise as run, runSyncOrThrow } from "./internal/promise.js"
import type * as Job from "../Job.js"
import * as QueueWorkpool from "../QueueWorkpool.js"

/**
 * The Queues-backed pool with Promises: each method resolves with its value
 * or rejects with the typed error of the Effect API (`InvalidPayload`,
 * `InvalidTime`, `InvalidOptions`, `SchedulerUnavailable`); a refused call
 * sends nothing.
 *
 * @since 0.1.0
 * @category models
 */
export interface PromiseQueueWorkpool {
  /** Sends `job` to the queue, to run after `options.after` (at most 24 hours; default now). */
  readonly enqueue: <R extends Job.Ref>(
    job: R,
    payload: Job.Payload<R>,
    options?: QueueWorkpool.EnqueueOptions
  ) => Promise<QueueWorkpool.Enqueued>
  /** Checks every job, then sends them in batches; any refusal sends nothing. */
  readonly enqueueMany: (
    submissions: ReadonlyArray<QueueWorkpool.Submission>
  ) => Promise<ReadonlyArray<QueueWorkpool.Enqueued>>
}

/**
 * Builds the Promise pool over a Queue producer binding. Throws
 * `InvalidOptions` at once when `queue` is not one.
 *
 * ```ts
 * const pool = createQueueWorkpool({ queue: env.JOBS })
 * const { id } = await pool.enqueue(SendReminder, { userId: "u-1" }, { after: "30 seconds" })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const createQueueWorkpool = (options: QueueWorkpool.Options): PromiseQueueWorkpool => {
  const pool = runSyncOrThrow(QueueWorkpool.make(options))
  return {
    enqueue: (job, payload, options) => run(pool.enqueue(job, payload, options)),
    enqueueMany: (submissions) => run(pool.enqueueMany(submissions))
  }
}
