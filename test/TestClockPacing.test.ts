import { describe, expect, it } from "@effect/vitest"
import { Chunk, Clock, Effect, Fiber, Layer, Ref, Schema, TestClock } from "effect"
import { Job, Scheduler } from "@lunora/scheduler"
import * as TestScheduler from "@lunora/scheduler/testing"

const Note = Job.make("pacing:note", { payload: Schema.Struct({ n: Schema.Number, sleep: Schema.optional(Schema.Number) }) })

interface Run {
  readonly n: number
  readonly at: number
  readonly scheduledFor: number
}
class Runs extends Effect.Service<Runs>()("test/PacingRuns", { effect: Ref.make<ReadonlyArray<Run>>([]) }) {}

const layer = (options?: Scheduler.MemoryOptions) =>
  Note.toLayer(({ n, sleep }, { scheduledFor }) =>
    Effect.gen(function*() {
      if (sleep !== undefined) yield* Effect.sleep(sleep)
      const at = yield* Clock.currentTimeMillis
      yield* Ref.update(yield* Runs, (all) => [...all, { n, at, scheduledFor: scheduledFor.epochMillis }])
    })
  ).pipe(Layer.provideMerge(Layer.merge(TestScheduler.layer(options), Runs.Default)))

const runs = Effect.flatMap(Runs, Ref.get)
const HOUR = 3_600_000
const DAY = 24 * HOUR

describe("the test layer under TestClock.adjust (the loop steps to due instants within it)", () => {
  it.effect("runs jobs due at many instants at their own instants, in order", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const offsets = Array.from({ length: 2_000 }, (_, i) => ((i * 7_919) % 2_000) * 60_000 + i)
      yield* scheduler.submit(offsets.map((after, n) => ({ job: Note, payload: { n }, after })))
      yield* scheduler.runAfter("40 days", Note, { n: -1 })
      yield* TestClock.adjust("30 days")
      const all = yield* runs
      expect(all).toHaveLength(2_000)
      for (const run of all) expect(run.at).toBe(run.scheduledFor)
      expect(all.map((run) => run.at)).toEqual([...all.map((run) => run.at)].sort((a, b) => a - b))
      // the job due after the end waits on no timer: the adjust that reaches it runs it
      expect(Chunk.toReadonlyArray(yield* TestClock.sleeps())).toEqual([])
      expect(yield* Clock.currentTimeMillis).toBe(30 * DAY)
      yield* TestClock.adjust("10 days")
      expect((yield* runs).slice(2_000).map((run) => [run.n, run.at])).toEqual([[-1, 40 * DAY]])
    }).pipe(Effect.provide(layer({ retention: "60 days" }))))

  it.effect("stops at another fiber's sleep: what is due after it has not run when it wakes", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      yield* scheduler.runAfter("1 hour", Note, { n: 1 })
      yield* scheduler.runAfter("3 hours", Note, { n: 2 })
      const seen = yield* Effect.fork(
        Effect.zipRight(Effect.sleep("2 hours"), Effect.all([Clock.currentTimeMillis, runs]))
      )
      yield* TestClock.adjust("4 hours")
      const [at, then] = yield* Fiber.join(seen)
      expect(at).toBe(2 * HOUR)
      expect(then.map((run) => run.n)).toEqual([1])
      expect((yield* runs).map((run) => [run.n, run.at])).toEqual([[1, HOUR], [2, 3 * HOUR]])
    }).pipe(Effect.provide(layer())))

  it.effect("a fiber woken by a finished job reads the Clock at that job's instant", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const first = yield* scheduler.runAfter("1 hour", Note, { n: 1 })
      yield* scheduler.runAfter("2 hours", Note, { n: 2 })
      const fiber = yield* Effect.fork(Effect.zipRight(scheduler.await(first), Clock.currentTimeMillis))
      yield* TestClock.adjust("3 hours")
      expect(yield* Fiber.join(fiber)).toBe(HOUR)
    }).pipe(Effect.provide(layer())))

  it.effect("a handler's own sleep takes simulated time; jobs due meanwhile run at their instants", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      // within its lease (5 minutes)
      yield* scheduler.runAfter("1 hour", Note, { n: 1, sleep: 3 * 60_000 })
      yield* scheduler.runAfter("61 minutes", Note, { n: 2 })
      yield* scheduler.runAfter("2 hours", Note, { n: 3 })
      yield* TestClock.adjust("3 hours")
      expect((yield* runs).map((run) => [run.n, run.at])).toEqual([[2, 61 * 60_000], [1, 63 * 60_000], [3, 2 * HOUR]])
    }).pipe(Effect.provide(layer())))

  it.effect("TestClock.setTime runs what is due by then, at its instants", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      for (let n = 1; n <= 5; n++) yield* scheduler.runAfter(n * HOUR, Note, { n })
      yield* TestClock.setTime(3 * HOUR)
      expect((yield* runs).map((run) => [run.n, run.at])).toEqual([[1, HOUR], [2, 2 * HOUR], [3, 3 * HOUR]])
      expect(yield* Clock.currentTimeMillis).toBe(3 * HOUR)
    }).pipe(Effect.provide(layer())))

  it.effect("shards step together in time order", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const offsets = Array.from({ length: 200 }, (_, i) => ((i * 37) % 200) * 60_000 + 1)
      yield* scheduler.submit(offsets.map((after, n) => ({ job: Note, payload: { n }, after, options: { shardKey: `k-${n}` } })))
      yield* TestClock.adjust("1 day")
      const all = yield* runs
      expect(all).toHaveLength(200)
      for (const run of all) expect(run.at).toBe(run.scheduledFor)
      expect(all.map((run) => run.at)).toEqual([...all.map((run) => run.at)].sort((a, b) => a - b))
    }).pipe(Effect.provide(layer({ shards: 4 }))))
})
