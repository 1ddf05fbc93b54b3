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
import { CronExpressionParser } from "cron-parser"
import { Data, Either, Schema } from "effect"
import * as CronTime from "./internal/domain/cronTime.js"
import { encodePayload } from "./internal/domain/payload.js"
import * as Job from "./Job.js"

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
 * expression in a time zone.
 *
 * @since 0.1.0
 * @category models
 */
export const CronSchedule = Schema.Union(
  Schema.TaggedStruct("Interval", { ms: Schema.Int.pipe(Schema.positive()) }),
  Schema.TaggedStruct("Expression", { expression: Schema.String, timeZone: Schema.String })
)

/**
 * @since 0.1.0
 * @category models
 */
export type CronSchedule = typeof CronSchedule.Type

/**
 * One declared cron: its unique name, schedule, the job it runs and that
 * job's payload (JSON text, checked against the job's Schema).
 *
 * @since 0.1.0
 * @category models
 */
export interface CronDefinition {
  readonly name: string
  readonly schedule: CronSchedule
  readonly functionPath: string
  readonly args: string
}

/** Why `expression` is not a valid cron expression (in `timeZone`), if it is not. */
const problemOf = (expression: string, timeZone = "UTC"): string | undefined => {
  const fields = expression.trim().split(/\s+/).length
  if (fields !== 5 && fields !== 6) return `"${expression}" has ${fields} fields; a cron expression has 5, or 6 with seconds first`
  if (!CronTime.isTimeZone(timeZone)) return `unknown time zone "${timeZone}"`
  let cron: CronTime.Cron
  try {
    cron = CronTime.compile(expression)
  } catch (error) {
    return `"${expression}": ${error instanceof Error ? error.message : String(error)}`
  }
  return CronTime.firesAtAll(cron) ? undefined : `"${expression}": no date matches its day of month, month and day of week`
}

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
export const nextAfter = (schedule: CronSchedule, after: number): number =>
  schedule._tag === "Interval"
    ? after + schedule.ms
    : CronTime.nextAfter(schedule.expression, schedule.timeZone, after)

const DAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"] as const

/**
 * The day-of-week field with names: Cloudflare numbers weekdays from Sunday =
 * 1 where cron-parser (and Vixie cron) use Sunday = 0, so numbers would shift
 * every weekly trigger by a day. Names mean the same in both.
 */
const triggerDaysOfWeek = (expression: string, field: string): string => {
  if (field === "*" || field === "?") return field
  const days = [
    ...new Set(CronExpressionParser.parse(expression, { strict: false }).fields.dayOfWeek.values.map((day) => Number(day) % 7))
  ]
  return days.length === 7 ? "*" : days.sort((a, b) => a - b).map((day) => DAY_NAMES[day]!).join(",")
}

/**
 * The last fire at or before `at`, for a schedule whose fire `from` is known
 * to be at or before `at`: after downtime, the latest missed window. An
 * interval counts from `from`.
 *
 * @since 0.1.0
 * @category next fire
 */
export const latestAtOrBefore = (schedule: CronSchedule, from: number, at: number): number =>
  schedule._tag === "Interval"
    ? from + schedule.ms * Math.floor((at - from) / schedule.ms)
    : CronTime.latestAtOrBefore(schedule.expression, schedule.timeZone, from, at)

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
    try {
      return Either.right([...fields.slice(0, 4), triggerDaysOfWeek(schedule.expression, fields[4]!)].join(" "))
    } catch (error) {
      return Either.left(error instanceof Error ? error.message : String(error))
    }
  }
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
 * The builder of `cronJobs()`: each entry is validated as it is declared
 * and throws `InvalidCron` (or the job's `InvalidPayload`) when refused.
 *
 * @since 0.1.0
 * @category models
 */
export interface CronJobs {
  readonly definitions: ReadonlyArray<CronDefinition>
  readonly interval: <R extends Job.Ref>(name: string, every: IntervalSpec, job: R, payload: Job.Payload<R>) => CronJobs
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
  if (ms > 366 * 24 * 3_600_000) throw new InvalidCron({ cron: name, reason: "an interval may not exceed 366 days" })
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

  const add = (name: string, schedule: CronSchedule, job: Job.Ref, payload: unknown): CronJobs => {
    if (!NAME.test(name)) {
      throw new InvalidCron({ cron: name, reason: "a name is 1 to 128 letters, digits, spaces or . : - / _" })
    }
    if (definitions.some((definition) => definition.name === name)) {
      throw new InvalidCron({ cron: name, reason: "a cron with this name is already declared" })
    }
    if (schedule._tag === "Expression") {
      const problem = problemOf(schedule.expression, schedule.timeZone)
      if (problem !== undefined) throw new InvalidCron({ cron: name, reason: problem })
    }
    const args = encodePayload(job, payload)
    if (Either.isLeft(args)) throw args.left
    definitions.push({ name, schedule, functionPath: Job.pathOf(job), args: args.right })
    return builder
  }

  const expression = (text: string) => ({ _tag: "Expression" as const, expression: text, timeZone: "UTC" })

  /** "<minute> <hour>" of a UTC wall-clock time, checked. */
  const clock = (name: string, at: { readonly hourUTC: number; readonly minuteUTC: number }) =>
    `${inRange(name, "minuteUTC", at.minuteUTC, 0, 59)} ${inRange(name, "hourUTC", at.hourUTC, 0, 23)}`

  const builder: CronJobs = {
    definitions,
    interval: (name, every, job, payload) =>
      add(name, { _tag: "Interval", ms: intervalMs(name, every) }, job, payload),
    hourly: (name, at, job, payload) =>
      add(name, expression(`${inRange(name, "minuteUTC", at.minuteUTC, 0, 59)} * * * *`), job, payload),
    daily: (name, at, job, payload) => add(name, expression(`${clock(name, at)} * * *`), job, payload),
    weekly: (name, at, job, payload) => {
      const day = DAYS.indexOf(at.dayOfWeek)
      if (day < 0) throw new InvalidCron({ cron: name, reason: `dayOfWeek must be one of ${DAYS.join(", ")}` })
      return add(name, expression(`${clock(name, at)} * * ${day}`), job, payload)
    },
    monthly: (name, at, job, payload) =>
      add(name, expression(`${clock(name, at)} ${inRange(name, "day", at.day, 1, 31)} * *`), job, payload),
    cron: (name, text, job, payload, options) =>
      add(name, { _tag: "Expression", expression: text.trim(), timeZone: options?.timeZone ?? "UTC" }, job, payload)
  }
  return builder
}
