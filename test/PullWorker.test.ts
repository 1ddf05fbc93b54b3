/**
 * Pull pools in the test layer, on `TestClock`: the loop never runs their
 * jobs; a worker leases them within the cap; a lease left to run out is a
 * failed attempt, leased again; the late token is refused.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Schema, TestClock } from "effect"
import { Job, PullWorker, Scheduler, Workpool } from "@lunora/scheduler"
import * as TestScheduler from "@lunora/scheduler/testing"

const Encode = Job.make("video:encode", { payload: Schema.Struct({ clip: Schema.String }) })

const TestLayer = Workpool.layerMemory({ name: "encoders", maxConcurrency: 1, pull: true }).pipe(
  Layer.provideMerge(TestScheduler.layer())
)

describe("pull pools in the test layer", () => {
  it.effect("hold their jobs for workers, within the cap; a lease that runs out is retried and the late token refused", () =>
    Effect.gen(function*() {
      const pool = yield* Workpool.Workpool
      const scheduler = yield* Scheduler.Scheduler
      const worker = yield* PullWorker.fromEngine("encoders")
      const a = (yield* pool.enqueue(Encode, { clip: "a" }, { retry: { maxAttempts: 2, backoff: "linear", baseMs: 0 } })).id
      yield* TestClock.adjust("1 minute")
      expect((yield* scheduler.get(a)).state).toBe("pending")

      const [held] = yield* worker.lease(5, "10 seconds")
      expect([held!.id, held!.payload]).toEqual([a, { clip: "a" }])
      // the cap (1) holds: b waits while a's lease is held
      const b = (yield* pool.enqueue(Encode, { clip: "b" })).id
      expect(yield* worker.lease(5, "10 seconds")).toEqual([])
      yield* TestClock.adjust("11 seconds")
      // the lease ran out: a failed attempt, a is due again (after b, which was due first)
      expect(yield* scheduler.get(a)).toMatchObject({ state: "pending", attempt: 1 })
      expect((yield* Effect.flip(worker.complete(held!, "late")))._tag).toBe("LeaseLost")
      const [first] = yield* worker.lease(5, "10 seconds")
      expect(first!.id).toBe(b)
      yield* worker.complete(first!)
      const [again] = yield* worker.lease(5, "10 seconds")
      expect([again!.id, again!.attempt]).toEqual([a, 2])
      yield* worker.complete(again!, { encoded: true })
      expect(yield* scheduler.get(a)).toMatchObject({ state: "success", attempt: 2, result: Option.some({ encoded: true }) })
    }).pipe(Effect.provide(TestLayer)))

  it.effect("a pull pool declared again without pull is dispatched again: its queued jobs run with their handler", () =>
    Effect.gen(function*() {
      const pulled = yield* Workpool.Workpool
      const worker = yield* PullWorker.fromEngine("encoders")
      const id = (yield* pulled.enqueue(Encode, { clip: "c" })).id
      yield* TestClock.adjust("1 minute")
      const scheduler = yield* Scheduler.Scheduler
      expect((yield* scheduler.get(id)).state).toBe("pending")
      const pushed = yield* Workpool.fromBackend(yield* Scheduler.SchedulerEngine, { name: "encoders", maxConcurrency: 1 })
      yield* pushed.status
      yield* TestClock.adjust("1 second")
      expect(yield* scheduler.get(id)).toMatchObject({ state: "success", attempt: 1 })
      expect((yield* Effect.flip(worker.lease(1)))._tag).toBe("InvalidOptions")
    }).pipe(Effect.provide(Encode.toLayer(() => Effect.void).pipe(Layer.provideMerge(TestLayer)))))

  it.effect("refuses a lease outside 1 second to 1 hour and more than 100 jobs at once", () =>
    Effect.gen(function*() {
      yield* Workpool.Workpool
      const worker = yield* PullWorker.fromEngine("encoders")
      for (const call of [worker.lease(5, "10 millis"), worker.lease(5, "2 hours"), worker.lease(101), worker.lease(0)]) {
        expect((yield* Effect.flip(call))._tag).toBe("InvalidOptions")
      }
    }).pipe(Effect.provide(TestLayer)))
})
