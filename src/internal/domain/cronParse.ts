/**
 * Cron grammar, by cron-parser: an expression to its `Fields`. Used where
 * crons are declared (`cronJobs()`, codegen), never by the runtime, which
 * evaluates the fields a definition carries.
 */
import { CronExpressionParser } from "cron-parser"
import type { Fields } from "./cronTime.js"

const numbers = (values: ReadonlyArray<number | string>): Array<number> => [
  ...new Set(values.filter((value): value is number => typeof value === "number"))
].sort((a, b) => a - b)

/** The fields of `expression` (5 fields, or 6 with seconds first); throws cron-parser's Error for one it refuses. */
export const parse = (expression: string): Fields => {
  const { second, minute, hour, dayOfMonth, month, dayOfWeek } = CronExpressionParser.parse(expression, {
    strict: false
  }).fields
  return {
    second: numbers(second.values),
    minute: numbers(minute.values),
    hour: numbers(hour.values),
    dayOfMonth: numbers(dayOfMonth.values),
    lastDayOfMonth: dayOfMonth.hasLastChar,
    month: numbers(month.values),
    dayOfWeek: numbers(numbers(dayOfWeek.values).map((day) => day % 7)),
    lastWeekdays: dayOfWeek.hasLastChar
      ? numbers(dayOfWeek.values.map((day) => parseInt(String(day).charAt(0), 10) % 7))
      : [],
    nthWeekday: dayOfWeek.nthDay,
    dayOfMonthWildcard: dayOfMonth.isWildcard,
    dayOfWeekWildcard: dayOfWeek.isWildcard,
    hourWildcard: hour.isWildcard
  }
}
