/**
 * Where the engine runs, as the services see it: in this process over a
 * store (the memory runtime), or in a Durable Object behind RPC. Either way
 * the same engine results come back, as plain data; only a remote backend
 * can be unavailable.
 */
import { Context, type Effect } from "effect"
import type { CronDefinition } from "../CronSpec.js"
import type { JobRecord } from "../JobStore.js"
import type * as CronEngine from "./cronEngine.js"
import type { SchedulerUnavailable } from "../SchedulerError.js"
import type { Refusal } from "./failure.js"
import type * as Engine from "./engine.js"
import type * as PoolEngine from "./poolEngine.js"

export interface Backend {
  readonly now: Effect.Effect<number>
  /** A remote backend's Durable Object checks the jobs again, and may refuse them. */
  readonly schedule: (
    jobs: ReadonlyArray<Engine.NewJob>
  ) => Effect.Effect<ReadonlyArray<Engine.ScheduleResult>, SchedulerUnavailable | Refusal>
  /** With `pool`, only a job of that pool is found. */
  readonly cancel: (id: string, pool?: string) => Effect.Effect<Engine.CancelResult, SchedulerUnavailable>
  readonly get: (id: string) => Effect.Effect<JobRecord | undefined, SchedulerUnavailable>
  readonly list: (query: Parameters<typeof Engine.list>[1]) => Effect.Effect<Engine.Page, SchedulerUnavailable>
  readonly replay: (id: string) => Effect.Effect<Engine.ReplayResult, SchedulerUnavailable>
  readonly purge: (query: Engine.PurgeQuery) => Effect.Effect<number, SchedulerUnavailable>
  readonly reconcileCrons: (
    crons: ReadonlyArray<CronDefinition>
  ) => Effect.Effect<CronEngine.ReconcileResult, SchedulerUnavailable>
  readonly listCrons: Effect.Effect<ReadonlyArray<CronEngine.CronView>, SchedulerUnavailable>
  readonly triggerCron: (name: string) => Effect.Effect<CronEngine.TriggerResult, SchedulerUnavailable>
  readonly definePool: (
    name: string,
    maxConcurrency: number | undefined
  ) => Effect.Effect<PoolEngine.DefineResult, SchedulerUnavailable>
  readonly updatePool: (
    name: string,
    change: PoolEngine.PoolChange
  ) => Effect.Effect<PoolEngine.DefineResult, SchedulerUnavailable>
  readonly enqueue: (
    pool: string,
    jobs: ReadonlyArray<Engine.NewJob>
  ) => Effect.Effect<PoolEngine.EnqueueResult, SchedulerUnavailable | Refusal>
  readonly poolStatus: (name: string) => Effect.Effect<PoolEngine.PoolStatus | undefined, SchedulerUnavailable>
  readonly cancelQueued: (
    name: string,
    limit: number
  ) => Effect.Effect<PoolEngine.CancelQueuedResult, SchedulerUnavailable>
  /** Completes when the job is finished (or gone). */
  readonly awaitFinished: (id: string) => Effect.Effect<JobRecord | undefined, SchedulerUnavailable>
}

/** The backend of one scheduler, shared by the services built over it (`Scheduler`, `CronRegistry`, `Workpool`). */
export class SchedulerEngine extends Context.Tag("@lunora/scheduler/SchedulerEngine")<SchedulerEngine, Backend>() {}
