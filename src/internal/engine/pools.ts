/**
 * Workpools in the engine: defining a pool, enqueueing into it, pausing,
 * resuming, changing its cap, its status, and canceling what it has queued.
 * Admission (at most `maxConcurrency` in flight, FIFO) is part of
 * `Engine.claim`; everything here is plain reads and writes through the
 * `Store`, each in one transaction.
 */
import type { PoolRecord, Store } from "./store.js"
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
export const define = (store: Store, now: number, name: string, maxConcurrency: number | undefined): DefineResult =>
  store.transaction(() => {
    const existing = store.getPool(name)
    if (maxConcurrency === undefined) return existing === undefined ? { _tag: "PoolNotFound" } : { _tag: "Defined", pool: existing }
    if (existing !== undefined && existing.declaredMaxConcurrency === maxConcurrency) {
      return { _tag: "Defined", pool: existing }
    }
    const pool: PoolRecord = existing === undefined
      ? { name, maxConcurrency, declaredMaxConcurrency: maxConcurrency, paused: false, createdAt: now }
      : { ...existing, maxConcurrency, declaredMaxConcurrency: maxConcurrency }
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
