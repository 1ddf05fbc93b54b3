/**
 * Declared crons as Cron Triggers: which trigger expression runs which
 * crons. Apart from `Codegen`'s config editing, so a Worker's `scheduled()`
 * (`createCronTrigger`) carries no JSONC editor.
 */
import * as Data from "effect/Data"
import * as Either from "effect/Either"
import { type CronDefinition, type CronJobs, toCronTrigger } from "../../CronSpec.js"

/**
 * A cron that no Cron Trigger can express, and why.
 *
 * @since 0.1.0
 * @category models
 */
export interface Refusal {
  readonly name: string
  readonly reason: string
}

/**
 * Some declared crons cannot be Cron Triggers (sub-minute or uneven
 * intervals, seconds, time zones other than UTC).
 *
 * @since 0.1.0
 * @category errors
 */
export class CodegenError extends Data.TaggedError("CodegenError")<{
  readonly refusals: ReadonlyArray<Refusal>
}> {
  override get message(): string {
    const each = this.refusals.map((refusal) => `cron "${refusal.name}" cannot be a Cron Trigger: ${refusal.reason}`)
    return each.join("; ")
  }
}

/**
 * The crons of `crons` by their Cron Trigger expression (what `scheduled()`
 * receives as `controller.cron`), or a `CodegenError` naming every cron refused.
 *
 * @since 0.1.0
 * @category codegen
 */
export const triggerPlan = (
  crons: CronJobs
): Either.Either<ReadonlyMap<string, ReadonlyArray<CronDefinition>>, CodegenError> => {
  const plan = new Map<string, Array<CronDefinition>>()
  const refusals: Array<Refusal> = []
  for (const definition of crons.definitions) {
    const expression = toCronTrigger(definition.schedule)
    if (Either.isLeft(expression)) refusals.push({ name: definition.name, reason: expression.left })
    else plan.set(expression.right, [...(plan.get(expression.right) ?? []), definition])
  }
  return refusals.length > 0 ? Either.left(new CodegenError({ refusals })) : Either.right(plan)
}

/**
 * The Cron Trigger expressions of `crons`: each cron's `toCronTrigger`,
 * deduplicated and sorted, or a `CodegenError` naming every cron refused.
 *
 * @since 0.1.0
 * @category codegen
 */
export const triggerExpressions = (crons: CronJobs): Either.Either<ReadonlyArray<string>, CodegenError> =>
  Either.map(triggerPlan(crons), (plan) => [...plan.keys()].sort())

