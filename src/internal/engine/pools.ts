/**
 * Workpools in the engine: defining a pool, enqueueing into it, pausing,
 * resuming, changing its cap, its status, and canceling what it has queued.
 * Admission (at most `maxConcurrency` in flight, FIFO) is part of
 * `Engine.claim`; everything here is plain reads and writes through the
 * `Store`, each in one transaction.
 */
import type { JobRecord, PoolRecord, Store } from "./store.js"
import * as Engine from "./engine.js"

export type DefineResult =
  | { readonly _tag: "Defined"; readonly pool: PoolRecord }
  | { readonly _tag: "PoolNotFound" }

/**
 * Makes sure the pool exists. With a `maxConcurrency` the pool is created, or
 * its cap set when the declared cap differs from the last declared one (a cap
 * changed at runtime stays until the declaration changes); without one the
 * pool must already exist.
 */
export const define = (
  store: Store,
  now: number,
  name: string,
  maxConcurrency: number | undefined,
  pull: boolean = false
): DefineResult =>
  store.transaction(() => {
    const existing = store.getPool(name)
    if (maxConcurrency === undefined) return existing === undefined ? { _tag: "PoolNotFound" } : { _tag: "Defined", pool: existing }
    if (existing !== undefined && existing.declaredMaxConcurrency === maxConcurrency && (existing.pull === true) === pull) {
      return { _tag: "Defined", pool: existing }
    }
    const { pull: _, ...kept }: PoolRecord = existing ?? { name, maxConcurrency, declaredMaxConcurrency: maxConcurrency, paused: false, createdAt: now }
    const pool: PoolRecord = { ...kept, maxConcurrency, declaredMaxConcurrency: maxConcurrency, ...(pull ? { pull: true } : {}) }
    store.putPool(pool)
    return { _tag: "Defined", pool }
  })

export type EnqueueResult =
  | { readonly _tag: "Enqueued"; readonly results: ReadonlyArray<Engine.ScheduleResult> }
  | { readonly _tag: "PoolNotFound" }

/** Stores jobs in a pool atomically (keys dedupe as for scheduled jobs); nothing is stored for an unknown pool. */
export const enqueue = (
  store: Store,
  config: Engine.EngineConfig,
  now: number,
  name: string,
  jobs: ReadonlyArray<Engine.NewJob>
): EnqueueResult =>
  store.transaction(() =>
    store.getPool(name) === undefined
      ? { _tag: "PoolNotFound" }
      : { _tag: "Enqueued", results: Engine.scheduleMany(store, config, now, jobs.map((job) => ({ ...job, pool: name }))) }
  )

/** A change to a running pool. */
export interface PoolChange {
  readonly paused?: boolean | undefined
  readonly maxConcurrency?: number | undefined
}

/**
 * Pauses or resumes a pool, or changes its cap. Jobs in flight are never
 * interrupted: a lower cap or a pause only holds back new starts.
 */
export const update = (store: Store, name: string, change: PoolChange): DefineResult =>
  store.transaction(() => {
    const existing = store.getPool(name)
    if (existing === undefined) return { _tag: "PoolNotFound" }
    const pool: PoolRecord = {
      ...existing,
      paused: change.paused ?? existing.paused,
      maxConcurrency: change.maxConcurrency ?? existing.maxConcurrency
    }
    store.putPool(pool)
    return { _tag: "Defined", pool }
  })

/** A pool's state, as an operator needs it. Times are epoch milliseconds. */
export interface PoolStatus {
  readonly name: string
  readonly maxConcurrency: number
  readonly paused: boolean
  readonly inFlight: number
  /** Pending jobs: waiting for a slot, or for the time of their next attempt. */
  readonly queued: number
  readonly deadLettered: number
  /** When the job first in line became due, if one is due. */
  readonly oldestQueuedAt: number | null
}

export const status = (store: Store, now: number, name: string): PoolStatus | undefined => {
  const pool = store.getPool(name)
  if (pool === undefined) return undefined
  const head = store.ready(name, now, 1)[0]
  return {
    name,
    maxConcurrency: pool.maxConcurrency,
    paused: pool.paused,
    inFlight: store.countInPool(name, "inProgress"),
    queued: store.countInPool(name, "pending"),
    deadLettered: store.countInPool(name, "deadLettered"),
    oldestQueuedAt: head?.runAt ?? null
  }
}

export type CancelQueuedResult =
  | { readonly _tag: "Canceled"; readonly canceled: number; readonly more: boolean }
  | { readonly _tag: "PoolNotFound" }

/** Cancels up to `limit` of a pool's pending jobs, first in line first; `more` says whether any are left. */
export const cancelQueued = (
  store: Store,
  config: Engine.EngineConfig,
  now: number,
  name: string,
  limit: number
): CancelQueuedResult =>
  store.transaction(() => {
    if (store.getPool(name) === undefined) return { _tag: "PoolNotFound" }
    const jobs = store.ready(name, Number.MAX_SAFE_INTEGER, limit)
    for (const job of jobs) Engine.cancel(store, config, now, job.id)
    return { _tag: "Canceled", canceled: jobs.length, more: store.nextReadyAt(name) !== undefined }
  })

/** The shortest and longest lease a pulled job may have. */
export const MIN_PULL_LEASE_MS = 1_000
export const MAX_PULL_LEASE_MS = 3_600_000

export type LeaseResult =
  | { readonly _tag: "Leased"; readonly jobs: ReadonlyArray<JobRecord> }
  | { readonly _tag: "PoolNotFound" }
  | { readonly _tag: "NotPull" }

/**
 * Leases up to `limit` due jobs of the pull pool `name` to a worker, for
 * `leaseMs`: as many as its cap has free slots (its jobs in flight count,
 * pulled or not), in due order, each `inProgress` with its attempt counted.
 * A lease that runs out before its outcome is a failed attempt, as a
 * dispatch's is: the job follows its retry policy.
 */
export const lease = (
  store: Store,
  now: number,
  name: string,
  limit: number,
  leaseMs: number
): LeaseResult =>
  store.transaction(() => {
    const pool = store.getPool(name)
    if (pool === undefined) return { _tag: "PoolNotFound" }
    if (pool.pull !== true) return { _tag: "NotPull" }
    const free = Math.min(limit, Engine.openSlots(pool, store.countInPool(name, "inProgress")))
    if (free <= 0) return { _tag: "Leased", jobs: [] }
    const jobs = store.ready(name, now, free).map((job): JobRecord => ({
      ...job,
      state: "inProgress",
      attempt: job.attempt + 1,
      startedAt: now,
      runAt: now + leaseMs
    }))
    store.updateMany(jobs)
    return { _tag: "Leased", jobs }
  })

/** Whether the job `id` of pool `name` holds the lease of `attempt` now; the job if it does. */
const leased = (store: Store, now: number, name: string, id: string, attempt: number): JobRecord | undefined => {
  const job = store.get(id)
  return job !== undefined && job.pool === name && job.state === "inProgress" && job.attempt === attempt &&
      job.runAt > now
    ? job
    : undefined
}

/** Extends the lease of `attempt` of job `id` to `leaseMs` from now; `Stale` once it ran out or ended. */
export const heartbeat = (
  store: Store,
  now: number,
  name: string,
  id: string,
  attempt: number,
  leaseMs: number
): { readonly _tag: "Extended"; readonly until: number } | { readonly _tag: "Stale" } =>
  store.transaction(() => {
    const job = leased(store, now, name, id, attempt)
    if (job === undefined) return { _tag: "Stale" }
    store.updateMany([{ ...job, runAt: now + leaseMs }])
    return { _tag: "Extended", until: now + leaseMs }
  })

/**
 * Records the outcome of a pulled attempt, as a dispatch's is recorded; `Stale`
 * when its lease ran out or its outcome came already (the attempt was
 * retried, or finished).
 */
export const report = (
  store: Store,
  config: Engine.EngineConfig,
  now: number,
  name: string,
  outcome: Engine.AttemptOutcome
): Engine.ReportResult =>
  store.transaction(() =>
    leased(store, now, name, outcome.id, outcome.attempt) === undefined
      ? { _tag: "Stale", job: store.get(outcome.id) }
      : Engine.record(store, config, now, [outcome])[0]!
  )
