/**
 * A scheduler's operations, declared once: what each one does to the engine
 * over a store. The `SchedulerDO` serves these over RPC (its arguments
 * checked by `runtime/protocol.ts`), the memory runtime runs them in this
 * process, and the services' `Backend` is derived from them.
 */
import { ownTargetText } from "../domain/targets.js"
import type { CronDefinition } from "../domain/cronSchedule.js"
import * as AlertEngine from "./alerts.js"
import * as CronEngine from "./crons.js"
import * as Engine from "./engine.js"
import * as PoolEngine from "./pools.js"
import type { JobRecord, Store } from "./store.js"
import { type JobState, JobState as JobStates } from "../../Job.js"

const JOB_STATES: ReadonlyArray<JobState> = JobStates.literals

/** What every operation is run with: the time, and where the jobs it stores are dispatched (opaque; none in memory). */
export interface At {
  readonly now: number
  readonly target: string | null
}

/** The settings, on a scheduler's shard 0, of how many shards its jobs are spread over, and the most ever (absent: never recorded). */
const SHARDS_SETTING = "shards"
const HIGHEST_SETTING = "shardsHighest"

/** The shard count recorded on shard 0 before a call (`null`: none), and the largest count ever recorded (with this one). */
export interface ShardRecord {
  readonly recorded: number | null
  readonly highest: number
}

/**
 * Records `count` when there was none, when it grows, or when `shrink` says
 * a smaller count was found safe (the shards it drops hold no live work);
 * the largest count ever recorded is kept apart, since ids of the shards a
 * shrink dropped still route there.
 */
const recordShards = (store: Store, count: number, shrink: boolean): ShardRecord =>
  store.transaction(() => {
    const stored = store.setting(SHARDS_SETTING)
    const recorded = stored === undefined ? null : Number(stored)
    if (recorded === null || count > recorded || (shrink && count !== recorded)) {
      store.putSetting(SHARDS_SETTING, String(count))
    }
    const before = Number(store.setting(HIGHEST_SETTING) ?? recorded ?? 0)
    const highest = Math.max(before, recorded ?? 0, recorded === null || count > recorded || shrink ? count : 0)
    if (highest !== before) store.putSetting(HIGHEST_SETTING, String(highest))
    return { recorded, highest }
  })

/** How many jobs are in each state, and how many crons and pools are declared. */
export interface Stats {
  readonly jobs: { readonly [S in JobState]: number }
  readonly crons: number
  readonly pools: number
}

const stats = (store: Store): Stats => ({
  jobs: Object.fromEntries(JOB_STATES.map((state) => [state, store.count(state)])) as Stats["jobs"],
  crons: store.listCrons().length,
  pools: store.listPools().length
})

/** What a shard holds that would be stranded if it were dropped: its live jobs and its crons. */
export interface Census {
  readonly live: number
  readonly crons: number
}

/** The jobs with the call's target, or a webhook job's own. */
const stamp = (jobs: ReadonlyArray<Engine.NewJob>, target: string | null) =>
  jobs.map((job) =>
    job.own !== undefined && job.own !== null
      ? { ...job, target: ownTargetText(job.own) }
      : target === null
      ? job
      : { ...job, target }
  )

/**
 * What storing a job answers: created, or the live job that holds its key,
 * with that job's id and time only (not its whole record, which a call
 * from another object would carry back for nothing).
 */
export interface Stored {
  readonly _tag: Engine.ScheduleResult["_tag"]
  readonly job: Pick<JobRecord, "id" | "scheduledFor">
}

const stored = (results: ReadonlyArray<Engine.ScheduleResult>): ReadonlyArray<Stored> =>
  results.map(({ _tag, job }) => ({ _tag, job: { id: job.id, scheduledFor: job.scheduledFor } }))

/** What `enqueue` answers: the pool's jobs stored, or that there is no such pool. */
export type Enqueued =
  | { readonly _tag: "Enqueued"; readonly results: ReadonlyArray<Stored> }
  | { readonly _tag: "PoolNotFound" }

const enqueued = (result: PoolEngine.EnqueueResult): Enqueued =>
  result._tag === "Enqueued" ? { _tag: "Enqueued", results: stored(result.results) } : result

/** Each operation over `store`: synchronous, pure but for the store, given the time. */
export const make = (store: Store, config: Engine.EngineConfig) => ({
  schedule: (at: At, jobs: ReadonlyArray<Engine.NewJob>) =>
    stored(Engine.scheduleMany(store, config, at.now, stamp(jobs, at.target))),
  cancel: (at: At, id: string, pool?: string) => Engine.cancel(store, config, at.now, id, pool),
  get: (_: At, id: string) => store.get(id),
  list: (_: At, query: Engine.ListQuery) => Engine.list(store, query),
  replay: (at: At, id: string) => Engine.replay(store, at.now, id),
  purge: (_: At, query: Engine.PurgeQuery) => Engine.purge(store, query),
  reconcileCrons: (at: At, crons: ReadonlyArray<CronDefinition>, shard?: number) =>
    CronEngine.reconcile(store, at.now, crons, at.target, shard),
  listCrons: (_: At) => CronEngine.list(store),
  triggerCron: (at: At, name: string) => CronEngine.trigger(store, config, at.now, name),
  definePool: (at: At, name: string, maxConcurrency?: number, pull?: boolean) =>
    PoolEngine.define(store, at.now, name, maxConcurrency, pull),
  updatePool: (_: At, name: string, change: PoolEngine.PoolChange) => PoolEngine.update(store, name, change),
  enqueue: (at: At, pool: string, jobs: ReadonlyArray<Engine.NewJob>) =>
    enqueued(PoolEngine.enqueue(store, config, at.now, pool, stamp(jobs, at.target))),
  poolStatus: (at: At, name: string) => PoolEngine.status(store, at.now, name),
  cancelQueued: (at: At, name: string, limit: number) => PoolEngine.cancelQueued(store, config, at.now, name, limit),
  leasePulled: (at: At, name: string, limit: number, leaseMs: number) => PoolEngine.lease(store, at.now, name, limit, leaseMs),
  heartbeatPulled: (at: At, name: string, id: string, attempt: number, leaseMs: number) =>
    PoolEngine.heartbeat(store, at.now, name, id, attempt, leaseMs),
  reportPulled: (at: At, name: string, outcome: Engine.AttemptOutcome) => PoolEngine.report(store, config, at.now, name, outcome),
  reconcileAlerts: (at: At, alerts: ReadonlyArray<AlertEngine.AlertDefinition>) =>
    AlertEngine.reconcile(store, alerts, at.target),
  listAlerts: (_: At) => AlertEngine.list(store),
  listPools: (at: At) => store.listPools().map((pool) => PoolEngine.status(store, at.now, pool.name)!),
  stats: (_: At) => stats(store),
  shards: (_: At, count: number, shrink: boolean) => recordShards(store, count, shrink),
  census: (_: At): Census => ({ live: store.count("pending") + store.count("inProgress"), crons: store.listCrons().length })
})

/** The operations of one store. */
export type Operations = ReturnType<typeof make>

/** An operation's name. */
export type Name = keyof Operations

/** The names of all operations, in declaration order. */
export const names: ReadonlyArray<Name> = Object.keys(make(undefined as never, undefined as never)) as Array<Name>

/** The operations that cannot change what is due (reads, and the shard count's record): after any other, the runtime re-checks its wake-up. */
export const reads: ReadonlySet<Name> = new Set<Name>([
  "get",
  "list",
  "listCrons",
  "poolStatus",
  "listPools",
  "listAlerts",
  "stats",
  "shards",
  "census"
])

/** The operations that store jobs or crons, and so are told where they are dispatched. */
export const targeted = ["schedule", "reconcileCrons", "enqueue", "reconcileAlerts"] as const satisfies ReadonlyArray<Name>

/** An operation that is told where its jobs are dispatched. */
export type Targeted = (typeof targeted)[number]

/** Whether the operation `name` is told where its jobs are dispatched. */
export const isTargeted = (name: Name): name is Targeted => (targeted as ReadonlyArray<Name>).includes(name)

/** An operation's arguments after the time and target. */
export type Args<K extends Name> = Parameters<Operations[K]> extends [At, ...infer Rest] ? Rest : never

/** What an operation answers. */
export type Result<K extends Name> = ReturnType<Operations[K]>
