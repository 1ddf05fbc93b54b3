/**
 * The example app's crons, declared in code with `cronJobs()`. `TestScheduler.layer({ crons })`
 * fires them on `TestClock` (examples/crons.test.ts); `CronRegistry.layer({ ..., crons })`
 * reconciles them into the `SchedulerDO`; `createCronTrigger({ crons, ... })` runs them on
 * Cron Triggers instead.
 */
import { CronSpec } from "@lunora/scheduler"
import { BuildExport, NotifySubscribers } from "./jobs.js"

const crons = CronSpec.cronJobs()
crons.interval("refresh digest", { hours: 6 }, NotifySubscribers, { postId: "digest" })
crons.daily("nightly export", { hourUTC: 2, minuteUTC: 0 }, BuildExport, { userId: "admin", format: "csv" })
crons.weekly("weekly report", { dayOfWeek: "monday", hourUTC: 8, minuteUTC: 0 }, BuildExport, {
  userId: "reports",
  format: "json"
})
crons.cron("london standup", "0 9 * * 1-5", NotifySubscribers, { postId: "standup" }, { timeZone: "Europe/London" })

export default crons
