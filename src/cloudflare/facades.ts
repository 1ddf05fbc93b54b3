/**
 * The Promise facades and the Queues and Cron Triggers handlers: what the
 * Cloudflare entry holds besides the `SchedulerDO`. It imports nothing of
 * `cloudflare:workers`, so Node can load it too.
 */
/**
 * The Promise facade.
 *
 * @since 0.1.0
 */
export { createScheduler, type PromiseScheduler } from "./createScheduler.js"

/**
 * The Promise facade of a workpool.
 *
 * @since 0.1.0
 */
export { createWorkpool, type PromiseWorkpool } from "./createWorkpool.js"

/**
 * The Queues-backed pool: the Promise producer, and the consumer (`queue()` handler) with its HTTP dispatcher.
 *
 * @since 0.1.0
 */
export { createQueueWorkpool, type PromiseQueueWorkpool } from "./createQueueWorkpool.js"
export {
  consumeBatch,
  createQueueConsumer,
  httpDispatcher,
  type HttpDispatcherOptions,
  type MessageBatchLike,
  type QueueConsumer,
  type QueueConsumerOptions
} from "./createQueueConsumer.js"

/**
 * The Cron Triggers path: the crons of a `cronJobs()` value, or one function
 * per trigger, and the `scheduled()` handler of an array of those.
 *
 * @since 0.1.0
 */
export {
  type CreateCronTrigger,
  createCronTrigger,
  type CronDispatcher,
  type CronsTriggerOptions,
  type CronTrigger,
  type FunctionTrigger,
  type PathTriggerOptions,
  type ScheduleTriggerOptions,
  serveCronTriggers
} from "./createCronTrigger.js"
