/**
 * The Cron Triggers path: crons compiled to the Worker's `triggers.crons`,
 * and a `scheduled()` dispatcher that turns each trigger into jobs of the
 * `SchedulerDO`, which runs them through the usual dispatch round trip.
 * Crons come as a `cronJobs()` value (`createCronTrigger({ crons, ... })`),
 * or one function per trigger (`createCronTrigger({ schedule, fn })` or
 * `({ cron, functionPath })`), served as an array by `serveCronTriggers`.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as CronSpec from "../CronSpec.js"
import { type FunctionTrigger, isFunctionTrigger } from "../internal/domain/declared.js"
import { fnv1a } from "../internal/domain/names.js"
import { encodePayload } from "../internal/domain/payload.js"
import { triggerPlan } from "../internal/domain/triggers.js"
import * as Job from "../Job.js"
import * as Scheduler from "../Scheduler.js"
import { InvalidOptions } from "../SchedulerError.js"
import { runPromise, runSyncOrThrow } from "./internal/promise.js"

export type {
  /**
   * One function on one Cron Trigger, as `createCronTrigger({ schedule, fn })`
   * or `createCronTrigger({ cron, functionPath })` gives it: `crons` (the one
   * trigger expression), `wranglerJsonc`, and `dispatcher`, the data of what
   * each fire schedules (`functionPath`, and `args` as the job's Schema
   * encodes them). Serve an array of them with `serveCronTriggers`.
   *
   * @since 0.1.0
   * @category models
   */
  FunctionTrigger
} from "../internal/domain/declared.js"

/**
 * What the Worker's `scheduled()` handler calls with its controller: it
 * schedules a job, at `scheduledTime`, for every cron or trigger whose
 * expression is `controller.cron`, and says what it scheduled. A cron whose
 * previous run is still pending or in progress is skipped: its job key is
 * taken, so it is reported `Existing` (and logged).
 *
 * @since 0.1.0
 * @category models
 */
export type CronDispatcher = (controller: {
  readonly cron: string
  readonly scheduledTime: number
}) => Promise<ReadonlyArray<{ readonly name: string; readonly scheduled: Scheduler.Scheduled }>>

/**
 * What `createCronTrigger({ crons, ... })` gives: the trigger expressions, the
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
  readonly dispatcher: CronDispatcher
}

const THE_SHAPES =
  "createCronTrigger takes one of { crons, namespace, binding | originUrl }, { schedule, fn, args? } and { cron, functionPath, args? }"

/** The type of a field that belongs to another shape of `createCronTrigger`'s options: the error says which shapes there are. */
type OtherShape = typeof THE_SHAPES

/**
 * Options of `createCronTrigger` for the crons of a `cronJobs()` value.
 *
 * @since 0.1.0
 * @category models
 */
export type CronsTriggerOptions = Scheduler.LiveOptions & {
  readonly crons: CronSpec.CronJobs
  readonly schedule?: OtherShape
  readonly fn?: OtherShape
  readonly cron?: OtherShape
  readonly functionPath?: OtherShape
  readonly args?: OtherShape
}

/** `args` may be left out when the empty object is a payload of the job (the default). */
type ArgsOption<Payload> = {} extends Payload ? { readonly args?: Payload | undefined } : { readonly args: Payload }

/**
 * Options of `createCronTrigger` for one `Job` on one trigger: the
 * expression (UTC, 5 fields), the job, and its payload (optional when the
 * job takes an empty one).
 *
 * @since 0.1.0
 * @category models
 */
export type ScheduleTriggerOptions<J extends Job.Any> =
  & {
    readonly schedule: string
    readonly fn: J
    readonly cron?: OtherShape
    readonly functionPath?: OtherShape
    readonly crons?: OtherShape
  }
  & ArgsOption<Job.Payload<J>>

/**
 * Options of `createCronTrigger` for one function path on one trigger: the
 * expression (UTC, 5 fields), the path, and its JSON payload (default `{}`).
 *
 * @since 0.1.0
 * @category models
 */
export interface PathTriggerOptions<Path extends string = string> {
  readonly cron: string
  readonly functionPath: Path
  readonly args?: unknown
  readonly schedule?: OtherShape
  readonly fn?: OtherShape
  readonly crons?: OtherShape
}

/**
 * `createCronTrigger`'s three shapes.
 *
 * @since 0.1.0
 * @category models
 */
export interface CreateCronTrigger {
  (options: CronsTriggerOptions): CronTrigger
  <J extends Job.Any>(options: ScheduleTriggerOptions<J>): FunctionTrigger<J["path"], Schema.Schema.Encoded<J["payloadSchema"]>>
  <const Path extends string>(options: PathTriggerOptions<Path>): FunctionTrigger<Path>
}

/** A cron or trigger as its dispatcher schedules it. */
interface Planned {
  readonly name: string
  readonly key: string
  readonly functionPath: string
  readonly payload: unknown
}

/** The one dispatcher of both forms: a job for each planned run of `controller.cron`, keyed so a live run is not doubled. */
const dispatcherOf = (
  options: Scheduler.LiveOptions,
  byExpression: ReadonlyMap<string, ReadonlyArray<Planned>>
): CronDispatcher => {
  const scheduler = runSyncOrThrow(Scheduler.make(options))
  return (controller) => {
    const due = byExpression.get(controller.cron) ?? []
    return runPromise(
      scheduler.submit(due.map((run) => ({
        job: run.functionPath,
        payload: run.payload,
        at: controller.scheduledTime,
        options: { key: run.key, retry: { maxAttempts: 1 }, deadLetter: false }
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

const wranglerJsoncOf = (expressions: ReadonlyArray<string>) => `"triggers": { "crons": ${JSON.stringify(expressions)} }`

const fromCrons = (options: CronsTriggerOptions): CronTrigger => {
  const plan = Either.getOrThrowWith(triggerPlan(options.crons), (refused) => refused)
  const expressions = [...plan.keys()].sort()
  const byExpression = new Map(expressions.map((expression) => [
    expression,
    plan.get(expression)!.map((cron): Planned => ({
      name: cron.name,
      key: `cron-trigger:${cron.name}`,
      functionPath: cron.functionPath,
      payload: JSON.parse(cron.args)
    }))
  ]))
  return { crons: expressions, wranglerJsonc: wranglerJsoncOf(expressions), dispatcher: dispatcherOf(options, byExpression) }
}

/** The Cron Trigger expression of `text` (UTC, 5 fields, weekdays by name), or `InvalidCron` thrown with why not. */
const triggerExpression = (text: unknown): string => {
  if (typeof text !== "string") throw new CronSpec.InvalidCron({ cron: String(text), reason: "a cron expression is a string" })
  return Either.getOrThrowWith(
    CronSpec.toCronTrigger(CronSpec.expression(text)),
    (reason) => new CronSpec.InvalidCron({ cron: text, reason })
  )
}

const isFunctionPath = Schema.is(Job.FunctionPath)

const oneFunction = (text: unknown, ref: Job.Ref, args: unknown): FunctionTrigger => {
  const expression = triggerExpression(text)
  const encoded = encodePayload(ref, args === undefined ? {} : args)
  if (Either.isLeft(encoded)) throw encoded.left
  return {
    crons: [expression],
    wranglerJsonc: wranglerJsoncOf([expression]),
    dispatcher: { functionPath: Job.pathOf(ref), args: JSON.parse(encoded.right) }
  }
}

const SHAPES = {
  crons: ["crons"],
  schedule: ["schedule", "fn", "args"],
  path: ["cron", "functionPath", "args"]
} as const

/** Which shape `options` has, or `InvalidOptions` thrown naming the fields that do not go together. */
const shapeOf = (options: Readonly<Record<string, unknown>>): keyof typeof SHAPES => {
  const has = (field: string) => options[field] !== undefined
  const present = (["crons", "schedule", "fn", "cron", "functionPath", "args"] as const).filter(has)
  const shapes = (Object.keys(SHAPES) as Array<keyof typeof SHAPES>).filter((shape) =>
    present.every((field) => (SHAPES[shape] as ReadonlyArray<string>).includes(field)) &&
    SHAPES[shape].filter((field) => field !== "args").every(has)
  )
  if (shapes.length !== 1) {
    throw new InvalidOptions({
      reason: `${THE_SHAPES}; got ${present.length === 0 ? "none of their fields" : present.join(", ")}`
    })
  }
  return shapes[0]!
}

/**
 * Declares Cron Triggers, in one of three shapes.
 *
 * For the crons of a `cronJobs()` value, with the dispatcher over the
 * `SchedulerDO` (throws a `CodegenError` naming every schedule no trigger
 * can express: sub-minute or uneven intervals, seconds, time zones):
 *
 * ```ts
 * const trigger = createCronTrigger({ crons, namespace: env.SCHEDULER, binding: "SELF" })
 * export default { fetch, scheduled: (controller) => trigger.dispatcher(controller) }
 * ```
 *
 * For one function, by its `Job` (`args` typed by its payload, optional when
 * it takes an empty one) or by its function path (`args` JSON, default
 * `{}`), giving data (`{ crons, wranglerJsonc, dispatcher: { functionPath, args } }`)
 * to serve with `serveCronTriggers`:
 *
 * ```ts
 * export const triggers = [
 *   createCronTrigger({ schedule: "0 3 * * *", fn: CleanupOldMessages, args: { days: 30 } }),
 *   createCronTrigger({ cron: "*\/10 * * * *", functionPath: "presence:sweep" })
 * ]
 * ```
 *
 * The expression is checked now: a Cron Trigger is 5 fields in UTC, and
 * anything else throws `InvalidCron` (a malformed expression, an impossible
 * date, a seconds field, an nth or last weekday); so does a payload its job
 * refuses (`InvalidPayload`). Weekdays are written by name (`0 3 * * MON`):
 * Cloudflare counts Sunday as 1 where cron counts it as 0. Fields of two
 * shapes together are a type error, and throw `InvalidOptions`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const createCronTrigger: CreateCronTrigger = ((given: object) => {
  const options = given as Readonly<Record<string, unknown>>
  switch (shapeOf(options)) {
    case "crons":
      return fromCrons(options as unknown as CronsTriggerOptions)
    case "schedule":
      if (!Job.isJob(options.fn)) {
        throw new InvalidOptions({ reason: "fn is a Job made with Job.make; for a function path give { cron, functionPath }" })
      }
      return oneFunction(options.schedule, options.fn, options.args)
    case "path":
      if (!isFunctionPath(options.functionPath)) {
        throw new InvalidOptions({ reason: `"${String(options.functionPath)}" is not a function path of the form "namespace:function"` })
      }
      return oneFunction(options.cron, options.functionPath, options.args)
  }
}) as CreateCronTrigger

/** A stable 8-digit hex digest of `text`: tells apart triggers of one function. */
const digest = (text: string): string => fnv1a(text).toString(16).padStart(8, "0")

/**
 * The `scheduled()` handler of one-function triggers (`createCronTrigger({ schedule, fn })`
 * or `({ cron, functionPath })`): on each fire it schedules, into the
 * `SchedulerDO` that `options` name, a job for every trigger whose
 * expression is `controller.cron`, run as the `{ crons }` form runs its
 * crons: at `scheduledTime`, one attempt, and skipped (reported `Existing`
 * and logged) while the trigger's previous run is still pending or in
 * progress. Each trigger's job key is `cron-trigger:<functionPath>#<digest>`,
 * the digest of its expression and `args`; its `name` in the answer is
 * `<functionPath> on "<expression>"`. Throws `InvalidOptions` for bad
 * `options` or an element that is not such a trigger.
 *
 * ```ts
 * const scheduled = serveCronTriggers(triggers, { namespace: env.SCHEDULER, binding: "SELF" })
 * export default { fetch, scheduled: async (controller) => void (await scheduled(controller)) }
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const serveCronTriggers = (
  triggers: ReadonlyArray<FunctionTrigger>,
  options: Scheduler.LiveOptions
): CronDispatcher => {
  const byExpression = new Map<string, Array<Planned>>()
  triggers.forEach((trigger, i) => {
    if (!isFunctionTrigger(trigger)) {
      throw new InvalidOptions({
        reason: `serveCronTriggers takes triggers of createCronTrigger({ schedule, fn }) or ({ cron, functionPath }); element ${i} is not one`
      })
    }
    const { args, functionPath } = trigger.dispatcher
    for (const expression of trigger.crons) {
      const run: Planned = {
        name: `${functionPath} on "${expression}"`,
        key: `cron-trigger:${functionPath}#${digest(`${expression}\n${JSON.stringify(args)}`)}`,
        functionPath,
        payload: args
      }
      byExpression.set(expression, [...(byExpression.get(expression) ?? []), run])
    }
  })
  return dispatcherOf(options, byExpression)
}
