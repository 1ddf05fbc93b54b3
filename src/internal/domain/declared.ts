/**
 * What an app declares to run on a schedule, as the handlers see it: the
 * function path of every cron of a `cronJobs()` value and of every
 * one-function Cron Trigger, each with what declared it. Plain data and no
 * cron parser, so the dispatch endpoint and the command line can check the
 * paths against the handlers.
 */
import * as Predicate from "effect/Predicate"
import type { CronJobs } from "../../CronSpec.js"

/**
 * One function on one Cron Trigger, as `createCronTrigger({ schedule, fn })`
 * or `createCronTrigger({ cron, functionPath })` gives it: the trigger
 * expression (UTC, 5 fields, weekdays by name), the `wrangler.jsonc`
 * fragment that declares it, and what each fire schedules: `functionPath`
 * with `args`, the payload as its job's Schema encodes it (JSON data, as a
 * dispatch carries it).
 *
 * @since 0.1.0
 * @category models
 */
export interface FunctionTrigger<Path extends string = string, Args = unknown> {
  readonly crons: ReadonlyArray<string>
  /** `"triggers": { "crons": [...] }`, to paste (or let `lunora-scheduler crons` write it). */
  readonly wranglerJsonc: string
  readonly dispatcher: { readonly functionPath: Path; readonly args: Args }
}

/**
 * Crons an app declares: a `cronJobs()` value, or an array of one-function
 * triggers (`createCronTrigger({ schedule, fn })`), `cronJobs()` values, or both.
 *
 * @since 0.1.0
 * @category models
 */
export type DeclaredCrons = CronJobs | ReadonlyArray<CronJobs | FunctionTrigger>

/**
 * A function path a cron or trigger runs, and which one declared it
 * (`cron "nightly export"`, `trigger "0 3 * * *"`).
 *
 * @since 0.1.0
 * @category models
 */
export interface DeclaredPath {
  readonly functionPath: string
  readonly declaredBy: string
}

/** Whether `u` holds crons as `cronJobs()` does: a `definitions` array. */
export const isCronJobs = (u: unknown): u is CronJobs =>
  Predicate.hasProperty(u, "definitions") && Array.isArray(u.definitions)

/** Whether `u` is a one-function trigger: its expressions and a `dispatcher` naming a function path. */
export const isFunctionTrigger = (u: unknown): u is FunctionTrigger =>
  Predicate.hasProperty(u, "crons") && Array.isArray(u.crons) &&
  u.crons.every(Predicate.isString) &&
  Predicate.hasProperty(u, "dispatcher") && Predicate.hasProperty(u.dispatcher, "functionPath") &&
  Predicate.isString(u.dispatcher.functionPath)

/** Whether `u` is an array of one-function triggers. */
export const isFunctionTriggers = (u: unknown): u is ReadonlyArray<FunctionTrigger> =>
  Array.isArray(u) && u.every(isFunctionTrigger)

/** How logs and errors name a trigger: its expressions. */
export const triggerName = (trigger: FunctionTrigger): string =>
  `trigger ${trigger.crons.map((expression) => JSON.stringify(expression)).join(", ")}`

/**
 * Every function path `crons` runs, in declaration order, with what declared
 * it; throws a `TypeError` for a value that is neither crons nor a trigger.
 */
export const declaredPaths = (crons: DeclaredCrons): ReadonlyArray<DeclaredPath> =>
  (Array.isArray(crons) ? crons as ReadonlyArray<unknown> : [crons]).flatMap((declared): ReadonlyArray<DeclaredPath> => {
    if (isCronJobs(declared)) {
      return declared.definitions.map((cron) => ({ functionPath: cron.functionPath, declaredBy: `cron "${cron.name}"` }))
    }
    if (isFunctionTrigger(declared)) {
      return [{ functionPath: declared.dispatcher.functionPath, declaredBy: triggerName(declared) }]
    }
    throw new TypeError("declared crons are a cronJobs() value or an array of createCronTrigger(...) triggers and cronJobs() values")
  })

/** The declared paths `hasHandler` does not know. */
export const unknownPaths = (
  declared: ReadonlyArray<DeclaredPath>,
  hasHandler: (functionPath: string) => boolean
): ReadonlyArray<DeclaredPath> => declared.filter((one) => !hasHandler(one.functionPath))

/** `no handler is registered for a:b (cron "x"), c:d (trigger "0 3 * * *")`. */
export const describeUnknown = (unknown: ReadonlyArray<DeclaredPath>): string =>
  `no handler is registered for ${unknown.map((one) => `${one.functionPath} (${one.declaredBy})`).join(", ")}`
