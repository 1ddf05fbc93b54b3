/**
 * The storage backend of the scheduler engine. The engine holds every rule;
 * a store only keeps records and answers ordered look-ups. Two stores exist:
 * in memory (tests, the test layer) and SQLite in the `SchedulerDO`; both
 * pass the same conformance suite.
 *
 * The interface is synchronous on purpose: Durable Object SQLite is
 * synchronous, and `transaction` maps onto `ctx.storage.transactionSync`.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Layer from "effect/Layer"
import type { JobState } from "../../Job.js"

/**
 * A job as stored. Times are epoch milliseconds. `runAt` is when the engine
 * next has to act on the job: the due time of a `pending` job, the lease
 * deadline of an `inProgress` one, and the sweep time of a finished one.
 *
 * @since 0.1.0
 * @category models
 */
export interface JobRecord {
  readonly id: string
  /** Insertion order, assigned by the store; ties on `runAt` go by it. */
  readonly seq: number
  readonly functionPath: string
  /** The payload's JSON text. */
  readonly args: string
  readonly state: JobState
  readonly runAt: number
  readonly scheduledFor: number
  readonly createdAt: number
  readonly startedAt: number | null
  readonly completedAt: number | null
  readonly attempt: number
  /** Delays before attempts 2, 3, …: the job has `retryDelaysMs.length + 1` attempts. */
  readonly retryDelaysMs: ReadonlyArray<number>
  /** Whether exhaustion parks the job as `deadLettered` (else `failed`). */
  readonly deadLetter: boolean
  readonly key: string | null
  readonly shardKey: string | null
  /** The workpool the job belongs to; `null` for a scheduled job. */
  readonly pool: string | null
  /** Where the job is dispatched (the JSON of its target), as it was scheduled; `null` in the memory runtime. */
  readonly target: string | null
  /** The job whose handler scheduled this one, if any. */
  readonly parentId: string | null
  /** A cancel asked while the job ran: what it schedules until its attempt ends is canceled, and it does not retry. */
  readonly cancelRequested: boolean
  readonly lastError: string | null
  /** The result's JSON text. */
  readonly result: string | null
}

/**
 * A declared cron as stored: its schedule (JSON of `CronSpec.CronSchedule`),
 * the job it runs, and its firing record. Times are epoch milliseconds.
 *
 * @since 0.1.0
 * @category models
 */
export interface CronRecord {
  readonly name: string
  /** The schedule's JSON text. */
  readonly schedule: string
  readonly functionPath: string
  readonly args: string
  /** The next scheduled fire. */
  readonly nextRunAt: number
  /** The scheduled time of the last fire (or skip). */
  readonly lastRunAt: number | null
  /** The job of the last fire: while it is live, a due fire is skipped. */
  readonly lastJobId: string | null
  /** `"fired"` or `"skipped: ..."`, for the last scheduled time. */
  readonly lastOutcome: string | null
  /** How many fires were skipped because the previous run was still live. */
  readonly skipped: number
  /** Where its jobs are dispatched (the JSON of its target), as it was declared; `null` in the memory runtime. */
  readonly target: string | null
}

/**
 * A workpool as stored: its concurrency cap and whether it is paused.
 *
 * @since 0.1.0
 * @category models
 */
export interface PoolRecord {
  readonly name: string
  /** The cap in force: at most this many of the pool's jobs are `inProgress`. */
  readonly maxConcurrency: number
  /** The cap last declared in code; a declaration that changes it replaces the cap in force. */
  readonly declaredMaxConcurrency: number
  readonly paused: boolean
  readonly createdAt: number
  /** A pull pool: its jobs are leased by workers (`leasePulled`), never dispatched by the scheduler. */
  readonly pull?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ListQuery {
  readonly state?: JobState | undefined
  readonly functionPath?: string | undefined
  /** Only records with a greater `seq`. */
  readonly afterSeq?: number | undefined
  readonly limit: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Store {
  /** Runs `f` atomically: a throw leaves the store as it was. Nested calls roll back on their own. */
  readonly transaction: <A>(f: () => A) => A
  readonly insert: (job: Omit<JobRecord, "seq">) => JobRecord
  /** Inserts each, in order (their `seq`s ascending in that order): one statement where the store can. */
  readonly insertMany: (jobs: ReadonlyArray<Omit<JobRecord, "seq">>) => ReadonlyArray<JobRecord>
  /** Replaces the record with the same id. */
  readonly update: (job: JobRecord) => void
  /**
   * Writes each record's progress (state, run and start/completion times,
   * attempt, cancel flag, last error, result) over the stored one with the
   * same id: one statement where the store can. The rest of a job (what to
   * run, its payload, key, plan, pool, target, parent) never changes after
   * it is stored. Throws, and writes nothing inside a transaction, when one
   * is not stored.
   */
  readonly updateMany: (jobs: ReadonlyArray<JobRecord>) => void
  readonly remove: (id: string) => void
  readonly get: (id: string) => JobRecord | undefined
  /** The stored records among `ids`, in no particular order (one statement where the store can). */
  readonly getMany: (ids: ReadonlyArray<string>) => ReadonlyArray<JobRecord>
  /** The `pending` or `inProgress` record holding `key`. */
  readonly getLiveByKey: (key: string) => JobRecord | undefined
  /** The `pending` records scheduled by `parentId`'s handler, by `seq`. */
  readonly pendingChildren: (parentId: string) => ReadonlyArray<JobRecord>
  /** Records in `state` with `runAt <= until`, by `(runAt, seq)`. */
  readonly due: (state: JobState, until: number, limit: number) => ReadonlyArray<JobRecord>
  /** The smallest `runAt` in `state`. */
  readonly nextRunAt: (state: JobState) => number | undefined
  /** Records by `seq`, filtered. */
  readonly list: (query: ListQuery) => ReadonlyArray<JobRecord>
  readonly count: (state: JobState) => number
  /** `pending` records of `pool` (`null`: in no pool) with `runAt <= until`, by `(runAt, seq)`. */
  readonly ready: (pool: string | null, until: number, limit: number) => ReadonlyArray<JobRecord>
  /** The smallest `runAt` of the `pending` records of `pool` (`null`: in no pool). */
  readonly nextReadyAt: (pool: string | null) => number | undefined
  /** How many records of `pool` (`null`: in no pool) are in `state`. */
  readonly countInPool: (pool: string | null, state: JobState) => number
  /** Inserts or replaces the pool with the same name. */
  readonly putPool: (pool: PoolRecord) => void
  readonly getPool: (name: string) => PoolRecord | undefined
  /** Every pool, by name. */
  readonly listPools: () => ReadonlyArray<PoolRecord>
  /** Inserts or replaces the cron with the same name. */
  readonly putCron: (cron: CronRecord) => void
  readonly removeCron: (name: string) => void
  readonly getCron: (name: string) => CronRecord | undefined
  /** Every cron, by name. */
  readonly listCrons: () => ReadonlyArray<CronRecord>
  /** Crons with `nextRunAt <= until`, by `(nextRunAt, name)`. */
  readonly dueCrons: (until: number, limit: number) => ReadonlyArray<CronRecord>
  /** The smallest `nextRunAt`. */
  readonly nextCronAt: () => number | undefined
  /** A setting of this scheduler instance (such as its shard), as stored. */
  readonly setting: (name: string) => string | undefined
  /** Inserts or replaces a setting. */
  readonly putSetting: (name: string, value: string) => void
}

/**
 * @since 0.1.0
 * @category tags
 */
export class JobStore extends Context.Tag("@lunora/scheduler/JobStore")<JobStore, Store>() {}

const isLive = (state: JobState) => state === "pending" || state === "inProgress"

/** How many records a chunk of a `Timeline` holds before it splits in two. */
const CHUNK = 256

/** A run of a `Timeline`'s records, with their keys and `seq`s beside them (numbers compare faster than records are read). */
interface Chunk {
  readonly keys: Array<number>
  readonly seqs: Array<number>
  readonly jobs: Array<JobRecord>
}

const splitChunk = (chunk: Chunk, at: number): Chunk => ({
  keys: chunk.keys.splice(at),
  seqs: chunk.seqs.splice(at),
  jobs: chunk.jobs.splice(at)
})

/**
 * Records in `(key, seq)` order, changed in place: a list of sorted chunks
 * (a B-tree of one level), so an insert or a removal is two binary searches
 * and a copy within one chunk, and the first records are read where they
 * are. `seq` is unique, so a record is found by its key and `seq`.
 */
class Timeline {
  private readonly chunks: Array<Chunk> = []
  private chunk = 0
  private place = 0
  size = 0

  constructor(private readonly key: (job: JobRecord) => number) {}

  /** Finds where `(key, seq)` is or would go (`chunk` is `chunks.length` past the last record). */
  private locate(key: number, seq: number): void {
    const chunks = this.chunks
    let low = 0
    let high = chunks.length
    while (low < high) {
      const mid = (low + high) >>> 1
      const { keys, seqs } = chunks[mid]!
      const last = keys.length - 1
      if (keys[last]! < key || (keys[last] === key && seqs[last]! < seq)) low = mid + 1
      else high = mid
    }
    this.chunk = low
    const chunk = chunks[low]
    low = 0
    high = chunk?.keys.length ?? 0
    while (low < high) {
      const mid = (low + high) >>> 1
      if (chunk!.keys[mid]! < key || (chunk!.keys[mid] === key && chunk!.seqs[mid]! < seq)) low = mid + 1
      else high = mid
    }
    this.place = low
  }

  insert(job: JobRecord): void {
    const key = this.key(job)
    this.size++
    this.locate(key, job.seq)
    let chunk = this.chunks[this.chunk]
    if (chunk === undefined) {
      chunk = this.chunks[this.chunks.length - 1]
      if (chunk === undefined || chunk.keys.length >= CHUNK) {
        this.chunks.push({ keys: [key], seqs: [job.seq], jobs: [job] })
        return
      }
      this.place = chunk.keys.length
    }
    chunk.keys.splice(this.place, 0, key)
    chunk.seqs.splice(this.place, 0, job.seq)
    chunk.jobs.splice(this.place, 0, job)
    if (chunk.keys.length > CHUNK) this.chunks.splice(this.chunk + 1, 0, splitChunk(chunk, CHUNK / 2))
  }

  remove(job: JobRecord): void {
    this.locate(this.key(job), job.seq)
    const chunk = this.chunks[this.chunk]
    if (chunk === undefined || chunk.seqs[this.place] !== job.seq) return
    this.size--
    if (chunk.keys.length === 1) {
      this.chunks.splice(this.chunk, 1)
      return
    }
    chunk.keys.splice(this.place, 1)
    chunk.seqs.splice(this.place, 1)
    chunk.jobs.splice(this.place, 1)
  }

  /** Puts `job` where the record with its key and `seq` is. */
  replace(job: JobRecord): void {
    this.locate(this.key(job), job.seq)
    const chunk = this.chunks[this.chunk]
    if (chunk !== undefined && chunk.seqs[this.place] === job.seq) chunk.jobs[this.place] = job
  }

  /** The key of the first record. */
  firstKey(): number | undefined {
    return this.chunks[0]?.keys[0]
  }

  /**
   * Visits the records in order while `visit` says to go on, from the first
   * whose key is after `after` (from the first without it), as far as `until` when given.
   */
  each(visit: (job: JobRecord) => boolean, options?: { readonly after?: number | undefined; readonly until?: number }): void {
    const until = options?.until ?? Number.POSITIVE_INFINITY
    if (options?.after === undefined) this.chunk = this.place = 0
    else this.locate(options.after, Number.POSITIVE_INFINITY)
    for (let c = this.chunk, i = this.place; c < this.chunks.length; c++, i = 0) {
      const { jobs, keys } = this.chunks[c]!
      for (; i < jobs.length; i++) if (keys[i]! > until || !visit(jobs[i]!)) return
    }
  }
}

/** `job` with `seq`, field by field: every stored record has this one shape, whatever built it. */
const withSeq = (job: Omit<JobRecord, "seq">, seq: number): JobRecord => ({
  id: job.id,
  seq,
  functionPath: job.functionPath,
  args: job.args,
  state: job.state,
  runAt: job.runAt,
  scheduledFor: job.scheduledFor,
  createdAt: job.createdAt,
  startedAt: job.startedAt,
  completedAt: job.completedAt,
  attempt: job.attempt,
  retryDelaysMs: job.retryDelaysMs,
  deadLetter: job.deadLetter,
  key: job.key,
  shardKey: job.shardKey,
  pool: job.pool,
  target: job.target,
  parentId: job.parentId,
  cancelRequested: job.cancelRequested,
  lastError: job.lastError,
  result: job.result
})

/** The order of crons and pools: by name. */
export const byName = (a: { readonly name: string }, b: { readonly name: string }): -1 | 0 | 1 =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : 0

/**
 * A store in memory, indexed so that due look-ups, key look-ups and
 * pagination cost O(log n) at any size.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory = (): Store => {
  const byId = new Map<string, JobRecord>()
  const liveByKey = new Map<string, string>()
  const pendingByParent = new Map<string, Set<string>>()
  const timelines = new Map<JobState, Timeline>()
  const bySeq = new Timeline((job) => job.seq)
  let nextSeq = 1
  let undo: Array<() => void> | undefined
  // crons are few (declared in code): kept in a map, scanned in order when asked
  const crons = new Map<string, CronRecord>()
  const putCron = (name: string, next: CronRecord | undefined) => {
    const previous = crons.get(name)
    undo?.push(() => putCron(name, previous))
    if (next === undefined) crons.delete(name)
    else crons.set(name, next)
  }
  const cronsByTime = () =>
    [...crons.values()].sort((a, b) => a.nextRunAt - b.nextRunAt || byName(a, b))

  // pools are few (declared in code), like crons
  const pools = new Map<string, PoolRecord>()
  const putPool = (name: string, next: PoolRecord) => {
    const previous = pools.get(name)
    undo?.push(() => (previous === undefined ? pools.delete(name) : pools.set(name, previous)))
    pools.set(name, next)
  }
  const settings = new Map<string, string>()
  const putSetting = (name: string, next: string | undefined) => {
    const previous = settings.get(name)
    undo?.push(() => putSetting(name, previous))
    if (next === undefined) settings.delete(name)
    else settings.set(name, next)
  }

  // one timeline per state, and one per (pool, state); pool names are never empty
  const poolTimelines = new Map<string, Timeline>()
  const poolKey = (pool: string | null, state: JobState) => `${state}/${pool ?? ""}`
  const byRunAt = (job: JobRecord) => job.runAt
  const empty = new Timeline(byRunAt)

  const timeline = (state: JobState) => timelines.get(state) ?? empty
  const poolTimeline = (pool: string | null, state: JobState) => poolTimelines.get(poolKey(pool, state)) ?? empty
  const timelineIn = <K>(map: Map<K, Timeline>, key: K) => {
    let timeline = map.get(key)
    if (timeline === undefined) map.set(key, timeline = new Timeline(byRunAt))
    return timeline
  }

  const unindex = (job: JobRecord) => {
    timeline(job.state).remove(job)
    poolTimeline(job.pool, job.state).remove(job)
    if (job.key !== null && isLive(job.state) && liveByKey.get(job.key) === job.id) liveByKey.delete(job.key)
    if (job.parentId !== null && job.state === "pending") {
      const siblings = pendingByParent.get(job.parentId)
      siblings?.delete(job.id)
      if (siblings?.size === 0) pendingByParent.delete(job.parentId)
    }
  }

  const index = (job: JobRecord) => {
    timelineIn(timelines, job.state).insert(job)
    timelineIn(poolTimelines, poolKey(job.pool, job.state)).insert(job)
    if (job.key !== null && isLive(job.state)) liveByKey.set(job.key, job.id)
    if (job.parentId !== null && job.state === "pending") {
      const siblings = pendingByParent.get(job.parentId) ?? new Set<string>()
      pendingByParent.set(job.parentId, siblings.add(job.id))
    }
  }

  const upTo = (timeline: Timeline, until: number, limit: number) => {
    const out: Array<JobRecord> = []
    if (limit > 0) timeline.each((job) => out.push(job) < limit, { until })
    return out
  }

  const put = (id: string, next: JobRecord | undefined) => {
    const previous = byId.get(id)
    undo?.push(() => put(id, previous))
    if (previous !== undefined) unindex(previous)
    if (next === undefined) {
      byId.delete(id)
      if (previous !== undefined) bySeq.remove(previous)
      return
    }
    if (previous === undefined) bySeq.insert(next)
    else bySeq.replace(next)
    byId.set(id, next)
    index(next)
  }

  const insert = (job: Omit<JobRecord, "seq">): JobRecord => {
    if (byId.has(job.id)) throw new Error(`duplicate job id ${job.id}`)
    const record = withSeq(job, nextSeq++)
    put(record.id, record)
    return record
  }

  const update = (job: JobRecord): void => {
    const previous = byId.get(job.id)
    if (previous === undefined) throw new Error(`no job ${job.id} to update`)
    // records are never changed in place: one that has its seq is stored as it is
    put(job.id, job.seq === previous.seq ? job : withSeq(job, previous.seq))
  }

  return {
    transaction: (f) => {
      if (undo !== undefined) {
        const log = undo
        const mark = log.length
        try {
          return f()
        } catch (error) {
          const undone = log.splice(mark)
          undo = undefined
          for (let i = undone.length - 1; i >= 0; i--) undone[i]!()
          undo = log
          throw error
        }
      }
      const log: Array<() => void> = []
      undo = log
      try {
        return f()
      } catch (error) {
        undo = undefined
        for (let i = log.length - 1; i >= 0; i--) log[i]!()
        throw error
      } finally {
        undo = undefined
      }
    },
    insert,
    insertMany: (jobs) => jobs.map(insert),
    update,
    updateMany: (jobs) => {
      for (const job of jobs) update(job)
    },
    remove: (id) => put(id, undefined),
    get: (id) => byId.get(id),
    getMany: (ids) => ids.flatMap((id) => byId.get(id) ?? []),
    getLiveByKey: (key) => {
      const id = liveByKey.get(key)
      return id === undefined ? undefined : byId.get(id)
    },
    pendingChildren: (parentId) =>
      [...(pendingByParent.get(parentId) ?? [])].map((id) => byId.get(id)!).sort((a, b) => a.seq - b.seq),
    due: (state, until, limit) => upTo(timeline(state), until, limit),
    nextRunAt: (state) => timeline(state).firstKey(),
    list: ({ afterSeq, functionPath, limit, state }) => {
      const out: Array<JobRecord> = []
      if (limit <= 0) return out
      bySeq.each((job) => {
        if ((state === undefined || job.state === state) && (functionPath === undefined || job.functionPath === functionPath)) {
          out.push(job)
        }
        return out.length < limit
      }, { after: afterSeq })
      return out
    },
    count: (state) => timeline(state).size,
    ready: (pool, until, limit) => upTo(poolTimeline(pool, "pending"), until, limit),
    nextReadyAt: (pool) => poolTimeline(pool, "pending").firstKey(),
    countInPool: (pool, state) => poolTimeline(pool, state).size,
    putPool: (pool) => putPool(pool.name, pool),
    getPool: (name) => pools.get(name),
    listPools: () => [...pools.values()].sort(byName),
    putCron: (cron) => putCron(cron.name, cron),
    removeCron: (name) => putCron(name, undefined),
    getCron: (name) => crons.get(name),
    listCrons: () => [...crons.values()].sort(byName),
    dueCrons: (until, limit) => cronsByTime().filter((cron) => cron.nextRunAt <= until).slice(0, Math.max(0, limit)),
    nextCronAt: () => cronsByTime()[0]?.nextRunAt,
    setting: (name) => settings.get(name),
    putSetting
  }
}

/**
 * A fresh in-memory store per layer build.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<JobStore> = Layer.sync(JobStore, makeMemory)
