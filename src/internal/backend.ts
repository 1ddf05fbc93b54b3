/**
 * Where the engine runs, as the services see it: in this process over a
 * store (the memory runtime), or in a Durable Object behind RPC. Either way
 * the same engine results come back, as plain data; only a remote backend
 * can be unavailable.
 */
import type { Effect } from "effect"
import type { CronDefinition } from "../CronSpec.js"
import type { JobRecord } from "../JobStore.js"
import type * as CronEngine from "./cronEngine.js"
import type { SchedulerUnavailable } from "../SchedulerError.js"
import type * as Engine from "./engine.js"

export interface Backend {
  readonly now: Effect.Effect<number>
  readonly schedule: (
    jobs: ReadonlyArray<Engine.NewJob>
  ) => Effect.Effect<ReadonlyArray<Engine.ScheduleResult>, SchedulerUnavailable>
  readonly cancel: (id: string) => Effect.Effect<Engine.CancelResult, SchedulerUnavailable>
  readonly get: (id: string) => Effect.Effect<JobRecord | undefined, SchedulerUnavailable>
  readonly list: (query: Parameters<typeof Engine.list>[1]) => Effect.Effect<Engine.Page, SchedulerUnavailable>
  readonly replay: (id: string) => Effect.Effect<Engine.ReplayResult, SchedulerUnavailable>
  readonly purge: (query: Engine.PurgeQuery) => Effect.Effect<number, SchedulerUnavailable>
  readonly reconcileCrons: (
    crons: ReadonlyArray<CronDefinition>
  ) => Effect.Effect<CronEngine.ReconcileResult, SchedulerUnavailable>
  readonly listCrons: Effect.Effect<ReadonlyArray<CronEngine.CronView>, SchedulerUnavailable>
  readonly triggerCron: (name: string) => Effect.Effect<CronEngine.TriggerResult, SchedulerUnavailable>
  /** Completes when the job is finished (or gone). */
  readonly awaitFinished: (id: string) => Effect.Effect<JobRecord | undefined, SchedulerUnavailable>
}
