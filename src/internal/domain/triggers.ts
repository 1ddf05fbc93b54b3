/**
 * Declared crons as Cron Triggers: which trigger expression runs which
 * crons. Apart from `Codegen`'s config editing, so a Worker's `scheduled()`
 * (`createCronTrigger`) carries no JSONC editor.
 */
import * as Data from "effect/Data"
import * as Either from "effect/Either"
import { type CronDefinition, type CronJobs, expression, InvalidCron, toCronTrigger } from "../../CronSpec.js"
import { type DeclaredCrons, type FunctionTrigger, isCronJobs } from "./declared.js"

/**
 * A cron that no Cron Trigger can express, or a one-function trigger whose
 * expression is not one (`name` is then the expression, and `functionPath`
 * what it runs), and why.
 *
 * @since 0.1.0
 * @category models
 */
export interface Refusal {
  readonly name: string
  readonly reason: string
  readonly functionPath?: string | undefined
}

/**
 * Some declared crons cannot be Cron Triggers (sub-minute or uneven
 * intervals, seconds, time zones other than UTC), or a trigger's expression
 * is not a Cron Trigger expression.
 *
 * @since 0.1.0
 * @category errors
 */
export class CodegenError extends Data.TaggedError("CodegenError")<{
  readonly refusals: ReadonlyArray<Refusal>
}> {
  override get message(): string {
    const each = this.refusals.map((refusal) =>
      refusal.functionPath === undefined
        ? `cron "${refusal.name}" cannot be a Cron Trigger: ${refusal.reason}`
        : `trigger "${refusal.name}" of ${refusal.functionPath}: ${refusal.reason}`
    )
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
 * Why `text` is not the Cron Trigger expression it stands for (UTC, 5
 * fields, weekdays by name, as `createCronTrigger` writes it), if it is not.
 */
const triggerProblem = (text: string): string | undefined => {
  const trigger = Either.flatMap(
    Either.try({
      try: () => expression(text),
      catch: (error) => error instanceof InvalidCron ? error.reason : String(error)
    }),
    toCronTrigger
  )
  if (Either.isLeft(trigger)) return trigger.left
  return trigger.right === text ? undefined : `a Cron Trigger writes it "${trigger.right}" (as createCronTrigger does)`
}

const triggerRefusals = (trigger: FunctionTrigger): ReadonlyArray<Refusal> =>
  trigger.crons.flatMap((text) => {
    const reason = triggerProblem(text)
    return reason === undefined ? [] : [{ name: text, reason, functionPath: trigger.dispatcher.functionPath }]
  })

/**
 * The Cron Trigger expressions of declared crons: each cron's
 * `toCronTrigger` and each one-function trigger's expression, deduplicated
 * and sorted, or a `CodegenError` naming every cron and trigger refused.
 *
 * @since 0.1.0
 * @category codegen
 */
export const triggerExpressions = (crons: DeclaredCrons): Either.Either<ReadonlyArray<string>, CodegenError> => {
  const expressions = new Set<string>()
  const refusals: Array<Refusal> = []
  for (const declared of Array.isArray(crons) ? crons as ReadonlyArray<CronJobs | FunctionTrigger> : [crons as CronJobs]) {
    if (isCronJobs(declared)) {
      Either.match(triggerPlan(declared), {
        onLeft: (error) => refusals.push(...error.refusals),
        onRight: (plan) => plan.forEach((_, text) => expressions.add(text))
      })
    } else {
      const refused = triggerRefusals(declared)
      if (refused.length > 0) refusals.push(...refused)
      else declared.crons.forEach((text) => expressions.add(text))
    }
  }
  return refusals.length > 0 ? Either.left(new CodegenError({ refusals })) : Either.right([...expressions].sort())
}
