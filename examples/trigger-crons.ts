/**
 * Crons for the Cron Triggers path: whole-minute UTC schedules only.
 * `npx lunora-scheduler crons --module examples/trigger-crons.ts --config <wrangler.jsonc>`
 * writes their `triggers.crons`; `createCronTrigger({ crons, ... })` dispatches them.
 */
import { CronSpec } from "@lunora/scheduler"
import { BuildExport, NotifySubscribers } from "./jobs.js"

export default CronSpec.cronJobs()
  .interval("refresh digest", { hours: 6 }, NotifySubscribers, { postId: "digest" })
  .daily("nightly export", { hourUTC: 2, minuteUTC: 0 }, BuildExport, { userId: "admin", format: "csv" })
  .weekly("weekly report", { dayOfWeek: "monday", hourUTC: 8, minuteUTC: 0 }, BuildExport, {
    userId: "reports",
    format: "json"
  })
