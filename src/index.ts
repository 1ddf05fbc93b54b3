/**
 * @lunora/scheduler: durable job scheduling for Cloudflare Workers, as Effect
 * services.
 *
 * @since 0.1.0
 */

/**
 * The admin API: an `HttpApi` over live schedulers (jobs, crons, pools, stats) behind a bearer token, and its client.
 *
 * @since 0.1.0
 */
export * as Admin from "./Admin.js"

/**
 * Alert hooks: a job of your choosing, scheduled by the scheduler on dead letters or an error rate above a threshold.
 *
 * @since 0.1.0
 */
export * as Alerts from "./Alerts.js"

/**
 * Cron Triggers codegen: expressions for `wrangler.jsonc`, written keeping its comments.
 *
 * @since 0.1.0
 */
export * as Codegen from "./Codegen.js"

/**
 * The `CronRegistry` service: declared crons, reconciled and fired by the engine.
 *
 * @since 0.1.0
 */
export * as CronRegistry from "./CronRegistry.js"

/**
 * Code-first cron declarations (`cronJobs()`) and the next-fire rule.
 *
 * @since 0.1.0
 */
export * as CronSpec from "./CronSpec.js"

/**
 * The app's dispatch endpoint, which runs due jobs sent by the `SchedulerDO`.
 *
 * @since 0.1.0
 */
export * as Dispatch from "./Dispatch.js"

/**
 * Job definitions, ids, states and `JobInfo`.
 *
 * @since 0.1.0
 */
export * as Job from "./Job.js"

/**
 * The handlers registered with `Job.toLayer`.
 *
 * @since 0.1.0
 */
export * as JobRegistry from "./JobRegistry.js"

/**
 * The Queues-backed workpool: jobs sent to a Cloudflare Queue, dispatched by the Worker's `queue()` handler.
 *
 * @since 0.1.0
 */
export * as QueueWorkpool from "./QueueWorkpool.js"

/**
 * Retry policies: a `Schedule` or the data form, stepped into stored delays.
 *
 * @since 0.1.0
 */
export * as Retry from "./Retry.js"

/**
 * The `Scheduler` service.
 *
 * @since 0.1.0
 */
export * as Scheduler from "./Scheduler.js"

/**
 * The typed errors.
 *
 * @since 0.1.0
 */
export * as SchedulerError from "./SchedulerError.js"

/**
 * @since 0.1.0
 */
export * as Workpool from "./Workpool.js"

/**
 * Pull-based workers: lease, heartbeat and complete the jobs of a pull pool, and the worker loop.
 *
 * @since 0.1.0
 */
export * as PullWorker from "./PullWorker.js"

/**
 * Webhook jobs: delivered by the scheduler to a URL, signed; and `verify` for their receivers.
 *
 * @since 0.1.0
 */
export * as Webhook from "./Webhook.js"

/**
 * Workflow jobs: a job or cron whose attempt starts a Cloudflare Workflow instance.
 *
 * @since 0.1.0
 */
export * as Workflow from "./Workflow.js"
