/**
 * The scheduler's state machine. Every rule of the scheduling semantics lives
 * here once; the memory runtime and the Durable Object both call it. It takes
 * `now` as input and does no I/O beyond its `Store`.
 */
import * as DateTime from "effect/DateTime"
import * as Option from "effect/Option"
import { type JobId, JobInfo, type JobState } from "../../Job.js"
import type { OwnTarget } from "../domain/targets.js"
import type { JobRecord, PoolRecord, Store } from "./store.js"

export interface EngineConfig {
  /** How long a started attempt may run before it counts as failed. */
  readonly leaseMs: number
  /** How long finished jobs (other than dead letters) are kept. */
  readonly retentionMs: number
}

export const defaultConfig: EngineConfig = {
  leaseMs: 5 * 60_000,
  retentionMs: 7 * 24 * 60 * 60_000
}

/** A validated scheduling request. */
export interface NewJob {
  readonly id: string
  readonly functionPath: string
  readonly args: string
  readonly runAt: number
  readonly retryDelaysMs: ReadonlyArray<number>
  readonly deadLetter: boolean
  readonly key: string | null
  readonly shardKey: string | null
  /** The workpool the job joins; `null` for a scheduled job. The pool must exist. */
  readonly pool: string | null
  /** Where the job is dispatched (opaque to the engine); the runtime that stores the job sets it. */
  readonly target?: string | null | undefined
  /** A job's own target (a webhook, a Workflow), which the runtime stores as the job's target instead of its call's. */
  readonly own?: OwnTarget | null | undefined
  /** The job whose handler schedules this one, if any. */
  readonly parentId?: string | null | undefined
}

export type ScheduleResult =
  | { readonly _tag: "Created"; readonly job: JobRecord }
  | { readonly _tag: "Existing"; readonly job: JobRecord }

/** `children`: how many pending jobs its handler scheduled (and theirs) were canceled with it. */
export type CancelResult =
  | { readonly _tag: "Canceled"; readonly job: JobRecord; readonly children: number }
  | { readonly _tag: "TooLate"; readonly job: JobRecord; readonly children: number }
  | { readonly _tag: "AlreadyFinished"; readonly job: JobRecord }
  | { readonly _tag: "NotFound" }

export type ReplayResult =
  | { readonly _tag: "Replayed"; readonly job: JobRecord }
  | { readonly _tag: "NotReplayable"; readonly reason: string }
  | { readonly _tag: "NotFound" }

/** An outcome report that no longer matches the job's current attempt is ignored. */
export type ReportResult =
  | { readonly _tag: "Recorded"; readonly job: JobRecord }
  | { readonly _tag: "Stale"; readonly job: JobRecord | undefined }

/** Whether the job `parentId` names is running under a cancel: what it schedules now is born canceled. */
const parentCanceled = (store: Store, parentId: string | null): boolean => {
  if (parentId === null) return false
  const parent = store.get(parentId)
  return parent !== undefined && parent.state === "inProgress" && parent.cancelRequested
}

/** The record of a new job: pending, or canceled at once when its parent was canceled while it runs. */
const newRecord = (store: Store, config: EngineConfig, now: number, job: NewJob): Omit<JobRecord, "seq"> => {
  const parentId = job.parentId ?? null
  // field by field: a rest pattern (`{ own, ...job }`) copies on V8's slow path, microseconds a job
  const record: Omit<JobRecord, "seq"> = {
    id: job.id,
    functionPath: job.functionPath,
    args: job.args,
    runAt: job.runAt,
    retryDelaysMs: job.retryDelaysMs,
    deadLetter: job.deadLetter,
    key: job.key,
    shardKey: job.shardKey,
    pool: job.pool,
    target: job.target ?? null,
    parentId,
    cancelRequested: false,
    state: "pending",
    scheduledFor: job.runAt,
    createdAt: now,
    startedAt: null,
    completedAt: null,
    attempt: 0,
    lastError: null,
    result: null
  }
  return parentCanceled(store, parentId)
    ? { ...finish(config, record, now, "canceled"), lastError: `canceled with its parent ${parentId}` }
    : record
}

/**
 * Stores jobs in one insert: each whose key a live job (stored, or earlier
 * in `jobs`) holds is that job instead.
 */
const insertAll = (store: Store, config: EngineConfig, now: number, jobs: ReadonlyArray<NewJob>): ReadonlyArray<ScheduleResult> => {
  // an Existing result, or the index of the record to insert
  const planned: Array<ScheduleResult | number> = []
  const records: Array<Omit<JobRecord, "seq">> = []
  const batchKeys = new Map<string, number>()
  for (const job of jobs) {
    const existing = job.key === null ? undefined : store.getLiveByKey(job.key)
    const earlier = job.key === null ? undefined : batchKeys.get(job.key)
    if (existing !== undefined) planned.push({ _tag: "Existing", job: existing })
    else if (earlier !== undefined) planned.push(-1 - earlier)
    else {
      const record = newRecord(store, config, now, job)
      if (job.key !== null && record.state === "pending") batchKeys.set(job.key, records.length)
      planned.push(records.length)
      records.push(record)
    }
  }
  const stored = store.insertMany(records)
  return planned.map((plan) =>
    typeof plan !== "number"
      ? plan
      : plan >= 0
      ? { _tag: "Created", job: stored[plan]! }
      : { _tag: "Existing", job: stored[-1 - plan]! }
  )
}

/**
 * Stores a job, or returns the live job that already holds its key. A job
 * scheduled by a handler whose job was canceled while it ran is stored
 * `canceled`: it never runs.
 */
export const schedule = (store: Store, config: EngineConfig, now: number, job: NewJob): ScheduleResult =>
  store.transaction(() => insertAll(store, config, now, [job])[0]!)

/**
 * Stores many jobs atomically; keys dedupe against stored jobs and within
 * the batch. One job is one insert, atomic by itself: it needs no
 * transaction (a savepoint costs the `SchedulerDO` about as much as a read).
 */
export const scheduleMany = (
  store: Store,
  config: EngineConfig,
  now: number,
  jobs: ReadonlyArray<NewJob>
): ReadonlyArray<ScheduleResult> =>
  jobs.length === 1 ? insertAll(store, config, now, jobs) : store.transaction(() => insertAll(store, config, now, jobs))

const finish = <J extends Omit<JobRecord, "seq">>(
  config: EngineConfig,
  job: J,
  now: number,
  state: Exclude<JobState, "pending" | "inProgress">
): J => ({
  ...job,
  state,
  completedAt: now,
  // dead letters are kept until replayed or purged; the rest until the retention ends
  runAt: state === "deadLettered" ? now : now + config.retentionMs
})

/** How many attempts a retry plan gives a job: its retry delays, and the first. */
export const maxAttempts = (job: { readonly retryDelaysMs: ReadonlyArray<number> }): number => job.retryDelaysMs.length + 1

/**
 * The rule of exhaustion, once: after failed attempt `attempt` (1-based), the
 * delay before the next one, or `undefined` when the job is exhausted (no
 * delay left in its plan, or a failure no retry can mend).
 */
export const retryDelayAfter = (
  job: { readonly retryDelaysMs: ReadonlyArray<number> },
  attempt: number,
  retryable: boolean
): number | undefined => (retryable ? job.retryDelaysMs[attempt - 1] : undefined)

const failed = (config: EngineConfig, now: number, job: JobRecord, error: string, retryable: boolean): JobRecord => {
  // a job canceled while it ran does not run again
  if (job.cancelRequested) return { ...finish(config, job, now, "canceled"), lastError: error }
  const delay = retryDelayAfter(job, job.attempt, retryable)
  return delay === undefined
    ? { ...finish(config, job, now, job.deadLetter ? "deadLettered" : "failed"), lastError: error }
    : { ...job, state: "pending", runAt: now + delay, scheduledFor: now + delay, lastError: error }
}

export interface PollResult {
  /** Jobs now `inProgress`, leased until their `runAt`, to be run. */
  readonly claimed: ReadonlyArray<JobRecord>
  /** Jobs whose lease ran out: each counted as a failed attempt. */
  readonly expired: ReadonlyArray<JobRecord>
  /** Finished jobs removed at the end of their retention. */
  readonly swept: number
}

const SWEPT_STATES = ["success", "failed", "canceled"] as const

/** Due jobs of one queue (the scheduled jobs, or one pool) that may be leased now. */
interface Lane {
  inFlight: number
  readonly candidates: ReadonlyArray<JobRecord>
  next: number
}

/** How many more of a pool's jobs may start now: none while paused, else its cap less its jobs in flight. */
export const openSlots = (pool: PoolRecord, inFlight: number) => (pool.paused ? 0 : pool.maxConcurrency - inFlight)

const before = (a: JobRecord, b: JobRecord) => a.runAt < b.runAt || (a.runAt === b.runAt && a.seq < b.seq)

/** The lane to lease from next: the one with the fewest jobs in flight, then the earliest due job. */
const pickLane = (lanes: ReadonlyArray<Lane>): Lane | undefined => {
  let best: Lane | undefined
  for (const lane of lanes) {
    if (lane.next >= lane.candidates.length) continue
    if (
      best === undefined || lane.inFlight < best.inFlight ||
      (lane.inFlight === best.inFlight && before(lane.candidates[lane.next]!, best.candidates[best.next]!))
    ) best = lane
  }
  return best
}

/**
 * Leases up to `limit` due jobs: each `inProgress`, attempt + 1, until
 * `now + lease`. Pool admission: a paused pool gives none, and a pool gives at
 * most `maxConcurrency` minus its jobs already in flight, in `(runAt, seq)`
 * order (FIFO). The scheduled jobs and each pool are lanes; each lease goes to
 * the lane with the fewest jobs in flight (then the earliest due job), so no
 * pool starves another or the scheduled jobs when `limit` is scarce.
 */
export const claim = (store: Store, config: EngineConfig, now: number, limit: number): ReadonlyArray<JobRecord> =>
  store.transaction(() => {
    if (limit <= 0) return []
    const lanes: Array<Lane> = []
    for (const pool of store.listPools()) {
      if (pool.pull === true) continue
      const inFlight = store.countInPool(pool.name, "inProgress")
      const candidates = store.ready(pool.name, now, Math.min(openSlots(pool, inFlight), limit))
      if (candidates.length > 0) lanes.push({ inFlight, candidates, next: 0 })
    }
    const scheduled = store.ready(null, now, limit)
    // first among equals; its jobs in flight only matter against a pool's
    if (scheduled.length > 0) {
      lanes.unshift({ inFlight: lanes.length > 0 ? store.countInPool(null, "inProgress") : 0, candidates: scheduled, next: 0 })
    }
    const claimed: Array<JobRecord> = []
    for (let lane = pickLane(lanes); lane !== undefined && claimed.length < limit; lane = pickLane(lanes)) {
      const job = lane.candidates[lane.next++]!
      lane.inFlight++
      claimed.push({ ...job, state: "inProgress", attempt: job.attempt + 1, startedAt: now, runAt: now + config.leaseMs })
    }
    store.updateMany(claimed)
    return claimed
  })

/**
 * One pass of the drain loop at `now`: fail up to `limit` expired leases,
 * sweep up to `limit` finished jobs per state past retention, and lease up to
 * `claimLimit` due jobs (`claim`), marking each `inProgress` before it is run.
 */
export const poll = (
  store: Store,
  config: EngineConfig,
  now: number,
  limit: number,
  claimLimit: number = limit
): PollResult =>
  store.transaction(() => {
    const expired = store.due("inProgress", now, limit).map((job) => {
      const pulled = job.pool !== null && store.getPool(job.pool)?.pull === true
      const reason = pulled
        ? `lease expired: the worker sent no outcome or heartbeat within its lease of ${job.runAt - (job.startedAt ?? job.runAt)} ms`
        : `lease expired: no outcome within ${config.leaseMs} ms`
      const next = failed(config, now, job, reason, true)
      store.update(next)
      return next
    })
    let swept = 0
    for (const state of SWEPT_STATES) {
      for (const job of store.due(state, now, limit)) {
        store.remove(job.id)
        swept++
      }
    }
    return { claimed: claim(store, config, now, claimLimit), expired, swept }
  })

/** Records a successful attempt (`record` of one outcome). */
export const complete = (
  store: Store,
  config: EngineConfig,
  now: number,
  id: string,
  attempt: number,
  result: string | null
): ReportResult => record(store, config, now, [{ id, attempt, ok: true, result }])[0]!

/**
 * Records a failed attempt: back to `pending` at the next retry delay, or,
 * when no attempt is left or `retryable` is false, `deadLettered` (or
 * `failed` for jobs scheduled without a dead letter). `record` of one outcome.
 */
export const fail = (
  store: Store,
  config: EngineConfig,
  now: number,
  id: string,
  attempt: number,
  error: string,
  retryable: boolean
): ReportResult => record(store, config, now, [{ id, attempt, ok: false, error, retryable }])[0]!

/** What one attempt of a job came to, as its dispatch reported it. */
export type AttemptOutcome =
  | { readonly id: string; readonly attempt: number; readonly ok: true; readonly result: string | null }
  | {
    readonly id: string
    readonly attempt: number
    readonly ok: false
    readonly error: string
    readonly retryable: boolean
  }

/**
 * Records many attempts' outcomes in one transaction (`complete` or `fail`
 * for each, in order); an outcome that no longer matches its job's attempt
 * is `Stale` and changes nothing.
 */
export const record = (
  store: Store,
  config: EngineConfig,
  now: number,
  outcomes: ReadonlyArray<AttemptOutcome>
): ReadonlyArray<ReportResult> =>
  store.transaction(() => {
    const jobs = new Map(store.getMany(outcomes.map((outcome) => outcome.id)).map((job) => [job.id, job]))
    const changed: Array<JobRecord> = []
    const results = outcomes.map((outcome): ReportResult => {
      const job = jobs.get(outcome.id)
      if (job === undefined || job.state !== "inProgress" || job.attempt !== outcome.attempt) return { _tag: "Stale", job }
      const next = outcome.ok
        ? { ...finish(config, job, now, "success"), result: outcome.result }
        : failed(config, now, job, outcome.error, outcome.retryable)
      // a second report of the same attempt finds it no longer in progress: each job is written once
      jobs.set(next.id, next)
      changed.push(next)
      return { _tag: "Recorded", job: next }
    })
    store.updateMany(changed)
    return results
  })

/**
 * A pending job will not run; a running one finishes (too late), but does
 * not retry, and what its handler schedules until its attempt ends is
 * canceled; a finished one stays as it is. Either way the pending jobs its
 * handler scheduled (and theirs) are canceled with it. With `pool`, only a
 * job of that pool is found.
 */
/** Cancels the pending jobs `parentId`'s handler scheduled, and theirs; how many. */
const cancelChildren = (store: Store, config: EngineConfig, now: number, parentId: string): number => {
  let canceled = 0
  const parents = [parentId]
  for (let parent = parents.pop(); parent !== undefined; parent = parents.pop()) {
    for (const child of store.pendingChildren(parent)) {
      store.update({ ...finish(config, child, now, "canceled"), lastError: `canceled with its parent ${parent}` })
      parents.push(child.id)
      canceled++
    }
  }
  return canceled
}

export const cancel = (store: Store, config: EngineConfig, now: number, id: string, pool?: string): CancelResult =>
  store.transaction(() => {
    const job = store.get(id)
    if (job === undefined || (pool !== undefined && job.pool !== pool)) return { _tag: "NotFound" }
    if (job.state === "inProgress") {
      const next: JobRecord = { ...job, cancelRequested: true }
      store.update(next)
      return { _tag: "TooLate", job: next, children: cancelChildren(store, config, now, id) }
    }
    if (job.state !== "pending") return { _tag: "AlreadyFinished", job }
    const next = finish(config, job, now, "canceled")
    store.update(next)
    return { _tag: "Canceled", job: next, children: cancelChildren(store, config, now, id) }
  })

/** Runs a dead-lettered or failed job again, from its first attempt, now. */
export const replay = (store: Store, now: number, id: string): ReplayResult =>
  store.transaction(() => {
    const job = store.get(id)
    if (job === undefined) return { _tag: "NotFound" }
    if (job.state !== "deadLettered" && job.state !== "failed") {
      return { _tag: "NotReplayable", reason: `it is ${job.state}; only deadLettered or failed jobs can be replayed` }
    }
    if (job.key !== null) {
      const holder = store.getLiveByKey(job.key)
      if (holder !== undefined) return { _tag: "NotReplayable", reason: `job ${holder.id} holds its key ${job.key}` }
    }
    const next: JobRecord = {
      ...job,
      state: "pending",
      runAt: now,
      scheduledFor: now,
      attempt: 0,
      startedAt: null,
      completedAt: null
    }
    store.update(next)
    return { _tag: "Replayed", job: next }
  })

export interface PurgeQuery {
  readonly ids?: ReadonlyArray<string> | undefined
  readonly functionPath?: string | undefined
  readonly limit: number
}

/** Deletes dead letters: the given ones, or up to `limit` (of one function, if named). */
export const purge = (store: Store, query: PurgeQuery): number =>
  store.transaction(() => {
    const jobs = query.ids === undefined
      ? store.list({ state: "deadLettered", functionPath: query.functionPath, limit: query.limit })
      : query.ids.flatMap((id) => {
        const job = store.get(id)
        return job?.state === "deadLettered" &&
            (query.functionPath === undefined || job.functionPath === query.functionPath)
          ? [job]
          : []
      })
    for (const job of jobs) store.remove(job.id)
    return jobs.length
  })

/**
 * How long a drain pass waits after `failures` failed passes in a row: 1 s,
 * doubling, at most a minute. A failing pass backs off instead of re-arming
 * into the past (which would spin), and still runs what it can.
 */
export const failureBackoffMs = (failures: number): number =>
  Math.min(60_000, 1_000 * 2 ** Math.min(Math.max(failures - 1, 0), 6))

/** The earliest `runAt` of `jobs` (for leased jobs: when the first lease ends); `Infinity` for none. */
export const earliestRunAt = (jobs: ReadonlyArray<{ readonly runAt: number }>): number =>
  jobs.reduce((min, job) => Math.min(min, job.runAt), Number.POSITIVE_INFINITY)

/** The earlier of two optional times. */
export const earliest = (a: number | undefined, b: number | undefined) =>
  a === undefined ? b : b === undefined ? a : Math.min(a, b)

/**
 * When `claim` next has a job to lease: the first due scheduled job, or the
 * first due job of a pool that is running and has a free slot. A full or
 * paused pool's queue counts for nothing: a completion, a lease expiry or a
 * resume changes that.
 */
export const nextClaimAt = (store: Store): number | undefined => {
  let at = store.nextReadyAt(null)
  for (const pool of store.listPools()) {
    if (pool.pull === true) continue
    if (openSlots(pool, store.countInPool(pool.name, "inProgress")) > 0) at = earliest(at, store.nextReadyAt(pool.name))
  }
  return at
}

/** When the engine next has work: a job to lease (`nextClaimAt`), a lease to expire, a sweep, or a cron to fire. */
export const nextWakeAt = (store: Store): number | undefined => {
  let wake = nextWorkAt(store)
  for (const state of SWEPT_STATES) wake = earliest(wake, store.nextRunAt(state))
  return wake
}

/**
 * `nextWakeAt` but for sweeps: when a job is next leased, a lease expires or
 * a cron fires. A sweep only forgets a finished job past its retention; it
 * may wait for the next of these (`TestScheduler.advance` steps by them).
 */
export const nextWorkAt = (store: Store): number | undefined =>
  earliest(earliest(store.nextCronAt(), nextClaimAt(store)), store.nextRunAt("inProgress"))

export interface Page {
  readonly jobs: ReadonlyArray<JobRecord>
  readonly nextAfterSeq: number | null
}

/** A page of jobs to list: by state or function path, after a sequence number. */
export interface ListQuery {
  readonly state?: JobState | undefined
  readonly functionPath?: string | undefined
  readonly afterSeq?: number | undefined
  readonly limit: number
}

export const list = (store: Store, query: ListQuery): Page => {
  const rows = store.list({ ...query, limit: query.limit + 1 })
  const jobs = rows.slice(0, query.limit)
  return { jobs, nextAfterSeq: rows.length > query.limit ? jobs[jobs.length - 1]!.seq : null }
}

const utc = (ms: number) => DateTime.unsafeMake(ms)
const optionalUtc = (ms: number | null) => (ms === null ? Option.none() : Option.some(utc(ms)))

/** JSON text as a value; text that is not JSON (a record damaged outside the engine) as itself. */
const parseStored = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

/** The public view of a record (already valid: the constructor's validation is skipped). */
export const toInfo = (job: JobRecord): JobInfo =>
  new JobInfo({
    id: job.id as JobId,
    functionPath: job.functionPath,
    args: parseStored(job.args),
    state: job.state,
    scheduledFor: utc(job.scheduledFor),
    createdAt: utc(job.createdAt),
    startedAt: optionalUtc(job.startedAt),
    completedAt: optionalUtc(job.completedAt),
    attempt: job.attempt,
    maxAttempts: maxAttempts(job),
    key: Option.fromNullable(job.key),
    shardKey: Option.fromNullable(job.shardKey),
    pool: Option.fromNullable(job.pool),
    parentId: Option.fromNullable(job.parentId as JobId | null),
    lastError: Option.fromNullable(job.lastError),
    result: job.result === null ? Option.none() : Option.some(parseStored(job.result))
  }, true)
