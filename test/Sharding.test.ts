import { describe, expect, it } from "@effect/vitest"
import { Clock, Context, Effect, Layer, Option, Ref, Schema, TestClock } from "effect"
import { CronRegistry, CronSpec, Job, JobRegistry, Scheduler, Workpool } from "@lunora/scheduler"
import * as TestScheduler from "@lunora/scheduler/testing"
import { SchedulerUnavailable } from "../src/SchedulerError.js"
import { shardFor, shardOfId } from "../src/internal/domain/shards.js"
import * as JobStore from "../src/internal/engine/store.js"
import type { Backend } from "../src/internal/services/backend.js"
import { makeBackend } from "../src/internal/services/memory.js"
import * as Sharded from "../src/internal/services/sharded.js"

interface Run {
  readonly id: string
  readonly n: number
  readonly at: number
  readonly due: number
}

class Runs extends Context.Tag("test/ShardRuns")<Runs, Ref.Ref<ReadonlyArray<Run>>>() {}

const Work = Job.make("shards:work", { payload: Schema.Struct({ n: Schema.Int, ms: Schema.optional(Schema.Int) }) })
/** Schedules two follow-ups without a key (they go to its shard) and one with a key (it goes to the key's). */
const Parent = Job.make("shards:parent", { payload: Schema.Struct({ name: Schema.String }) })

const handlers = Layer.mergeAll(
  Work.toLayer((payload, ctx) =>
    Effect.gen(function*() {
      const at = yield* Clock.currentTimeMillis
      yield* Ref.update(yield* Runs, (all) => [...all, { id: ctx.id, n: payload.n, at, due: ctx.scheduledFor.epochMillis }])
      if (payload.ms !== undefined) yield* Effect.sleep(payload.ms)
    })
  ),
  Parent.toLayer((payload) =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      yield* scheduler.runAfter("1 hour", Work, { n: 1 })
      yield* scheduler.runAfter("1 hour", Work, { n: 2 })
      yield* scheduler.runAfter("1 hour", Work, { n: 3 }, { key: `${payload.name}:keyed` })
      yield* Effect.sleep("1 minute")
    })
  )
)

const layer = (options: Scheduler.MemoryOptions = { shards: 4 }) =>
  handlers.pipe(
    Layer.provideMerge(Layer.merge(TestScheduler.layer(options), Layer.effect(Runs, Ref.make<ReadonlyArray<Run>>([]))))
  )

const runs = Effect.flatMap(Runs, Ref.get)
const shardsOf = (ids: ReadonlyArray<string>) => new Set(ids.map((id) => shardOfId(id)))

/** Every job of a list, page by page. */
const listAll = (scheduler: Scheduler.Scheduler["Type"], query: Scheduler.ListQuery) =>
  Effect.gen(function*() {
    const all: Array<Job.JobInfo> = []
    let page = yield* scheduler.list(query)
    for (;;) {
      all.push(...page.jobs)
      if (Option.isNone(page.cursor)) return all
      page = yield* scheduler.list({ cursor: page.cursor.value, limit: query.limit })
    }
  })

describe("a sharded scheduler (test layer, TestClock)", () => {
  it.effect("spreads jobs over the shards, names the shard in each id, and runs each once, on time", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const ids: Array<string> = []
      for (let n = 0; n < 40; n++) ids.push(yield* scheduler.runAfter(`${n + 1} seconds`, Work, { n }))
      expect(shardsOf(ids).size).toBeGreaterThan(1)
      for (const id of ids) expect(shardOfId(id)).toBeLessThan(4)
      yield* TestClock.adjust("1 minute")
      const all = yield* runs
      expect(all.map((run) => run.n)).toEqual(Array.from({ length: 40 }, (_, n) => n))
      expect(all.every((run) => run.at === run.due)).toBe(true)
      for (const id of ids) expect((yield* scheduler.get(id)).state).toBe("success")
    }).pipe(Effect.provide(layer())))

  it.effect("get, cancel and replay go to the job's shard; an id of no shard is not found", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const ids: Array<string> = []
      for (let n = 0; n < 12; n++) ids.push(yield* scheduler.runAfter("1 hour", Work, { n }))
      for (const id of ids) expect(yield* scheduler.cancel(id)).toMatchObject({ _tag: "Canceled", id })
      expect(yield* Effect.flip(scheduler.get("job_9z_000000000000000000"))).toMatchObject({ _tag: "JobNotFound" })
      expect(yield* Effect.flip(scheduler.cancel("not-an-id"))).toMatchObject({ _tag: "JobNotFound" })
      yield* TestClock.adjust("2 hours")
      expect(yield* runs).toEqual([])
      for (const id of ids) expect((yield* scheduler.get(id)).state).toBe("canceled")
    }).pipe(Effect.provide(layer())))

  it.effect("list fans out and merges in the order jobs were scheduled, page by page with one cursor", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const ids: Array<string> = []
      for (let n = 0; n < 30; n++) {
        ids.push(yield* scheduler.runAfter("1 hour", Work, { n }))
        yield* TestClock.adjust("1 millis")
      }
      const all = yield* listAll(scheduler, { limit: 7 })
      expect(all.map((job) => job.id)).toEqual(ids)
      const firstPage = yield* scheduler.list({ limit: 7 })
      expect(firstPage.jobs.map((job) => job.id)).toEqual(ids.slice(0, 7))
      // the cursor carries its filter and its shard count
      expect(yield* Effect.flip(scheduler.list({ cursor: Option.getOrThrow(firstPage.cursor), state: "success" })))
        .toMatchObject({ _tag: "InvalidOptions" })
      const single = yield* Scheduler.makeMemory()
      expect(yield* Effect.flip(single.list({ cursor: Option.getOrThrow(firstPage.cursor) }))).toMatchObject({
        _tag: "InvalidOptions",
        reason: "cursor belongs to a list over 4 shards, not 1"
      })
      yield* TestClock.adjust("2 hours")
      expect((yield* listAll(scheduler, { state: "success", limit: 4 })).map((job) => job.id)).toEqual(ids)
      expect(yield* scheduler.list({ state: "pending" })).toMatchObject({ jobs: [], cursor: Option.none() })
    }).pipe(Effect.provide(layer()), Effect.provide(JobRegistry.layer), Effect.scoped))

  it.effect("a key lands on one shard and dedupes; jobs of one shardKey share a shard", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const first = yield* scheduler.runAfter("1 hour", Work, { n: 1 }, { key: "invoice:7" })
      const again = yield* scheduler.submit([{ job: Work, payload: { n: 2 }, after: "2 hours", options: { key: "invoice:7" } }])
      expect(again[0]).toMatchObject({ _tag: "Existing", id: first })
      expect(shardOfId(first)).toBe(shardFor("invoice:7", 4))
      const tenant: Array<string> = []
      for (let n = 0; n < 10; n++) tenant.push(yield* scheduler.runAfter("1 hour", Work, { n }, { shardKey: "tenant-a" }))
      expect([...shardsOf(tenant)]).toEqual([shardFor("tenant-a", 4)])
      yield* TestClock.adjust("3 hours")
      expect((yield* runs).filter((run) => run.id === first)).toHaveLength(1)
    }).pipe(Effect.provide(layer())))

  it.effect("a handler's jobs without a key go to its shard, so canceling it cancels them; a keyed one goes to its key's", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const parents: Array<string> = []
      for (let n = 0; n < 8; n++) parents.push(yield* scheduler.runAfter(0, Parent, { name: `p${n}` }))
      yield* TestClock.adjust("10 seconds")
      const children = (yield* scheduler.list({ state: "pending", limit: 1000 })).jobs
      expect(children).toHaveLength(24)
      for (const child of children) {
        const parent = Option.getOrThrow(child.parentId)
        const keyed = Option.isSome(child.key)
        expect(shardOfId(child.id)).toBe(keyed ? shardFor(Option.getOrThrow(child.key), 4) : shardOfId(parent))
      }
      // the keyed one is canceled with its parent only where its key's shard is its parent's
      const apart = children.filter((child) =>
        Option.isSome(child.key) && shardOfId(child.id) !== shardOfId(Option.getOrThrow(child.parentId))
      )
      expect(apart.length).toBeGreaterThan(0)
      for (const parent of parents) {
        const away = apart.some((child) => Option.getOrThrow(child.parentId) === parent)
        expect(yield* scheduler.cancel(parent)).toMatchObject({ _tag: "TooLate", children: away ? 2 : 3 })
      }
      yield* TestClock.adjust("2 hours")
      expect((yield* runs).map((run) => run.id).sort()).toEqual(apart.map((child) => child.id).sort())
    }).pipe(Effect.provide(layer())))

  it.effect("a workpool lives on one shard, so its cap holds for the whole pool", () =>
    Effect.gen(function*() {
      const pool = yield* Workpool.Workpool
      const ids: Array<string> = []
      for (let n = 0; n < 12; n++) ids.push((yield* pool.enqueue(Work, { n, ms: 10_000 }, { key: `pooled:${n}` })).id)
      expect([...shardsOf(ids)]).toEqual([shardFor("reports", 4)])
      yield* TestClock.adjust("1 millis")
      expect(yield* pool.status).toMatchObject({ inFlight: 3, queued: 9 })
      yield* TestClock.adjust("1 minute")
      const all = yield* runs
      expect(all).toHaveLength(12)
      const starts = all.map((run) => run.at).sort((a, b) => a - b)
      for (let i = 3; i < starts.length; i++) expect(starts[i]! - starts[i - 3]!).toBeGreaterThanOrEqual(10_000)
    }).pipe(
      Effect.provide(Workpool.layerMemory({ name: "reports", maxConcurrency: 3 }).pipe(Layer.provideMerge(layer())))
    ))

  it.effect("a cron lives on one shard: it fires once per tick, its jobs' ids name that shard", () => {
    const crons = CronSpec.cronJobs().interval("ping", { minutes: 10 }, Work, { n: 0 })
    return Effect.gen(function*() {
      yield* TestClock.adjust("1 hour")
      const all = yield* runs
      expect(all).toHaveLength(6)
      expect([...shardsOf(all.map((run) => run.id))]).toEqual([shardFor("ping", 4)])
      const registry = yield* CronRegistry.CronRegistry
      expect((yield* registry.list).map((cron) => cron.name)).toEqual(["ping"])
      const triggered = yield* registry.trigger("ping")
      expect(shardOfId(triggered)).toBe(shardFor("ping", 4))
    }).pipe(Effect.provide(layer({ shards: 4, crons })))
  })

  it.effect("TestScheduler.advance steps every shard on one timeline", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const submissions = Array.from({ length: 500 }, (_, n) => ({
        job: Work,
        payload: { n },
        after: `${(n * 7919) % 365} days` as const
      }))
      const scheduled = yield* scheduler.submit(submissions)
      expect(shardsOf(scheduled.map((job) => job.id)).size).toBe(4)
      yield* TestScheduler.advance("366 days")
      const all = yield* runs
      expect(all).toHaveLength(500)
      expect(all.every((run) => run.at === run.due)).toBe(true)
      const times = all.map((run) => run.at)
      expect(times).toEqual([...times].sort((a, b) => a - b))
    }).pipe(Effect.provide(layer())))

  it.effect("the shard count is 1 to 1024", () =>
    Effect.gen(function*() {
      for (const shards of [0, 1.5, 1025]) {
        const exit = yield* Effect.exit(Effect.scoped(Layer.build(TestScheduler.layer({ shards }))))
        expect(String(exit)).toContain("shards must be an integer from 1 to 1024")
      }
    }))
})

describe("the sharded backend's rules (over memory shards)", () => {
  /** Four memory shards on one registry, and a sharded backend over the first `count`. */
  const shardsOfMemory = Effect.gen(function*() {
    const backends: Array<Backend> = []
    for (let i = 0; i < 4; i++) backends.push(yield* Effect.provideService(makeBackend(), JobStore.JobStore, JobStore.makeMemory()))
    const over = (count: number, shard: (index: number) => Backend = (index) => backends[index]!) =>
      Scheduler.fromBackend(Sharded.make({ count, instanceName: "test", shard }))
    return { backends, over }
  }).pipe(Effect.provide(JobRegistry.layer))

  it.scoped("submit is atomic per shard: a shard that fails leaves the others' jobs stored, and says which", () =>
    Effect.gen(function*() {
      const { backends, over } = yield* shardsOfMemory
      const failing: Backend = {
        ...backends[2]!,
        schedule: () => Effect.fail(new SchedulerUnavailable({ operation: "schedule", reason: "shard 2 is down" }))
      }
      const scheduler = over(4, (index) => (index === 2 ? failing : backends[index]!))
      const submissions = Array.from({ length: 40 }, (_, n) => ({
        job: Work,
        payload: { n },
        after: "1 hour" as const,
        options: { key: `k${n}` }
      }))
      const error = yield* Effect.flip(scheduler.submit(submissions))
      expect(error._tag).toBe("SubmitIncomplete")
      if (error._tag !== "SubmitIncomplete") return
      expect(error.failure).toMatchObject({ _tag: "SchedulerUnavailable", reason: "shard 2 is down" })
      expect(error.message).toMatch(/^\d+ of 40 jobs were stored; the others were not/)
      error.stored.forEach((id, n) => {
        if (shardFor(`k${n}`, 4) === 2) expect(id).toBeNull()
        else expect(shardOfId(id!)).toBe(shardFor(`k${n}`, 4))
      })
      // with keys, submitting all again is safe: what was stored is found, the rest is created
      const again = yield* over(4).submit(submissions)
      again.forEach((result, n) => {
        expect(result._tag).toBe(error.stored[n] === null ? "Created" : "Existing")
        if (error.stored[n] !== null) expect(result.id).toBe(error.stored[n])
      })
      // one shard failing alone fails the call with its own error
      expect(yield* Effect.flip(over(4, () => failing).submit(submissions))).toMatchObject({ _tag: "SchedulerUnavailable" })
    }))

  it.scoped("the shard count grows freely; it shrinks only once the shards it drops hold nothing live", () =>
    Effect.gen(function*() {
      const { over } = yield* shardsOfMemory
      const two = over(2)
      const early = yield* two.submit(Array.from({ length: 10 }, (_, n) => ({ job: Work, payload: { n }, after: "1 hour" })))
      const four = over(4)
      const later = yield* four.submit(Array.from({ length: 20 }, (_, n) => ({ job: Work, payload: { n }, after: "1 hour" })))
      expect(shardsOf(later.map((job) => job.id)).size).toBeGreaterThan(2)
      // ids keep routing after the count grew
      for (const job of [...early, ...later]) expect((yield* four.get(job.id)).id).toBe(job.id)
      const refused = yield* Effect.flip(over(2).runAfter(0, Work, { n: 99 }))
      expect(refused).toMatchObject({ _tag: "InvalidOptions" })
      expect(refused.message).toContain('shards: 2 would drop shards 2 to 3 of instance "test"')
      // what a dropped shard holds stays reachable by id, and once it is done, the count may shrink
      for (const job of later.filter((job) => shardOfId(job.id)! >= 2)) yield* over(2).cancel(job.id)
      const accepted = over(2)
      expect(shardOfId(yield* accepted.runAfter(0, Work, { n: 100 }))).toBeLessThan(2)
      const dropped = later.find((job) => shardOfId(job.id)! >= 2)!
      expect((yield* accepted.get(dropped.id)).state).toBe("canceled")
      // and having shrunk, a larger count is a growth again
      expect(yield* over(3).runAfter(0, Work, { n: 101 })).toMatch(/^job_/)
    }))
})
