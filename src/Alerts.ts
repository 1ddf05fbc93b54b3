/**
 * Alert hooks, declared in code and fired by the scheduler itself: on dead
 * letters, and on an error rate above a threshold over a window. An alert
 * fires by scheduling a job of your choosing, due at once (so it is retried
 * and dead-lettered like any other), whose payload (`Alerts.Event`) carries
 * the figures that tripped it. A dead-letter alert fires once per write of
 * outcomes that parked dead letters, naming up to 20 of them; an error-rate
 * alert fires once when the rate rises above its threshold, and again only
 * after it fell back to or below it.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Job from "./Job.js"
import * as Retry from "./Retry.js"
import { InvalidOptions, type SchedulerUnavailable } from "./SchedulerError.js"
import type { AlertDefinition } from "./internal/engine/alerts.js"
import { type Backend, SchedulerEngine } from "./internal/services/backend.js"
import { type LiveOptions, makeRemote } from "./internal/services/remote.js"

/**
 * The payload of an alert's job: which alert, when (epoch ms), and the
 * figures: the dead letters (`count`, and up to 20 `jobs`), or the error
 * rate over the window (`failures` of `attempts`, against `above`).
 *
 * @since 0.1.0
 * @category models
 */
export const Event = Schema.Union(
  Schema.Struct({
    alert: Schema.String,
    kind: Schema.Literal("deadLetter"),
    at: Schema.Number,
    count: Schema.Int,
    jobs: Schema.Array(Schema.Struct({
      id: Schema.String,
      functionPath: Schema.String,
      attempt: Schema.Int,
      lastError: Schema.NullOr(Schema.String)
    }))
  }),
  Schema.Struct({
    alert: Schema.String,
    kind: Schema.Literal("errorRate"),
    at: Schema.Number,
    rate: Schema.Number,
    failures: Schema.Int,
    attempts: Schema.Int,
    above: Schema.Number,
    windowMs: Schema.Int,
    functionPath: Schema.NullOr(Schema.String)
  })
)

/**
 * @since 0.1.0
 * @category models
 */
export type Event = typeof Event.Type

/**
 * Options of an alert: only the jobs of one function path count (default:
 * all), and the retry policy of the alert's own job (default: the
 * scheduler's, 5 attempts).
 *
 * @since 0.1.0
 * @category models
 */
export interface AlertOptions {
  readonly functionPath?: string | undefined
  readonly retry?: Retry.Retry | undefined
}

/**
 * The error rate an alert watches: `above` (0 to 1, exclusive of 1) over
 * `over` (1 second to 1 day), once the window holds `minAttempts` attempts
 * (default 10).
 *
 * @since 0.1.0
 * @category models
 */
export interface ErrorRate {
  readonly above: number
  readonly over: Duration.DurationInput
  readonly minAttempts?: number | undefined
}

/**
 * The declared alerts, built with `Alerts.make()`: each entry is checked as
 * it is declared and throws `InvalidOptions` when refused.
 *
 * @since 0.1.0
 * @category models
 */
export interface Alerts {
  readonly definitions: ReadonlyArray<AlertDefinition>
  /** Fires `job` when attempts end in dead letters. */
  readonly onDeadLetter: (name: string, job: Job.Ref, options?: AlertOptions) => Alerts
  /** Fires `job` when the share of failed attempts over the window rises above `rate.above`. */
  readonly onErrorRate: (name: string, rate: ErrorRate, job: Job.Ref, options?: AlertOptions) => Alerts
}

const NAME = /^[\w .:\-/]{1,128}$/
const isFunctionPath = Schema.is(Job.FunctionPath)

const refuse = (name: string, reason: string): never => {
  throw new InvalidOptions({ reason: `alert "${name}": ${reason}` })
}

const check = (name: string, job: Job.Ref, options: AlertOptions | undefined, taken: ReadonlyArray<AlertDefinition>) => {
  if (!NAME.test(name)) refuse(name, "a name is 1 to 128 letters, digits, spaces or _ . : - /")
  if (taken.some((alert) => alert.name === name)) refuse(name, "declared twice")
  const functionPath = Job.pathOf(job)
  if (!isFunctionPath(functionPath)) refuse(name, `"${functionPath}" is not a function path of the form "namespace:function"`)
  if (options?.functionPath !== undefined && !isFunctionPath(options.functionPath)) {
    refuse(name, `"${options.functionPath}" is not a function path of the form "namespace:function"`)
  }
  const plan = Effect.runSync(Effect.either(Retry.resolve(options?.retry, 0)))
  if (Either.isLeft(plan)) refuse(name, plan.left.reason)
  return {
    functionPath,
    retryDelaysMs: Either.getOrThrow(plan).delaysMs,
    watched: options?.functionPath ?? null
  }
}

const builder = (definitions: ReadonlyArray<AlertDefinition>): Alerts => ({
  definitions,
  onDeadLetter: (name, job, options) => {
    const { functionPath, retryDelaysMs, watched } = check(name, job, options, definitions)
    return builder([...definitions, {
      name,
      trigger: { _tag: "DeadLetter", functionPath: watched },
      functionPath,
      retryDelaysMs
    }])
  },
  onErrorRate: (name, rate, job, options) => {
    const { functionPath, retryDelaysMs, watched } = check(name, job, options, definitions)
    if (!(rate.above >= 0 && rate.above < 1)) refuse(name, `above must be at least 0 and below 1, not ${rate.above}`)
    const windowMs = Duration.decodeUnknown(rate.over).pipe((decoded) =>
      decoded._tag === "Some" && Duration.isFinite(decoded.value) ? Duration.toMillis(decoded.value) : NaN
    )
    if (!(Number.isInteger(windowMs) && windowMs >= 1_000 && windowMs <= 86_400_000)) {
      refuse(name, "over must be a whole number of milliseconds from 1 second to 1 day")
    }
    const minAttempts = rate.minAttempts ?? 10
    if (!(Number.isInteger(minAttempts) && minAttempts >= 1)) refuse(name, "minAttempts must be a positive integer")
    return builder([...definitions, {
      name,
      trigger: { _tag: "ErrorRate", above: rate.above, windowMs, minAttempts, functionPath: watched },
      functionPath,
      retryDelaysMs
    }])
  }
})

/**
 * An empty set of alerts, to declare on.
 *
 * @example
 * ```ts
 * const NotifyOps = Job.make("ops:notify", { payload: Alerts.Event })
 * const alerts = Alerts.make()
 *   .onDeadLetter("dead letters", NotifyOps)
 *   .onErrorRate("failing", { above: 0.1, over: "5 minutes" }, NotifyOps)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (): Alerts => builder([])

/**
 * Makes the scheduler's alerts the declared ones (on every shard: each
 * watches its own outcomes).
 *
 * @since 0.1.0
 * @category constructors
 */
export const reconcile = (
  backend: Backend,
  alerts: Alerts
): Effect.Effect<ReadonlyArray<string>, SchedulerUnavailable> =>
  Effect.map(backend.reconcileAlerts(alerts.definitions), (result) => result.alerts).pipe(
    Effect.withSpan("Alerts.reconcile", { attributes: { alerts: alerts.definitions.length } })
  )

/**
 * The live alerts: reconciled into the `SchedulerDO` instance (every shard of
 * it) when the layer is built, as `CronRegistry.layer` does for crons.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: LiveOptions & { readonly alerts: Alerts }
): Layer.Layer<never, InvalidOptions | SchedulerUnavailable> =>
  Layer.effectDiscard(Effect.flatMap(makeRemote(options), (backend) => reconcile(backend, options.alerts)))

/**
 * The alerts on the scheduler engine in context (the test layer's).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (alerts: Alerts): Layer.Layer<never, InvalidOptions | SchedulerUnavailable, SchedulerEngine> =>
  Layer.effectDiscard(Effect.flatMap(SchedulerEngine, (backend) => reconcile(backend, alerts)))
