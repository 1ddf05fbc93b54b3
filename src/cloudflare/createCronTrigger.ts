/**
 * The Cron Triggers path: crons compiled to the Worker's `triggers.crons`,
 * and a `scheduled()` dispatcher that turns each trigger into jobs of the
 * `SchedulerDO`, which runs them through the usual dispatch round trip.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { triggerPlan } from "../internal/domain/triggers.js"
import type { CronJobs } from "../CronSpec.js"
import { runPromise, runSyncOrThrow } from "./internal/promise.js"
import * as Scheduler from "../Scheduler.js"

/**
 * What `createCronTrigger` gives: the trigger expressions, the
 * `wrangler.jsonc` fragment that declares them, and the dispatcher to call
 * from the Worker's `scheduled()` handler.
 *
 * @since 0.1.0
 * @category models
 */
export interface CronTrigger {
  readonly crons: ReadonlyArray<string>
  /** `"triggers": { "crons": [...] }`, to paste (or let `lunora-scheduler crons` write it). */
  readonly wranglerJsonc: string
  /**
   * Schedules, at `scheduledTime`, a job for every cron whose expression is
   * `controller.cron`. A cron whose previous run is still live is skipped
   * (the job key `cron-trigger:<name>` is taken) and reported `Existing`.
   */
  readonly dispatcher: (controller: {
    readonly cron: string
    readonly scheduledTime: number
  }) => Promise<ReadonlyArray<{ readonly name: string; readonly scheduled: Scheduler.Scheduled }>>
}

/**
 * Compiles `crons` for Cron Triggers (throws a `CodegenError` naming every
 * schedule no trigger can express: sub-minute or uneven intervals, seconds,
 * time zones)
 * and builds the dispatcher over the `SchedulerDO`:
 *
 * ```ts
 * const trigger = createCronTrigger({ crons, namespace: env.SCHEDULER, binding: "SELF" })
 * export default { fetch, scheduled: (controller) => trigger.dispatcher(controller) }
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const createCronTrigger = (options: Scheduler.LiveOptions & { readonly crons: CronJobs }): CronTrigger => {
  const byExpression = Either.getOrThrowWith(triggerPlan(options.crons), (refused) => refused)
  const expressions = [...byExpression.keys()].sort()
  const scheduler = runSyncOrThrow(Scheduler.make(options))

  return {
    crons: expressions,
    wranglerJsonc: `"triggers": { "crons": ${JSON.stringify(expressions)} }`,
    dispatcher: (controller) => {
      const due = byExpression.get(controller.cron) ?? []
      return runPromise(
        scheduler.submit(due.map((cron) => ({
          job: cron.functionPath,
          payload: JSON.parse(cron.args),
          at: controller.scheduledTime,
          options: { key: `cron-trigger:${cron.name}`, retry: { maxAttempts: 1 }, deadLetter: false }
        }))).pipe(
          Effect.map((scheduled) => scheduled.map((one, i) => ({ name: due[i]!.name, scheduled: one }))),
          Effect.tap((results) =>
            Effect.forEach(
              results.filter((result) => result.scheduled._tag === "Existing"),
              (result) => Effect.logWarning(`cron ${result.name} skipped: its previous run is still in progress`),
              { discard: true }
            )
          ),
          Effect.withSpan("CronTrigger.dispatch", { attributes: { cron: controller.cron } })
        )
      )
    }
  }
}
