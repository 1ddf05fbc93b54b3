/**
 * The `CronRegistry` service: the crons declared with `cronJobs()`,
 * reconciled into the scheduler when the layer is built, fired as jobs by the
 * same engine (the `SchedulerDO` alarm, or the test layer's `Clock`).
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { CronJobs } from "./CronSpec.js"
import { CronScheduleText } from "./internal/domain/cronSchedule.js"
import type { Backend } from "./internal/services/backend.js"
import { type LiveOptions, makeRemote } from "./internal/services/remote.js"
import type { CronView } from "./internal/engine/crons.js"
import { JobId, JobState } from "./Job.js"
import { CronNotFound, CronRunInProgress, type InvalidOptions, type SchedulerUnavailable } from "./SchedulerError.js"

/**
 * A declared cron and its firing record.
 *
 * @since 0.1.0
 * @category models
 */
export class CronInfo extends Schema.Class<CronInfo>("@lunora/scheduler/CronInfo")({
  name: Schema.String,
  /** Its interval, or its expression and time zone. */
  schedule: CronScheduleText,
  functionPath: Schema.String,
  nextRunAt: Schema.DateTimeUtc,
  /** The scheduled time of the last fire or skip. */
  lastRunAt: Schema.OptionFromNullOr(Schema.DateTimeUtc),
  /** `"fired"`, or why the last scheduled time was skipped. */
  lastOutcome: Schema.OptionFromNullOr(Schema.String),
  /** The job of the last run: see its state with `Scheduler.get`. */
  lastJobId: Schema.OptionFromNullOr(JobId),
  /** The state of the last run's job (none when it never ran, or was swept). */
  lastRunState: Schema.OptionFromNullOr(JobState),
  /** Fires skipped because the previous run was still in progress. */
  skipped: Schema.Int
}) {}

export {
  /**
   * No cron with this name is declared.
   *
   * @since 0.1.0
   * @category errors
   */
  CronNotFound,
  /**
   * `trigger` started nothing: a run of the cron is still pending or in progress.
   *
   * @since 0.1.0
   * @category errors
   */
  CronRunInProgress
} from "./SchedulerError.js"

/**
 * What reconciling the declared crons did.
 *
 * @since 0.1.0
 * @category models
 */
export interface Reconciled {
  readonly added: ReadonlyArray<string>
  readonly changed: ReadonlyArray<string>
  readonly removed: ReadonlyArray<string>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class CronRegistry extends Context.Tag("@lunora/scheduler/CronRegistry")<CronRegistry, {
  /** Makes the stored crons the declared ones; the same declaration twice changes nothing. */
  readonly reconcile: (crons: CronJobs) => Effect.Effect<Reconciled, SchedulerUnavailable>
  /** Every declared cron with its next fire time and last run, by name. */
  readonly list: Effect.Effect<ReadonlyArray<CronInfo>, SchedulerUnavailable>
  readonly get: (name: string) => Effect.Effect<CronInfo, CronNotFound | SchedulerUnavailable>
  /**
   * Runs a cron now, outside its schedule; its next scheduled time is
   * unchanged. While a run of it is live, nothing starts: `CronRunInProgress`.
   */
  readonly trigger: (name: string) => Effect.Effect<JobId, CronNotFound | CronRunInProgress | SchedulerUnavailable>
}>() {}

const utc = (ms: number) => DateTime.unsafeMake(ms)

const decodeSchedule = Schema.decodeUnknownOption(Schema.parseJson(CronScheduleText))

const toInfo = (cron: CronView): CronInfo =>
  new CronInfo({
    name: cron.name,
    // a record damaged outside the engine shows its text (its `lastOutcome` says why it does not fire)
    schedule: Option.getOrElse(decodeSchedule(cron.schedule), () => ({
      _tag: "Expression" as const,
      expression: cron.schedule,
      timeZone: "UTC"
    })),
    functionPath: cron.functionPath,
    nextRunAt: utc(cron.nextRunAt),
    lastRunAt: Option.map(Option.fromNullable(cron.lastRunAt), utc),
    lastOutcome: Option.fromNullable(cron.lastOutcome),
    lastJobId: Option.fromNullable(cron.lastJobId as JobId | null),
    lastRunState: Option.fromNullable(cron.lastJobState),
    skipped: cron.skipped
  }, true)

/**
 * Builds the service over a backend (in memory or the `SchedulerDO`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromBackend = (backend: Backend): CronRegistry["Type"] => {
  const list = Effect.map(backend.listCrons(), (crons) => crons.map(toInfo))
  return CronRegistry.of({
    reconcile: Effect.fn("CronRegistry.reconcile")(function*(crons: CronJobs) {
      return yield* backend.reconcileCrons(crons.definitions)
    }),
    list: list.pipe(Effect.withSpan("CronRegistry.list")),
    get: Effect.fn("CronRegistry.get")(function*(name: string) {
      const found = (yield* list).find((cron) => cron.name === name)
      if (found === undefined) return yield* new CronNotFound({ name })
      return found
    }),
    trigger: Effect.fn("CronRegistry.trigger")(function*(name: string) {
      const result = yield* backend.triggerCron(name)
      if (result._tag === "NotFound") return yield* new CronNotFound({ name })
      if (result._tag === "InProgress") return yield* new CronRunInProgress({ name, jobId: result.job.id })
      return result.job.id as JobId
    })
  })
}

/**
 * The live registry: reconciles `crons` into the `SchedulerDO` instance when
 * built (so a deploy adds, changes and removes crons to match the code),
 * after which the instance's alarm fires them.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: LiveOptions & { readonly crons: CronJobs }
): Layer.Layer<CronRegistry, InvalidOptions | SchedulerUnavailable> =>
  Layer.effect(
    CronRegistry,
    Effect.gen(function*() {
      const registry = fromBackend(yield* makeRemote(options))
      yield* registry.reconcile(options.crons)
      return registry
    })
  )
