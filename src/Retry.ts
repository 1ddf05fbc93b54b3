/**
 * Retry policies. A policy is an Effect `Schedule`; the scheduler steps it
 * once, when the job is scheduled, and stores the resulting delays with the
 * job, so the Durable Object never runs user code to compute a retry time.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleIntervals from "effect/ScheduleIntervals"
import * as Time from "./internal/domain/time.js"
import { InvalidOptions } from "./SchedulerError.js"

/**
 * The most attempts a job can have (first run included). A schedule that
 * would recur more often is cut here, and a warning is logged.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_ATTEMPTS = 50

/**
 * The longest delay between two attempts; a schedule step beyond it ends the
 * retries there, with a warning.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_DELAY: Duration.Duration = Time.MAX_DELAY

/**
 * The data form of a retry policy, `{ maxAttempts, backoff, baseMs, maxMs }`. Defaults: 5 attempts, exponential
 * backoff from 30 s, no cap on one delay.
 *
 * @since 0.1.0
 * @category models
 */
export const Policy = Schema.Struct({
  maxAttempts: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, MAX_ATTEMPTS)), { default: () => 5 }),
  backoff: Schema.optionalWith(Schema.Literal("exponential", "linear"), { default: () => "exponential" as const }),
  baseMs: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, Duration.toMillis(MAX_DELAY))), {
    default: () => 30_000
  }),
  maxMs: Schema.optional(Schema.Int.pipe(Schema.between(0, Duration.toMillis(MAX_DELAY))))
}).annotations({ identifier: "RetryPolicy" })

/**
 * @since 0.1.0
 * @category models
 */
export type Policy = typeof Policy.Type

/**
 * A retry option: a `Schedule` (any finite one: exponential, spaced,
 * jittered, capped) or the data form.
 *
 * @since 0.1.0
 * @category models
 */
export type Retry = Schedule.Schedule<unknown, unknown> | typeof Policy.Encoded

/**
 * The policy a job gets when it names none: 5 attempts, exponential from 30 s.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultPolicy: Policy = Schema.decodeSync(Policy)({})

/**
 * No retries: one attempt, then the dead letter.
 *
 * @since 0.1.0
 * @category constants
 */
export const none: Schedule.Schedule<unknown, unknown> = Schedule.recurs(0)

/**
 * The `Schedule` a data-form policy stands for.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromPolicy = (policy: Policy): Schedule.Schedule<unknown, unknown> => {
  const base = Duration.millis(policy.baseMs)
  const backoff: Schedule.Schedule<unknown, unknown> = policy.backoff === "exponential"
    ? Schedule.exponential(base)
    : Schedule.linear(base)
  const capped = policy.maxMs === undefined
    ? backoff
    : Schedule.modifyDelay(backoff, (_, delay) => Duration.min(delay, Duration.millis(policy.maxMs!)))
  return Schedule.intersect(capped, Schedule.recurs(policy.maxAttempts - 1))
}

/**
 * The delays a schedule gives between attempts, when the first attempt is due
 * at `startMs`: at most `MAX_ATTEMPTS - 1` of them, each at most `MAX_DELAY`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Plan {
  readonly delaysMs: ReadonlyArray<number>
  /** True when the schedule went on past the limits and was cut. */
  readonly capped: boolean
}

/**
 * Steps `schedule` as if each attempt failed at once, from `startMs`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const plan = (schedule: Schedule.Schedule<unknown, unknown>, startMs: number): Effect.Effect<Plan> =>
  Effect.gen(function*() {
    const maxDelayMs = Duration.toMillis(MAX_DELAY)
    const delaysMs: Array<number> = []
    let state = schedule.initial
    let now = startMs
    while (delaysMs.length < MAX_ATTEMPTS - 1) {
      const [next, , decision] = yield* schedule.step(now, undefined, state)
      if (ScheduleDecision.isDone(decision)) return { delaysMs, capped: false }
      const delay = Math.max(0, Math.round(ScheduleIntervals.start(decision.intervals) - now))
      if (!Number.isFinite(delay) || delay > maxDelayMs) return { delaysMs, capped: true }
      delaysMs.push(delay)
      now += delay
      state = next
    }
    const [, , decision] = yield* schedule.step(now, undefined, state)
    return { delaysMs, capped: ScheduleDecision.isContinue(decision) }
  })

const decodePolicy = Schema.decodeUnknownEither(Policy)

/** Plans of data-form policies: their delays do not depend on the start time, so each is stepped once. */
const policyPlans = new Map<string, Plan>()
const POLICY_PLANS_MAX = 256

const planPolicy = (policy: Policy): Effect.Effect<Plan> => {
  const key = JSON.stringify([policy.maxAttempts, policy.backoff, policy.baseMs, policy.maxMs ?? null])
  const cached = policyPlans.get(key)
  if (cached !== undefined) return Effect.succeed(cached)
  return Effect.tap(plan(fromPolicy(policy), 0), (result) => {
    if (policyPlans.size < POLICY_PLANS_MAX) policyPlans.set(key, result)
  })
}

/**
 * Resolves a retry option (or none: the default policy) into stored delays.
 * A malformed data form is an `InvalidOptions`; a schedule cut at the limits
 * logs a warning.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolve = (retry: Retry | undefined, startMs: number): Effect.Effect<Plan, InvalidOptions> =>
  Effect.gen(function*() {
    const result = retry === undefined
      ? yield* planPolicy(defaultPolicy)
      : Schedule.isSchedule(retry)
      ? yield* plan(retry, startMs)
      : yield* planPolicy(yield* Either.mapLeft(
        decodePolicy(retry),
        (error) => new InvalidOptions({ reason: `retry: ${ParseResult.TreeFormatter.formatErrorSync(error)}` })
      ))
    if (result.capped) {
      yield* Effect.logWarning(
        `retry schedule capped at ${result.delaysMs.length + 1} attempts (limits: ${MAX_ATTEMPTS} attempts, ${
          Duration.format(MAX_DELAY)
        } between attempts)`
      )
    }
    return result
  })
