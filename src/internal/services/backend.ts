/**
 * Where the engine runs, as the services see it: in this process over a
 * store (the memory runtime), or in a Durable Object behind RPC. Either way
 * the same engine results come back, as plain data; only a remote backend
 * can be unavailable. Its operations are the engine's (`engine/operations.ts`).
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type { SchedulerUnavailable, SubmitIncomplete } from "../../SchedulerError.js"
import type { Refusal } from "../domain/failure.js"
import * as Operations from "../engine/operations.js"
import type * as Engine from "../engine/engine.js"
import type { JobRecord } from "../engine/store.js"
import type { Sample } from "../runtime/metrics.js"

/** The operations a remote backend's Durable Object checks again, and may refuse: the ones that store jobs. */
export const refusable = ["schedule", "enqueue"] as const satisfies ReadonlyArray<Operations.Name>

/** An operation a remote backend's Durable Object may refuse. */
export type Refusable = (typeof refusable)[number]

/** Whether the Durable Object may refuse the operation `name` (its refusal is then the caller's typed error). */
export const isRefusable = (name: Operations.Name): name is Refusable => (refusable as ReadonlyArray<Operations.Name>).includes(name)

/** One engine operation, as a service calls it. */
export type Operation<K extends Operations.Name> = (
  ...args: Operations.Args<K>
) => Effect.Effect<
  Operations.Result<K>,
  SchedulerUnavailable | (K extends Refusable ? Refusal : never) | (K extends "schedule" ? SubmitIncomplete : never)
>

/** What `list` reads: a filter, a page size, and where each shard's part of the list goes on (none: from the start). */
export interface ListQuery extends Omit<Engine.ListQuery, "afterSeq"> {
  /** Per shard, the `seq` of the last job listed from it, or `-1` once it has no more. */
  readonly after?: ReadonlyArray<number> | undefined
}

/** A page of `list`: its jobs, and the positions the next page starts from (`null`: this was the last). */
export interface ListPage {
  readonly jobs: ReadonlyArray<JobRecord>
  readonly next: ReadonlyArray<number> | null
}

/** The operations of a backend: the engine's, with `list` over the backend's shards. */
export type BackendOperations =
  & { readonly [K in Exclude<Operations.Name, "list">]: Operation<K> }
  & { readonly list: (query: ListQuery) => Effect.Effect<ListPage, SchedulerUnavailable> }

/**
 * The memory runtime's bulk stepping, for `TestScheduler.advance` over one
 * backend or several shards on one timeline: given a `Clock` that reads the
 * instant being stepped, when this backend next has work (a sweep waits
 * for the next instant with other work), and one pass of its loop at that instant.
 */
export interface Stepper {
  readonly nextWorkAt: () => number | undefined
  readonly step: Effect.Effect<{ readonly progress: boolean }>
}

export type Backend =
  & {
    readonly now: Effect.Effect<number>
    /** How many shards the backend spreads jobs over (1: one store). */
    readonly shardCount: number
    /** The memory runtime's bulk driver (`TestScheduler.advance`); a remote backend has none. */
    readonly advance?: ((ms: number) => Effect.Effect<void>) | undefined
    /** The memory runtime's stepping, given the instant being stepped (`advance` is built on it). */
    readonly stepper?: ((now: () => number) => Effect.Effect<Stepper>) | undefined
    /**
     * `schedule` as a plain Promise, where the backend can take it without
     * Effect (a remote one whose shard count is settled, on one shard): it
     * rejects with the error `schedule` fails with. `undefined`: use `schedule`.
     */
    readonly schedulePlainly?:
      | ((jobs: ReadonlyArray<Engine.NewJob>) => Promise<Operations.Result<"schedule">> | undefined)
      | undefined
    /** Completes when the job is finished (or gone). */
    readonly awaitFinished: (id: string) => Effect.Effect<JobRecord | undefined, SchedulerUnavailable>
    /** Each shard's metrics, from its `SchedulerDO`; the memory runtime keeps none. */
    readonly metrics?:
      | (() => Effect.Effect<ReadonlyArray<{ readonly shard: number; readonly samples: ReadonlyArray<Sample> }>, SchedulerUnavailable>)
      | undefined
  }
  & BackendOperations

/** Builds the operations of a backend over one store from one function that runs any engine operation. */
export const operationsOf = (
  run: <K extends Operations.Name>(name: K, args: Operations.Args<K>) => ReturnType<Operation<K>>
): BackendOperations => {
  const operations = Object.fromEntries(
    Operations.names.map((name) => [name, (...args: ReadonlyArray<unknown>) => run(name, args as never)])
  ) as { readonly [K in Operations.Name]: Operation<K> }
  return {
    ...operations,
    list: ({ after, ...query }) => {
      const afterSeq = after?.[0]
      if (afterSeq === -1) return Effect.succeed({ jobs: [], next: null })
      return Effect.map(operations.list({ ...query, afterSeq }), (page) => ({
        jobs: page.jobs,
        next: page.nextAfterSeq === null ? null : [page.nextAfterSeq]
      }))
    }
  }
}

/** The backend of one scheduler, shared by the services built over it (`Scheduler`, `CronRegistry`, `Workpool`). */
export class SchedulerEngine extends Context.Tag("@lunora/scheduler/SchedulerEngine")<SchedulerEngine, Backend>() {}
