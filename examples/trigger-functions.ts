/// <reference types="@cloudflare/workers-types" />
/**
 * One function per Cron Trigger, by its `Job` or by its function path, and
 * the `scheduled()` handler that serves them.
 * `npx lunora-scheduler crons --module examples/trigger-functions.ts --handlers examples/jobs.ts --config <wrangler.jsonc>`
 * writes their `triggers.crons`, and fails when a path has no handler.
 */
import { type CronDispatcher, createCronTrigger, type SchedulerDO, serveCronTriggers } from "@lunora/scheduler/cloudflare"
import { BuildExport } from "./jobs.js"

export const triggers = [
  createCronTrigger({ schedule: "0 2 * * *", fn: BuildExport, args: { userId: "admin", format: "csv" } }),
  createCronTrigger({ cron: "0 8 * * 1", functionPath: "notifications:notifySubscribers", args: { postId: "weekly" } })
]

interface Env {
  readonly SCHEDULER: DurableObjectNamespace<SchedulerDO>
}

let serve: CronDispatcher | undefined

/** The Worker's `scheduled()` handler: a job in the `SchedulerDO` for each trigger of `controller.cron`. */
export const scheduled = async (controller: ScheduledController, env: Env): Promise<void> => {
  serve ??= serveCronTriggers(triggers, { namespace: env.SCHEDULER, binding: "SELF" })
  await serve(controller)
}
