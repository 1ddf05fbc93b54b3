/**
 * The consumer of the Queues-backed pool: the Worker's `queue()` handler,
 * which dispatches each message through the wire contract and acks it,
 * retries it after its policy's delay, or dead-letters it.
 *
 * Configure the consumer in `wrangler.jsonc` with `max_retries` set to the
 * jobs' attempts − 1 (the default policy has 5 attempts: `max_retries: 4`)
 * and a `dead_letter_queue`: a message the consumer cannot decode, and (without
 * a `deadLetterQueue` binding) an exhausted job, reach it when the queue's
 * retries run out. The queue's `max_retries` bounds every job's attempts.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as Effect from "effect/Effect"
import * as Predicate from "effect/Predicate"
import {
  type Batch,
  checkOptions,
  consume,
  type ConsumerOptions,
  type HttpDispatcherOptions,
  makeHttpDispatcher
} from "../internal/runtime/queueConsumer.js"
import type * as QueueWorkpool from "../QueueWorkpool.js"
import type { InvalidOptions } from "../SchedulerError.js"

/**
 * Options of `httpDispatcher`: where the app's dispatch endpoint is (its
 * `originUrl`, or a `fetcher`: a service binding such as one of the Worker to
 * itself), the `secret` that signs each request (the app's and the
 * `SchedulerDO`'s `LUNORA_SCHEDULER_SECRET`; `adminToken` is another name
 * for it, as the product's documentation spells it), and how long one attempt may take (`timeout`, default 5 minutes).
 *
 * @since 0.1.0
 * @category models
 */
export type { HttpDispatcherOptions }

/**
 * Options of the consumer: its `dispatch`er, an optional `deadLetterQueue`
 * producer binding (an exhausted or rejected job is sent there with its
 * `lastError` and `attempts`, then acked; without one, the queue's own
 * dead-letter queue takes it), and how many messages of a batch are
 * dispatched at once (`concurrency`, default 6).
 *
 * @since 0.1.0
 * @category models
 */
export type QueueConsumerOptions = ConsumerOptions

/**
 * The part of a `MessageBatch` the consumer uses.
 *
 * @since 0.1.0
 * @category models
 */
export type MessageBatchLike = Batch

/**
 * A Worker `queue()` handler.
 *
 * @since 0.1.0
 * @category models
 */
export type QueueConsumer<Env> = (batch: MessageBatchLike, env: Env, ctx?: unknown) => Promise<void>

/**
 * A dispatcher that posts each attempt, signed, to the app's dispatch
 * endpoint (`Dispatch.toFetchHandler` there), the way the `SchedulerDO` does.
 * Throws `InvalidOptions` at once when the options are malformed.
 *
 * ```ts
 * httpDispatcher({ originUrl: "https://app.example.com", secret: env.LUNORA_SCHEDULER_SECRET })
 * httpDispatcher({ fetcher: env.SELF, secret: env.LUNORA_SCHEDULER_SECRET })
 * httpDispatcher({ fetcher: env.SELF, adminToken: env.LUNORA_SCHEDULER_SECRET }) // the same
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const httpDispatcher = (options: HttpDispatcherOptions): QueueWorkpool.Dispatcher =>
  Either.getOrThrowWith(makeHttpDispatcher(options), (error) => error)

/**
 * Handles one batch as an Effect: each message is settled on its own, at most
 * `concurrency` at a time. Succeeds with how many messages could be neither
 * acked nor retried (normally 0).
 *
 * @since 0.1.0
 * @category constructors
 */
export const consumeBatch = (
  batch: MessageBatchLike,
  options: QueueConsumerOptions
): Effect.Effect<number, InvalidOptions> =>
  Effect.flatMap(checkOptions(options), (checked) => consume(batch, checked))

const settle = async (batch: MessageBatchLike, options: QueueConsumerOptions): Promise<void> => {
  const unsettled = await Effect.runPromise(consume(batch, options))
  if (unsettled > 0) {
    throw new Error(`${unsettled} of ${batch.messages.length} messages could be neither acked nor retried`)
  }
}

/**
 * The Worker's `queue()` handler for the pool's queue. Options are an object,
 * or a function of `env` (secrets live there), called once per `env`. A
 * message whose body is not a job is retried, never dropped, until the
 * queue's `max_retries` hands it to its dead-letter queue.
 *
 * ```ts
 * const consumer = createQueueConsumer((env: Env) => ({
 *   dispatch: httpDispatcher({ originUrl: env.APP_ORIGIN, secret: env.LUNORA_SCHEDULER_SECRET })
 * }))
 * export default { fetch, queue: consumer } satisfies ExportedHandler<Env>
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const createQueueConsumer = <Env = unknown>(
  options: QueueConsumerOptions | ((env: Env) => QueueConsumerOptions)
): QueueConsumer<Env> => {
  if (!Predicate.isFunction(options)) {
    const checked = Either.getOrThrowWith(checkOptions(options), (error) => error)
    return (batch) => settle(batch, checked)
  }
  const byEnv = new WeakMap<object, QueueConsumerOptions>()
  const resolve = (env: Env): QueueConsumerOptions => {
    const cached = Predicate.isObject(env) ? byEnv.get(env) : undefined
    if (cached !== undefined) return cached
    const checked = Either.getOrThrowWith(checkOptions(options(env)), (error) => error)
    if (Predicate.isObject(env)) byEnv.set(env, checked)
    return checked
  }
  return async (batch, env) => settle(batch, resolve(env))
}
