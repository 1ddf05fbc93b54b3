/**
 * @lunora/scheduler/cloudflare: the `SchedulerDO` Durable Object, the Promise
 * facades for plain Workers, and the Queues and Cron Triggers handlers.
 * In Node the same entry loads (for tests of the handlers' pure parts); its
 * `SchedulerDO` there is a stand-in that cannot be constructed.
 *
 * @since 0.1.0
 */

/**
 * The Durable Object to re-export from the Worker.
 *
 * @since 0.1.0
 */
export { SchedulerDO } from "./SchedulerDO.js"

export * from "./facades.js"
