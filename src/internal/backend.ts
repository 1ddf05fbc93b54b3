/**
 * Where the engine runs, as the services see it: in this process over a
 * store (the memory runtime), or in a Durable Object behind RPC. Either way
 * the same engine results come back, as plain data.
 */
import type { Effect } from "effect"
import type { JobRecord } from "../JobStore.js"
import type * as Engine from "./engine.js"

export interface Backend {
  readonly now: Effect.Effect<number>
  readonly schedule: (jobs: ReadonlyArray<Engine.NewJob>) => Effect.Effect<ReadonlyArray<Engine.ScheduleResult>>
  readonly cancel: (id: string) => Effect.Effect<Engine.CancelResult>
  readonly get: (id: string) => Effect.Effect<JobRecord | undefined>
  readonly list: (query: Parameters<typeof Engine.list>[1]) => Effect.Effect<Engine.Page>
  readonly replay: (id: string) => Effect.Effect<Engine.ReplayResult>
  readonly purge: (query: Engine.PurgeQuery) => Effect.Effect<number>
  /** Completes when the job is finished (or gone). */
  readonly awaitFinished: (id: string) => Effect.Effect<JobRecord | undefined>
}
