/**
 * Where the engine runs, as the services see it: in this process over a
 * store (the memory runtime), or in a Durable Object behind RPC. Either way
 * the same engine results come back, as plain data; only a remote backend
 * can be unavailable. Its operations are the engine's (`engine/operations.ts`).
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { SchedulerUnavailable } from "../../SchedulerError.js"
import type { Refusal } from "../domain/failure.js"
import * as Operations from "../engine/operations.js"
import type { JobRecord } from "../engine/store.js"

/** The operations a remote backend's Durable Object checks again, and may refuse: the ones that store jobs. */
export const refusable = ["schedule", "enqueue"] as const satisfies ReadonlyArray<Operations.Name>

/** An operation a remote backend's Durable Object may refuse. */
export type Refusable = (typeof refusable)[number]

/** Whether the Durable Object may refuse the operation `name` (its refusal is then the caller's typed error). */
export const isRefusable = (name: Operations.Name): name is Refusable => (refusable as ReadonlyArray<Operations.Name>).includes(name)

/** One engine operation, as a service calls it. */
export type Operation<K extends Operations.Name> = (
  ...args: Operations.Args<K>
) => Effect.Effect<Operations.Result<K>, SchedulerUnavailable | (K extends Refusable ? Refusal : never)>

export type Backend =
  & {
    readonly now: Effect.Effect<number>
    /** The memory runtime's bulk driver (`TestScheduler.advance`); a remote backend has none. */
    readonly advance?: ((ms: number) => Effect.Effect<void>) | undefined
    /** Completes when the job is finished (or gone). */
    readonly awaitFinished: (id: string) => Effect.Effect<JobRecord | undefined, SchedulerUnavailable>
  }
  & { readonly [K in Operations.Name]: Operation<K> }

/** Builds the operations of a backend from one function that runs any of them. */
export const operationsOf = (
  run: <K extends Operations.Name>(name: K, args: Operations.Args<K>) => ReturnType<Operation<K>>
): { readonly [K in Operations.Name]: Operation<K> } =>
  Object.fromEntries(
    Operations.names.map((name) => [name, (...args: ReadonlyArray<unknown>) => run(name, args as never)])
  ) as never

/** The backend of one scheduler, shared by the services built over it (`Scheduler`, `CronRegistry`, `Workpool`). */
export class SchedulerEngine extends Context.Tag("@lunora/scheduler/SchedulerEngine")<SchedulerEngine, Backend>() {}
