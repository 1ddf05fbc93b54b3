/**
 * A scheduler spread over several shards: a `Backend` over one backend per
 * shard (a `SchedulerDO` instance each, or a memory runtime each in tests),
 * adding no coordinator. A job goes to the shard of its shard key, else of
 * its key, else of the job whose handler scheduled it, else to a random one;
 * its id names the shard, so what takes an id goes to that shard alone. A
 * pool lives on the shard of its name, a cron on the shard of its name;
 * `list`, `purge` and `listCrons` fan out. The shard count is recorded on
 * shard 0: it may grow, and shrinks only while the shards it drops hold
 * nothing live.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { InvalidOptions, SchedulerUnavailable, SubmitIncomplete } from "../../SchedulerError.js"
import type { CronDefinition } from "../domain/cronSchedule.js"
import type { Refusal } from "../domain/failure.js"
import { shardFor, shardOfId, withShard } from "../domain/shards.js"
import type * as Engine from "../engine/engine.js"
import type { Stored } from "../engine/operations.js"
import { byName, type JobRecord } from "../engine/store.js"
import { type Backend, type ListPage, type Operation } from "./backend.js"

export interface ShardedOptions {
  /** How many shards new jobs, pools and crons are spread over. */
  readonly count: number
  /**
   * The backend of shard `shard`, for any shard an id can name: one beyond
   * `count` holds the jobs of a larger count that are still to be looked up.
   */
  readonly shard: (shard: number) => Backend
  /** The instance the shards belong to, for messages. */
  readonly instanceName: string
  /** Whether this shard count was found recorded already (by an earlier backend of this isolate), and a way to say so. */
  readonly claimed?: { readonly has: () => boolean; readonly add: () => void } | undefined
}

const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i)

const groupBy = <A>(items: ReadonlyArray<A>, key: (item: A) => number) => {
  const groups = new Map<number, Array<A>>()
  for (const item of items) {
    const at = key(item)
    const group = groups.get(at)
    if (group === undefined) groups.set(at, [item])
    else group.push(item)
  }
  return groups
}

/** `job` as stored on shard `placed`: its id names that shard. */
const onShard = (placed: number, job: Engine.NewJob): Engine.NewJob =>
  placed === 0 ? job : { ...job, id: withShard(job.id, placed) }

/** Whether record `a` comes before `b` in a merged list: by creation time, then shard, then insertion order. */
const before = (a: JobRecord, shardA: number, b: JobRecord, shardB: number) =>
  a.createdAt !== b.createdAt ? a.createdAt < b.createdAt : shardA !== shardB ? shardA < shardB : a.seq < b.seq

export const make = ({ claimed, count, instanceName, shard }: ShardedOptions): Backend => {
  const shards = range(0, count).map(shard)
  /** The largest shard count ever recorded, once read: ids of shards beyond it are of no shard. */
  let highest: number | undefined
  /** Whether this backend's count was accepted (here, or by an earlier backend of this isolate). */
  let confirmed = claimed?.has() ?? false
  /**
   * Runs `f` on the shard an id names. One beyond `count` is asked only when
   * a count that large was ever recorded (else the id is of no shard, and
   * shard 0 answers): a lookup of a made-up id creates no object.
   */
  const byId = <A, E>(id: string, f: (backend: Backend) => Effect.Effect<A, E>) =>
    Effect.flatMap(knowing([id]), () => f(shard(routed(id))))
  /** The shard an id is looked up on: the one it names, if a count that large was ever recorded (as far as known); else 0. */
  const routed = (id: string) => {
    const named = shardOfId(id) ?? 0
    return named < Math.max(count, highest ?? 0) ? named : 0
  }
  /** Reads the highest count ever recorded first, when one of `ids` names a shard beyond `count` and it is not known yet. */
  const knowing = (ids: ReadonlyArray<string>): Effect.Effect<void> =>
    highest === undefined && ids.some((id) => (shardOfId(id) ?? 0) >= count)
      ? Effect.asVoid(Effect.orElseSucceed(recorded, () => undefined))
      : Effect.void
  const onShardOf = (name: string) => shards[shardFor(name, count)]!

  /** The shard a new job goes to. */
  const placement = (job: Engine.NewJob): number => {
    if (job.shardKey !== null) return shardFor(job.shardKey, count)
    if (job.key !== null) return shardFor(job.key, count)
    const parent = job.parentId === null || job.parentId === undefined ? undefined : shardOfId(job.parentId)
    return parent !== undefined && parent < count ? parent : shardFor(job.id, count)
  }

  /**
   * The shard count recorded on shard 0 before this backend's (which is
   * recorded at once when it is larger); `undefined` when one shard cannot
   * read it now (one shard has nothing to place, so its calls go on as they
   * would without shards, and the check is made again on the next).
   */
  const recorded = shards[0]!.shards(count, false).pipe(
    Effect.map((record) => {
      highest = Math.max(highest ?? 0, record.highest)
      return record.recorded
    }),
    Effect.catchIf(() => count === 1, () => Effect.succeed(undefined))
  )
  /**
   * Accepts this backend's shard count, before anything is placed by it,
   * given the count recorded: a larger or equal one at once; a smaller one
   * only when the shards it drops hold no live job and no cron.
   */
  const accept = (previous: number | null | undefined) =>
    Effect.gen(function*() {
      if (previous === undefined) return
      if (previous !== null && previous > count) {
        const held = yield* Effect.forEach(
          range(count, previous),
          (dropped) => Effect.map(shard(dropped).census(), (census) => ({ shard: dropped, ...census })),
          { concurrency: 16 }
        )
        const busy = held.filter((census) => census.live > 0 || census.crons > 0)
        if (busy.length > 0) {
          const what = busy.map((census) => `shard ${census.shard}: ${census.live} live jobs, ${census.crons} crons`)
          return yield* new InvalidOptions({
            reason: `shards: ${count} would drop shards ${count} to ${previous - 1} of instance "${instanceName}", ` +
              `which still hold work (${what.join("; ")}); keep shards: ${previous} until they are empty`
          })
        }
        yield* shards[0]!.shards(count, true)
      }
      confirmed = true
      claimed?.add()
    })
  const claimOnce = Effect.suspend(() => (confirmed ? Effect.void : Effect.flatMap(recorded, accept)))
  /** For an operation that cannot be refused: a refused count makes the scheduler unusable from here. */
  const unusable = (operation: string) => (refusal: InvalidOptions) =>
    new SchedulerUnavailable({ operation, reason: refusal.reason })

  /** On one shard whose count is settled, the shard's own plain `schedule`. */
  const schedulePlainly = (jobs: ReadonlyArray<Engine.NewJob>) =>
    count === 1 && confirmed ? shards[0]!.schedulePlainly?.(jobs) : undefined

  const schedule: Operation<"schedule"> = (jobs) =>
    count === 1 ? Effect.zipRight(claimOnce, shards[0]!.schedule(jobs)) : Effect.gen(function*() {
      yield* claimOnce
      const groups = [...groupBy(range(0, jobs.length), (index) => placement(jobs[index]!))].map(([placed, indices]) => ({
        placed,
        indices,
        jobs: indices.map((index) => onShard(placed, jobs[index]!))
      }))
      if (groups.length === 1) return yield* shards[groups[0]!.placed]!.schedule(groups[0]!.jobs)
      const outcomes = yield* Effect.forEach(
        groups,
        (group) => Effect.either(shards[group.placed]!.schedule(group.jobs)),
        { concurrency: "unbounded" }
      )
      const results: Array<Stored | undefined> = Array.from({ length: jobs.length })
      let failure: Refusal | SchedulerUnavailable | undefined
      groups.forEach((group, index) => {
        const outcome = outcomes[index]!
        if (Either.isRight(outcome)) group.indices.forEach((at, i) => results[at] = outcome.right[i])
        else failure ??= outcome.left._tag === "SubmitIncomplete" ? outcome.left.failure : outcome.left
      })
      if (failure === undefined) return results as Array<Stored>
      if (results.every((result) => result === undefined)) return yield* failure
      return yield* new SubmitIncomplete({ stored: results.map((result) => result?.job.id ?? null), failure })
    })

  const list = (query: Parameters<Backend["list"]>[0]) =>
    count === 1 ? shards[0]!.list(query) : Effect.gen(function*() {
      const after = query.after ?? range(0, count).map(() => 0)
      const pages = yield* Effect.forEach(
        shards,
        (backend, index): Effect.Effect<ListPage, SchedulerUnavailable> =>
          after[index] === -1
            ? Effect.succeed({ jobs: [], next: null })
            : backend.list({ ...query, after: [after[index] ?? 0] }),
        { concurrency: "unbounded" }
      )
      const taken = pages.map(() => 0)
      const jobs: Array<JobRecord> = []
      while (jobs.length < query.limit) {
        let next = -1
        pages.forEach((page, index) => {
          const job = page.jobs[taken[index]!]
          if (job !== undefined && (next === -1 || before(job, index, pages[next]!.jobs[taken[next]!]!, next))) next = index
        })
        if (next === -1) break
        jobs.push(pages[next]!.jobs[taken[next]!]!)
        taken[next]!++
      }
      const positions = pages.map((page, index) => {
        const done = taken[index] === page.jobs.length && page.next === null
        return done ? -1 : taken[index] === 0 ? after[index] ?? 0 : page.jobs[taken[index]! - 1]!.seq
      })
      return { jobs, next: positions.every((position) => position === -1) ? null : positions }
    })

  const purge: Operation<"purge"> = ({ ids, ...query }) =>
    Effect.gen(function*() {
      if (ids !== undefined) yield* knowing(ids)
      const groups = ids === undefined
        ? shards.map((backend) => [backend, undefined] as const)
        : [...groupBy(ids, routed)].map(([placed, group]) => [shard(placed), group] as const)
      let purged = 0
      for (const [backend, group] of groups) {
        if (purged >= query.limit) break
        purged += yield* backend.purge({ ...query, ids: group, limit: query.limit - purged })
      }
      return purged
    })

  const reconcileCrons: Operation<"reconcileCrons"> = (crons) =>
    Effect.gen(function*() {
      // crons are removed from the shards a smaller count drops first, so the count can shrink
      const previous = confirmed ? count : yield* recorded
      const spread = Math.max(count, previous ?? 1)
      const subsets = range(0, spread).map((): Array<CronDefinition> => [])
      for (const cron of crons) subsets[shardFor(cron.name, count)]!.push(cron)
      const results = yield* Effect.forEach(
        subsets,
        (subset, placed) => shard(placed).reconcileCrons(subset, placed),
        { concurrency: "unbounded" }
      )
      if (!confirmed) yield* Effect.catchTag(accept(previous), "InvalidOptions", unusable("reconcileCrons"))
      const added = new Set(results.flatMap((result) => result.added))
      const removed = new Set(results.flatMap((result) => result.removed))
      // a cron that moved to another shard was removed from one and added to another: it changed
      const moved = [...added].filter((name) => removed.has(name))
      return {
        added: [...added].filter((name) => !removed.has(name)),
        changed: [...results.flatMap((result) => result.changed), ...moved].sort(),
        removed: [...removed].filter((name) => !added.has(name))
      }
    })

  return {
    now: shards[0]!.now,
    shardCount: count,
    awaitFinished: (id) => byId(id, (backend) => backend.awaitFinished(id)),
    metrics: shards.every((backend) => backend.metrics !== undefined)
      ? () =>
        Effect.map(
          Effect.forEach(shards, (backend) => backend.metrics!(), { concurrency: "unbounded" }),
          (all) => all.flatMap((one, shard) => one.map(({ samples }) => ({ shard, samples })))
        )
      : undefined,
    schedule,
    schedulePlainly,
    cancel: (id, pool) => byId(id, (backend) => backend.cancel(id, pool)),
    get: (id) => byId(id, (backend) => backend.get(id)),
    list,
    replay: (id) => byId(id, (backend) => backend.replay(id)),
    purge,
    reconcileCrons,
    listCrons: () =>
      Effect.map(
        Effect.forEach(shards, (backend) => backend.listCrons(), { concurrency: "unbounded" }),
        (crons) => crons.flat().sort(byName)
      ),
    triggerCron: (name) => onShardOf(name).triggerCron(name),
    definePool: (name, maxConcurrency, pull) =>
      Effect.zipRight(
        Effect.catchTag(claimOnce, "InvalidOptions", unusable("definePool")),
        onShardOf(name).definePool(name, maxConcurrency, pull)
      ),
    updatePool: (name, change) => onShardOf(name).updatePool(name, change),
    enqueue: (pool, jobs) => {
      const placed = shardFor(pool, count)
      return Effect.zipRight(
        claimOnce,
        shards[placed]!.enqueue(pool, jobs.map((job) => onShard(placed, job)))
      )
    },
    poolStatus: (name) => onShardOf(name).poolStatus(name),
    cancelQueued: (name, limit) => onShardOf(name).cancelQueued(name, limit),
    leasePulled: (name, limit, leaseMs) => onShardOf(name).leasePulled(name, limit, leaseMs),
    heartbeatPulled: (name, id, attempt, leaseMs) => onShardOf(name).heartbeatPulled(name, id, attempt, leaseMs),
    reportPulled: (name, outcome) => onShardOf(name).reportPulled(name, outcome),
    // every shard watches its own outcomes: an alert is declared on each, and an error rate is a shard's
    reconcileAlerts: (alerts) =>
      Effect.map(
        Effect.forEach(shards, (backend) => backend.reconcileAlerts(alerts), { concurrency: "unbounded" }),
        (all) => all[0]!
      ),
    listAlerts: () => shards[0]!.listAlerts(),
    listPools: () =>
      Effect.map(
        Effect.forEach(shards, (backend) => backend.listPools(), { concurrency: "unbounded" }),
        (pools) => pools.flat().sort(byName)
      ),
    stats: () =>
      Effect.map(Effect.forEach(shards, (backend) => backend.stats(), { concurrency: "unbounded" }), (all) => ({
        jobs: Object.fromEntries(
          Object.keys(all[0]!.jobs).map((state) => [state, all.reduce((n, one) => n + one.jobs[state as never], 0)])
        ) as (typeof all)[number]["jobs"],
        crons: all.reduce((n, one) => n + one.crons, 0),
        pools: all.reduce((n, one) => n + one.pools, 0)
      })),
    shards: (shardCount, shrink) => shards[0]!.shards(shardCount, shrink),
    census: () =>
      Effect.map(
        Effect.forEach(shards, (backend) => backend.census(), { concurrency: "unbounded" }),
        (all) => ({ live: all.reduce((n, c) => n + c.live, 0), crons: all.reduce((n, c) => n + c.crons, 0) })
      )
  }
}
