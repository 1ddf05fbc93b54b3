import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import { InvalidTime } from "../../SchedulerError.js"

/** The longest delay between two attempts of a job (5 × 365 days); also what the `SchedulerDO` takes as "far ahead". */
export const MAX_DELAY: Duration.Duration = Duration.days(365 * 5)
export const MAX_DELAY_MS = Duration.toMillis(MAX_DELAY)

/** How many calendar years ahead a job may be scheduled. */
export const MAX_YEARS_AHEAD = 5

/** The last `latestRunAt`: a batch of jobs checks one `now` many times, so the calendar arithmetic is done once for it. */
let latest = { now: Number.NaN, at: Number.NaN }

/** The latest time a job may be scheduled for at `now`: five calendar years later, in UTC. */
export const latestRunAt = (now: number): number => {
  if (now !== latest.now) latest = { now, at: DateTime.toEpochMillis(DateTime.add(DateTime.unsafeMake(now), { years: MAX_YEARS_AHEAD })) }
  return latest.at
}

/** Why a time past `latestRunAt` is refused. */
export const TOO_FAR = `more than ${MAX_YEARS_AHEAD} calendar years ahead`

const DURATION_STRING = /^\d+(?:\.\d+)?\s+(?:nanos?|micros?|millis?|seconds?|minutes?|hours?|days?|weeks?)$/

const isNonNegativeFinite = (n: unknown): n is number => Predicate.isNumber(n) && Number.isFinite(n) && n >= 0

const toDuration = (input: unknown): Either.Either<Duration.Duration, string> => {
  if (Duration.isDuration(input)) return Either.right(input)
  if (Predicate.isNumber(input)) {
    if (!Number.isFinite(input)) return Either.left(`${input} is not a finite number of milliseconds`)
    return input < 0 ? Either.left("a delay cannot be negative") : Either.right(Duration.millis(input))
  }
  if (Predicate.isBigInt(input)) {
    return input < 0n ? Either.left("a delay cannot be negative") : Either.right(Duration.nanos(input))
  }
  if (Predicate.isString(input)) {
    return DURATION_STRING.test(input.trim())
      ? Either.right(Duration.decode(input.trim() as Duration.DurationInput))
      : Either.left(`not a duration such as "5 minutes"${input.trim().startsWith("-") ? " (delays cannot be negative)" : ""}`)
  }
  if (Array.isArray(input) && input.length === 2 && input.every(isNonNegativeFinite)) {
    return Either.right(Duration.decode(input as [number, number]))
  }
  return Either.left("not a Duration, a number of milliseconds or a string such as \"5 minutes\"")
}

/** A delay, or why it is not one: a `DurationInput` that is finite and not negative. */
const toDelay = (input: unknown): Either.Either<Duration.Duration, string> =>
  Either.filterOrLeft(toDuration(input), Duration.isFinite, () => "an infinite delay never fires")

/** A delay: a `DurationInput` that is finite and not negative. */
export const Delay = Schema.transformOrFail(Schema.Unknown, Schema.DurationFromSelf, {
  strict: true,
  decode: (input, _, ast) =>
    Either.match(toDelay(input), {
      onLeft: (reason) => ParseResult.fail(new ParseResult.Type(ast, input, reason)),
      onRight: ParseResult.succeed
    }),
  encode: ParseResult.succeed
}).annotations({ identifier: "Delay" })

/** A fire time in epoch milliseconds, or why it is not one. */
const toInstant = (input: unknown): Either.Either<number, string> => {
  if (isNonNegativeFinite(input)) return Either.right(input)
  if (DateTime.isDateTime(input)) return Either.right(DateTime.toEpochMillis(input))
  if (input instanceof Date) return Number.isNaN(input.getTime()) ? Either.left("an invalid Date") : Either.right(input.getTime())
  return Either.left(
    Predicate.isNumber(input) ? "epoch milliseconds must be a finite number, not negative" : "not a DateTime, a Date or epoch milliseconds"
  )
}

/** A fire time: a `DateTime`, a valid `Date`, or epoch milliseconds; as epoch milliseconds. */
export const Instant = Schema.transformOrFail(Schema.Unknown, Schema.Number, {
  strict: true,
  decode: (input, _, ast) =>
    Either.match(toInstant(input), {
      onLeft: (reason) => ParseResult.fail(new ParseResult.Type(ast, input, reason)),
      onRight: ParseResult.succeed
    }),
  encode: ParseResult.succeed
}).annotations({ identifier: "Instant" })

const show = (input: unknown): string => {
  if (Duration.isDuration(input)) return Duration.format(input)
  if (DateTime.isDateTime(input)) return DateTime.formatIso(input)
  if (input instanceof Date) return Number.isNaN(input.getTime()) ? "Invalid Date" : input.toISOString()
  if (Predicate.isString(input)) return JSON.stringify(input)
  if (Array.isArray(input)) return `[${input.map(String).join(", ")}]`
  return String(input)
}

/** Refuses a fire time more than five calendar years after `now`. */
const notTooFar = (input: unknown, now: number) => (at: number): Either.Either<number, InvalidTime> =>
  at > latestRunAt(now) ? Either.left(new InvalidTime({ input: show(input), reason: TOO_FAR })) : Either.right(at)

/** The fire time of a delay from `now`, in epoch milliseconds, or why it is refused (at most five calendar years). */
export const delayMillis = (input: unknown, now: number): Either.Either<number, InvalidTime> =>
  Either.flatMap(
    Either.mapBoth(toDelay(input), {
      onLeft: (reason) => new InvalidTime({ input: show(input), reason }),
      onRight: (duration) => now + Duration.toMillis(duration)
    }),
    notTooFar(input, now)
  )

/** A fire time in epoch milliseconds, refused when malformed or more than five calendar years after `now`. */
export const instantMillis = (input: unknown, now: number): Either.Either<number, InvalidTime> =>
  Either.flatMap(
    Either.mapLeft(toInstant(input), (reason) => new InvalidTime({ input: show(input), reason })),
    notTooFar(input, now)
  )
