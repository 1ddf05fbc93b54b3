/**
 * A cron's schedule as the runtime holds it: an interval, or an expression
 * with its time zone and its parsed fields. The runtime checks and evaluates
 * the fields (`cronTime.ts`); parsing the text is the declaring side's work
 * (`CronSpec`), so a Worker that only schedules jobs carries no cron parser.
 */
import * as Schema from "effect/Schema"
import * as CronTime from "./cronTime.js"
import type { OwnTarget } from "./targets.js"

const values = (min: number, max: number) =>
  Schema.Array(Schema.Int.pipe(Schema.between(min, max))).pipe(Schema.maxItems(max - min + 1))

/** The fields of a cron expression, each field's allowed values with its special forms. */
export const CronFields = Schema.Struct({
  second: values(0, 59),
  minute: values(0, 59),
  hour: values(0, 23),
  dayOfMonth: values(1, 31),
  lastDayOfMonth: Schema.Boolean,
  month: values(1, 12),
  dayOfWeek: values(0, 6),
  lastWeekdays: values(0, 6),
  nthWeekday: Schema.Int.pipe(Schema.between(0, 5)),
  dayOfMonthWildcard: Schema.Boolean,
  dayOfWeekWildcard: Schema.Boolean,
  hourWildcard: Schema.Boolean
})

const Interval = Schema.TaggedStruct("Interval", {
  ms: Schema.Int.pipe(Schema.positive()),
  /** When a new (or rescheduled) interval cron first fires: one interval later (the default), or at once. */
  firstRun: Schema.optional(Schema.Literal("afterInterval", "immediately"))
})

/** When a cron fires: every `ms` milliseconds from its anchor, or on an expression in a time zone. */
export const CronSchedule = Schema.Union(
  Interval,
  Schema.TaggedStruct("Expression", { expression: Schema.String, timeZone: Schema.String, fields: CronFields })
)

/** A schedule as people read it: its interval, or its expression and time zone, without the fields. */
export const CronScheduleText = Schema.Union(
  Interval,
  Schema.TaggedStruct("Expression", { expression: Schema.String, timeZone: Schema.String })
)

export type CronSchedule = typeof CronSchedule.Type

/** One declared cron: its unique name, schedule, the job it runs and that job's payload (JSON text). */
export interface CronDefinition {
  readonly name: string
  readonly schedule: CronSchedule
  readonly functionPath: string
  readonly args: string
  /** The cron's own target: its job is a webhook or a Workflow's (`Webhook.make`, `Workflow.make`). */
  readonly own?: OwnTarget | undefined
}

/** The longest interval a cron may have. */
export const MAX_INTERVAL_MS = 366 * 24 * 3_600_000

/** The longest expression text a cron may have. */
export const MAX_EXPRESSION_LENGTH = 256

/** Why a schedule cannot run, if it cannot: an unknown zone, fields no date matches, an interval too long. */
export const problemOf = (schedule: CronSchedule): string | undefined => {
  if (schedule._tag === "Interval") return schedule.ms <= MAX_INTERVAL_MS ? undefined : "an interval may not exceed 366 days"
  if (schedule.expression.length > MAX_EXPRESSION_LENGTH) return `an expression is at most ${MAX_EXPRESSION_LENGTH} characters`
  if (!CronTime.isTimeZone(schedule.timeZone)) return `unknown time zone "${schedule.timeZone}"`
  const cron = CronTime.compile(schedule.fields)
  if (cron.nextSecond[0]! < 0 || cron.nextMinute[0]! < 0 || cron.nextHour[0]! < 0 || !CronTime.firesAtAll(cron)) {
    return `"${schedule.expression}": no date matches its day of month, month and day of week`
  }
  return undefined
}

/**
 * The first fire strictly after `after` (epoch ms). An interval counts from
 * `after`, which the engine passes as the previous scheduled time, so
 * intervals do not drift.
 */
export const nextAfter = (schedule: CronSchedule, after: number): number =>
  schedule._tag === "Interval"
    ? after + schedule.ms
    : CronTime.nextAfter(CronTime.compile(schedule.fields), schedule.timeZone, after)

/**
 * The first fire of a schedule declared (or changed) at `now`: an interval
 * with `firstRun: "immediately"` fires at `now`, every other schedule at its
 * first time after `now`.
 */
export const firstFireAt = (schedule: CronSchedule, now: number): number =>
  schedule._tag === "Interval" && schedule.firstRun === "immediately" ? now : nextAfter(schedule, now)

/**
 * The last fire at or before `at`, for a schedule whose fire `from` is known
 * to be at or before `at`: after downtime, the latest missed window. An
 * interval counts from `from`.
 */
export const latestAtOrBefore = (schedule: CronSchedule, from: number, at: number): number =>
  schedule._tag === "Interval"
    ? from + schedule.ms * Math.floor((at - from) / schedule.ms)
    : CronTime.latestAtOrBefore(CronTime.compile(schedule.fields), schedule.timeZone, from, at)
