/**
 * Code-first cron declarations: `cronJobs()` and its `interval`, `hourly`,
 * `daily`, `weekly`, `monthly` and `cron` entries, validated when declared,
 * and the next-fire rule every runtime uses.
 *
 * Rules (one each, tested): cron expressions have 5 fields, or 6 with seconds
 * first, in cron-parser's grammar; when both day-of-month and day-of-week are
 * restricted (neither is `*`) a day matching either fires; times are UTC
 * unless a time zone is given; a wall-clock time skipped by a daylight-saving
 * change fires at the offset before the gap (02:30 becomes 03:30), once even
 * where it meets another fire; a time that occurs twice fires once, at its
 * first occurrence, unless the hour field is `*`: an hourly pattern fires in
 * both copies of a repeated hour.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Either from "effect/Either"
import * as CronParse from "./internal/domain/cronParse.js"
import * as Domain from "./internal/domain/cronSchedule.js"
import * as CronTime from "./internal/domain/cronTime.js"
import { encodePayload } from "./internal/domain/payload.js"
import * as Job from "./Job.js"
import type { OwnTarget } from "./internal/domain/targets.js"

/**
 * A cron declaration was refused at authoring time: a malformed expression,
 * an impossible date, an unknown time zone, a duplicate name, an interval
 * with zero or several units, or a payload its job refuses.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidCron extends Data.TaggedError("InvalidCron")<{
  /** The cron's name (or the expression, for `assertValidCronExpression`). */
  readonly cron: string
  readonly reason: string
}> {
  override get message(): string {
    return `invalid cron "${this.cron}": ${this.reason}`
  }
}

/**
 * When a cron fires: every `ms` milliseconds from its anchor, or on a cron
 * expression in a time zone. An expression carries its parsed `fields`,
 * which the scheduler evaluates (build one with `expression`).
 *
 * @since 0.1.0
 * @category models
 */
export const CronSchedule = Domain.CronSchedule

/**
 * @since 0.1.0
 * @category models
 */
export type CronSchedule = typeof CronSchedule.Type

/**
 * A schedule on a cron expression: its text, time zone and parsed fields.
 *
 * @since 0.1.0
 * @category models
 */
export type ExpressionSchedule = Extract<CronSchedule, { readonly _tag: "Expression" }>

/**
 * The parsed fields of a cron expression: each field's allowed values, with
 * the flags of its special forms (`L`, `#`, `*`).
 *
 * @since 0.1.0
 * @category models
 */
export const CronFields = Domain.CronFields

/**
 * One declared cron: its unique name, schedule, the job it runs and that
 * job's payload (JSON text, checked against the job's Schema).
 *
 * @since 0.1.0
 * @category models
 */
export type CronDefinition = Domain.CronDefinition

/** The schedule of `text` in `timeZone`, or why there is none. */
const parseSchedule = (text: string, timeZone = "UTC"): Either.Either<ExpressionSchedule, string> => {
  const expression = text.trim()
  const count = expression.split(/\s+/).length
  if (count !== 5 && count !== 6) {
    return Either.left(`"${expression}" has ${count} fields; a cron expression has 5, or 6 with seconds first`)
  }
  if (!CronTime.isTimeZone(timeZone)) return Either.left(`unknown time zone "${timeZone}"`)
  let fields: CronTime.Fields
  try {
    fields = CronParse.parse(expression)
  } catch (error) {
    return Either.left(`"${expression}": ${error instanceof Error ? error.message : String(error)}`)
  }
  const schedule: ExpressionSchedule = { _tag: "Expression", expression, timeZone, fields }
  const problem = Domain.problemOf(schedule)
  return problem === undefined ? Either.right(schedule) : Either.left(problem)
}

/** Why `expression` is not a valid cron expression (in `timeZone`), if it is not. */
const problemOf = (expression: string, timeZone?: string): string | undefined =>
  Either.match(parseSchedule(expression, timeZone), { onLeft: (problem) => problem, onRight: () => undefined })

/**
 * The schedule of a cron expression (5 fields, or 6 with seconds first) in
 * an IANA time zone (default UTC), parsed now; throws `InvalidCron` with the
 * reason when it is refused.
 *
 * @since 0.1.0
 * @category constructors
 */
export const expression = (text: string, timeZone?: string): ExpressionSchedule =>
  Either.getOrThrowWith(parseSchedule(text, timeZone), (reason) => new InvalidCron({ cron: text, reason }))

/**
 * Whether `expression` is a cron expression this library runs (5 fields, or
 * 6 with seconds; an impossible date such as `0 0 31 2 *` is not).
 *
 * @since 0.1.0
 * @category validation
 */
export const isValidCronExpression = (expression: string, timeZone?: string): boolean =>
  problemOf(expression, timeZone) === undefined

/**
 * Throws `InvalidCron` with the reason when `expression` is not valid.
 *
 * @since 0.1.0
 * @category validation
 */
export const assertValidCronExpression = (expression: string, timeZone?: string): void => {
  const problem = problemOf(expression, timeZone)
  if (problem !== undefined) throw new InvalidCron({ cron: expression, reason: problem })
}

/**
 * The first fire strictly after `after` (epoch ms). An interval counts from
 * `after`, which the engine passes as the previous scheduled time, so
 * intervals do not drift.
 *
 * @since 0.1.0
 * @category next fire
 */
export const nextAfter: (schedule: CronSchedule, after: number) => number = Domain.nextAfter

const DAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"] as const

/**
 * The day-of-week field with names: Cloudflare numbers weekdays from Sunday =
 * 1 where cron-parser (and Vixie cron) use Sunday = 0, so numbers would shift
 * every weekly trigger by a day. Names mean the same in both.
 */
const triggerDaysOfWeek = (fields: CronTime.Fields, field: string): string => {
  if (field === "*" || field === "?") return field
  const days = fields.dayOfWeek
  return days.length === 7 ? "*" : days.map((day) => DAY_NAMES[day]!).join(",")
}

/**
 * The last fire at or before `at`, for a schedule whose fire `from` is known
 * to be at or before `at`: after downtime, the latest missed window. An
 * interval counts from `from`.
 *
 * @since 0.1.0
 * @category next fire
 */
export const latestAtOrBefore: (schedule: CronSchedule, from: number, at: number) => number = Domain.latestAtOrBefore

/**
 * The cron expression a schedule stands for, as a Cloudflare Cron Trigger
 * (UTC, 5 fields): an error for what a trigger cannot express (sub-minute or
 * uneven intervals, seconds, other time zones).
 *
 * @since 0.1.0
 * @category codegen
 */
export const toCronTrigger = (schedule: CronSchedule): Either.Either<string, string> => {
  if (schedule._tag === "Expression") {
    if (schedule.timeZone !== "UTC") return Either.left(`Cron Triggers run in UTC; this cron is in ${schedule.timeZone}`)
    const fields = schedule.expression.trim().split(/\s+/)
    if (fields.length === 6) return Either.left("Cron Triggers have no seconds field")
    if (/[#L]/i.test(fields[4] ?? "")) return Either.left("an nth or last weekday (# or L) is not translated for Cron Triggers")
    return Either.right([...fields.slice(0, 4), triggerDaysOfWeek(schedule.fields, fields[4]!)].join(" "))
  }
  if (schedule.firstRun === "immediately") return Either.left("a Cron Trigger cannot fire when declared (firstRun: \"immediately\")")
  const minutes = schedule.ms / 60_000
  if (!Number.isInteger(minutes)) return Either.left(`an interval of ${schedule.ms} ms is not whole minutes`)
  if (minutes < 60 && 60 % minutes === 0) return Either.right(minutes === 1 ? "* * * * *" : `*/${minutes} * * * *`)
  const hours = minutes / 60
  if (Number.isInteger(hours) && hours < 24 && 24 % hours === 0) {
    return Either.right(hours === 1 ? "0 * * * *" : `0 */${hours} * * *`)
  }
  if (minutes === 24 * 60) return Either.right("0 0 * * *")
  return Either.left(`an interval of ${minutes} minutes does not divide an hour or a day evenly`)
}

/**
 * Exactly one unit: `{ seconds }`, `{ minutes }` or `{ hours }`.
 *
 * @since 0.1.0
 * @category models
 */
export type IntervalSpec =
  | { readonly seconds: number; readonly minutes?: never; readonly hours?: never }
  | { readonly minutes: number; readonly seconds?: never; readonly hours?: never }
  | { readonly hours: number; readonly seconds?: never; readonly minutes?: never }

/**
 * @since 0.1.0
 * @category models
 */
export type DayOfWeek = "sunday" | "monday" | "tuesday" | "wednesday" | "thursday" | "friday" | "saturday"

const DAYS: ReadonlyArray<DayOfWeek> = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]

/**
 * Options of a cron entry.
 *
 * @since 0.1.0
 * @category models
 */
export interface CronOptions {
  /** An IANA time zone for a raw `cron` expression (default UTC). */
  readonly timeZone?: string | undefined
}

/**
 * Options of an `interval` entry. `firstRun`: when a new (or rescheduled)
 * interval cron first fires: `"afterInterval"` (the default, one interval
 * after it is declared, as no other cron fires when declared) or
 * `"immediately"` (when declared, then every interval: Convex's behaviour).
 *
 * @since 0.1.0
 * @category models
 */
export interface IntervalOptions {
  readonly firstRun?: "afterInterval" | "immediately" | undefined
}

/**
 * The builder of `cronJobs()`: each entry is validated as it is declared
 * and throws `InvalidCron` (or the job's `InvalidPayload`) when refused.
 *
 * @since 0.1.0
 * @category models
 */
export interface CronJobs {
  readonly definitions: ReadonlyArray<CronDefinition>
  readonly interval: <R extends Job.Ref>(
    name: string,
    every: IntervalSpec,
    job: R,
    payload: Job.Payload<R>,
    options?: IntervalOptions
  ) => CronJobs
  readonly hourly: <R extends Job.Ref>(
    name: string,
    at: { readonly minuteUTC: number },
    job: R,
    payload: Job.Payload<R>
  ) => CronJobs
  readonly daily: <R extends Job.Ref>(
    name: string,
    at: { readonly hourUTC: number; readonly minuteUTC: number },
    job: R,
    payload: Job.Payload<R>
  ) => CronJobs
  readonly weekly: <R extends Job.Ref>(
    name: string,
    at: { readonly dayOfWeek: DayOfWeek; readonly hourUTC: number; readonly minuteUTC: number },
    job: R,
    payload: Job.Payload<R>
  ) => CronJobs
  /** On `day` (1 to 31) of each month; months without that day are skipped. */
  readonly monthly: <R extends Job.Ref>(
    name: string,
    at: { readonly day: number; readonly hourUTC: number; readonly minuteUTC: number },
    job: R,
    payload: Job.Payload<R>
  ) => CronJobs
  /** A raw 5- or 6-field expression, in UTC or the given time zone. */
  readonly cron: <R extends Job.Ref>(
    name: string,
    expression: string,
    job: R,
    payload: Job.Payload<R>,
    options?: CronOptions
  ) => CronJobs
}

const NAME = /^[\w .:\-/]{1,128}$/

const inRange = (name: string, label: string, value: number, min: number, max: number) => {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidCron({ cron: name, reason: `${label} must be an integer from ${min} to ${max}, got ${value}` })
  }
  return value
}

const intervalMs = (name: string, every: IntervalSpec): number => {
  const units = (["seconds", "minutes", "hours"] as const).filter((unit) => every[unit] !== undefined)
  if (units.length !== 1) {
    throw new InvalidCron({ cron: name, reason: `an interval takes exactly one of seconds, minutes or hours, got ${units.length}` })
  }
  const unit = units[0]!
  const value = every[unit]!
  if (!Number.isInteger(value) || value < 1) {
    throw new InvalidCron({ cron: name, reason: `${unit} must be a positive integer, got ${value}` })
  }
  const ms = value * (unit === "seconds" ? 1_000 : unit === "minutes" ? 60_000 : 3_600_000)
  if (ms > Domain.MAX_INTERVAL_MS) throw new InvalidCron({ cron: name, reason: "an interval may not exceed 366 days" })
  return ms
}

/**
 * Starts a set of cron declarations, written as a chain of calls:
 *
 * ```ts
 * const crons = cronJobs()
 * crons.interval("clear presence", { minutes: 30 }, ClearPresence, {})
 * crons.daily("send digest", { hourUTC: 9, minuteUTC: 0 }, SendDigest, {})
 * crons.cron("custom", "0 9 * * 1-5", Standup, {}, { timeZone: "Europe/London" })
 * export default crons
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const cronJobs = (): CronJobs => {
  const definitions: Array<CronDefinition> = []

  /** A cron's own target, from its job's reference: a Workflow's, or a webhook's with its URL. */
  const ownOf = (name: string, job: Job.Ref): { readonly own?: OwnTarget } => {
    if (typeof job === "string") return {}
    if (job.workflow !== undefined) return { own: { workflow: job.workflow } }
    if (job.webhook === undefined) return {}
    const { url, ...rest } = job.webhook
    if (url === undefined) throw new InvalidCron({ cron: name, reason: `the webhook ${job.path} has no URL: a cron needs one` })
    return { own: { webhook: { url, ...rest } } }
  }

  const add = (name: string, schedule: Either.Either<CronSchedule, string>, job: Job.Ref, payload: unknown): CronJobs => {
    if (!NAME.test(name)) {
      throw new InvalidCron({ cron: name, reason: "a name is 1 to 128 letters, digits, spaces or . : - / _" })
    }
    if (definitions.some((definition) => definition.name === name)) {
      throw new InvalidCron({ cron: name, reason: "a cron with this name is already declared" })
    }
    if (Either.isLeft(schedule)) throw new InvalidCron({ cron: name, reason: schedule.left })
    const args = encodePayload(job, payload)
    if (Either.isLeft(args)) throw args.left
    definitions.push({ name, schedule: schedule.right, functionPath: Job.pathOf(job), args: args.right, ...ownOf(name, job) })
    return builder
  }

  const utc = (text: string) => parseSchedule(text)

  /** "<minute> <hour>" of a UTC wall-clock time, checked. */
  const clock = (name: string, at: { readonly hourUTC: number; readonly minuteUTC: number }) =>
    `${inRange(name, "minuteUTC", at.minuteUTC, 0, 59)} ${inRange(name, "hourUTC", at.hourUTC, 0, 23)}`

  const builder: CronJobs = {
    definitions,
    interval: (name, every, job, payload, options) => {
      const firstRun = options?.firstRun ?? "afterInterval"
      if (firstRun !== "afterInterval" && firstRun !== "immediately") {
        throw new InvalidCron({ cron: name, reason: `firstRun must be "afterInterval" or "immediately", got ${String(firstRun)}` })
      }
      const ms = intervalMs(name, every)
      return add(name, Either.right(firstRun === "immediately" ? { _tag: "Interval", ms, firstRun } : { _tag: "Interval", ms }), job, payload)
    },
    hourly: (name, at, job, payload) =>
      add(name, utc(`${inRange(name, "minuteUTC", at.minuteUTC, 0, 59)} * * * *`), job, payload),
    daily: (name, at, job, payload) => add(name, utc(`${clock(name, at)} * * *`), job, payload),
    weekly: (name, at, job, payload) => {
      const day = DAYS.indexOf(at.dayOfWeek)
      if (day < 0) throw new InvalidCron({ cron: name, reason: `dayOfWeek must be one of ${DAYS.join(", ")}` })
      return add(name, utc(`${clock(name, at)} * * ${day}`), job, payload)
    },
    monthly: (name, at, job, payload) =>
      add(name, utc(`${clock(name, at)} ${inRange(name, "day", at.day, 1, 31)} * *`), job, payload),
    cron: (name, text, job, payload, options) =>
      add(name, parseSchedule(text, options?.timeZone), job, payload)
  }
  return builder
}
