/**
 * Workflow jobs: a job (or a cron) whose attempt starts an instance of a
 * Cloudflare Workflow (`step.do`, `step.sleep`, `step.waitForEvent`)
 * through the Worker's Workflow binding, `env.<BINDING>.create({ id, params })`,
 * with the payload as `params`, checked against the `params` Schema when it
 * is scheduled or declared in `cronJobs()`.
 *
 * The instance id is derived from the job: its dedupe key when it has one
 * (a cron fire's occurrence key, `cron:<name>:<ms>`, or your `key`; one that
 * is not a valid instance id becomes `k-<SHA-256 hex>`), else the job id. A
 * second delivery of the same job finds the instance there (`create` refuses
 * an existing id) and succeeds without starting another. The job succeeds
 * once the instance is created; its result is `{ instanceId, created }`
 * (`created: false` when it already existed). The scheduler does not follow
 * the instance's run: `env.<BINDING>.get(instanceId).status()` does.
 *
 * @since 0.1.0
 */
import { pipeArguments } from "effect/Pipeable"
import * as Schema from "effect/Schema"
import type * as Job from "./Job.js"
import { FunctionPath, TypeId } from "./Job.js"
import { WorkflowTarget } from "./internal/domain/targets.js"

/**
 * The result of a workflow job: the instance's id, and whether this
 * attempt created it (`false`: it existed already).
 *
 * @since 0.1.0
 * @category models
 */
export const Result = Schema.Struct({ instanceId: Schema.String, created: Schema.Boolean })

/**
 * A workflow job's reference: a `Job` whose attempts create an instance of
 * the Workflow bound as `binding`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Workflow<Path extends string, Params extends Schema.Schema.AnyNoContext> extends Job.Any {
  readonly path: Path
  readonly payloadSchema: Params
  readonly successSchema: typeof Result
  readonly workflow: { readonly binding: string }
}

const isBinding = Schema.is(WorkflowTarget)

/**
 * Defines a workflow job: `name` is its function path (what lists, metrics
 * and alerts show), `binding` the name of the Workflow binding in
 * `wrangler.jsonc` (`"workflows": [{ "binding": "REPORTS", ... }]`), and
 * `params` the Schema of its params. Schedule it with the `Scheduler` or a
 * `Workpool`, or declare it in `cronJobs()`; the `SchedulerDO` refuses it
 * (`InvalidOptions`, nothing stored) when its Worker has no such binding.
 *
 * @example
 * const DailyReport = Workflow.make("reports:daily", {
 *   binding: "REPORTS",
 *   params: Schema.Struct({ day: Schema.String })
 * })
 * export const crons = cronJobs().daily("daily report", { hourUTC: 6, minuteUTC: 0 }, DailyReport, { day: "today" })
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <const Path extends string, Params extends Schema.Schema.AnyNoContext>(
  name: Path,
  options: { readonly binding: string; readonly params: Params }
): Workflow<Path, Params> => {
  if (!Schema.is(FunctionPath)(name)) {
    throw new TypeError(`Workflow.make: "${name}" is not a function path of the form "namespace:function"`)
  }
  if (!isBinding({ binding: options.binding })) {
    throw new TypeError(`Workflow.make: "${options.binding}" is not the name of a binding`)
  }
  return {
    [TypeId]: TypeId,
    path: name,
    payloadSchema: options.params,
    successSchema: Result,
    workflow: { binding: options.binding },
    pipe() {
      return pipeArguments(this, arguments)
    }
  }
}
