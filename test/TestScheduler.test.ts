import { describe, expect, it } from "@effect/vitest"
import { Clock, DateTime, Effect, HashMap, Layer, Logger, Option, Ref, Schema, TestClock } from "effect"
import { CronSpec, Job, Scheduler, Workpool } from "@lunora/scheduler"
import * as TestScheduler from "@lunora/scheduler/testing"

const Note = Job.make("advance:note", { payload: Schema.Struct({ n: Schema.Number, failures: Schema.optional(Schema.Number) }) })
const Spawn = Job.make("advance:spawn", { payload: Schema.Struct({ n: Schema.Number }) })

interface Run {
  readonly n: number
  readonly at: number
  readonly scheduledFor: number
  readonly attempt: number
}
class Runs extends Effect.Service<Runs>()("test/AdvanceRuns", { effect: Ref.make<ReadonlyArray<Run>>([]) }) {}

const record = (n: number, scheduledFor: DateTime.Utc, attempt: number) =>
  Effect.gen(function*() {
    const at = yield* Clock.currentTimeMillis
    const runs = yield* Runs
    yield* Ref.update(runs, (all) => [...all, { n, at, scheduledFor: DateTime.toEpochMillis(scheduledFor), attempt }])
  })

const handlers = Layer.mergeAll(
  Note.toLayer(({ failures, n }, { attempt, scheduledFor }) =>
    Effect.zipRight(
      record(n, scheduledFor, attempt),
      attempt <= (failures ?? 0) ? Effect.fail(new Error(`attempt ${attempt} failed`)) : Effect.void
    )
  ),
  Spawn.toLayer(({ n }, { attempt, scheduledFor }) =>
    Effect.gen(function*() {
      yield* record(n, scheduledFor, attempt)
      // a handler's own wait takes no simulated time under advance
      yield* Effect.sleep("1 hour")
      const scheduler = yield* Scheduler.Scheduler
      if (n > 0) yield* scheduler.runAfter("1 day", Spawn, { n: n - 1 })
    })
  )
)

const Chatty = Job.make("test:chatty", { payload: Schema.Struct({ n: Schema.Number }) })

const layer = (options?: Scheduler.MemoryOptions) =>
  handlers.pipe(Layer.provideMerge(Layer.merge(TestScheduler.layer(options), Runs.Default)))

const runs = Effect.flatMap(Runs, Ref.get)
const DAY = 86_400_000

describe("TestScheduler.advance (the bulk driver)", () => {
  it.effect("runs every job due within the duration at its own instant, in time order, then leaves the Clock at the end", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const offsets = Array.from({ length: 300 }, (_, i) => ((i * 7_919) % 300) * 3_600_000 + i)
      yield* scheduler.submit(offsets.map((after, n) => ({ job: Note, payload: { n }, after })))
      yield* scheduler.runAfter("400 days", Note, { n: -1 })
      const start = yield* Clock.currentTimeMillis
      yield* TestScheduler.advance("365 days")
      expect(yield* Clock.currentTimeMillis).toBe(start + 365 * DAY)
      const all = yield* runs
      expect(all).toHaveLength(300)
      // each at the instant it was due, the Clock reading it
      for (const run of all) expect(run.at).toBe(run.scheduledFor)
      expect(all.map((run) => run.at)).toEqual([...all.map((run) => run.at)].sort((a, b) => a - b))
      expect(new Set(all.map((run) => run.n)).size).toBe(300)
      // the job due after the end has not run
      expect((yield* scheduler.list({ state: "pending" })).jobs.map((job) => job.args)).toEqual([{ n: -1 }])
    }).pipe(Effect.provide(layer())))

  it.effect("retries at their delays and dead-letters on exhaustion, as under TestClock.adjust", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const retry = { maxAttempts: 3, backoff: "exponential", baseMs: 60_000 } as const
      const mends = yield* scheduler.runAfter("1 day", Note, { n: 1, failures: 2 }, { retry })
      const dies = yield* scheduler.runAfter("1 day", Note, { n: 2, failures: 5 }, { retry })
      const start = yield* Clock.currentTimeMillis
      yield* TestScheduler.advance("2 days")
      const mended = yield* scheduler.get(mends)
      expect([mended.state, mended.attempt]).toEqual(["success", 3])
      const dead = yield* scheduler.get(dies)
      expect([dead.state, dead.attempt]).toEqual(["deadLettered", 3])
      const attempts = (yield* runs).filter((run) => run.n === 1).map((run) => run.at - start)
      expect(attempts).toEqual([DAY, DAY + 60_000, DAY + 60_000 + 120_000])
    }).pipe(Effect.provide(layer())))

  it.effect("jobs scheduled by handlers run too; a handler's sleep takes no simulated time", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const start = yield* Clock.currentTimeMillis
      yield* scheduler.runAfter(0, Spawn, { n: 9 })
      yield* TestScheduler.advance("30 days")
      const all = yield* runs
      expect(all.map((run) => run.n)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
      expect(all.map((run) => run.at - start)).toEqual(Array.from({ length: 10 }, (_, i) => i * DAY))
    }).pipe(Effect.provide(layer())))

  it.effect("fires crons at each occurrence", () =>
    Effect.gen(function*() {
      yield* TestScheduler.advance("30 days")
      const all = yield* runs
      expect(all).toHaveLength(30)
      for (const run of all) expect(new Date(run.at).getUTCHours()).toBe(9)
    }).pipe(
      Effect.provide(layer({ crons: CronSpec.cronJobs().daily("digest", { hourUTC: 9, minuteUTC: 0 }, Note, { n: 0 }) }))
    ))

  it.effect("keeps a pool's cap: what the pool cannot start at an instant starts when a slot frees", () =>
    Effect.gen(function*() {
      const pool = yield* Workpool.Workpool
      for (let n = 0; n < 6; n++) yield* pool.enqueue(Note, { n })
      yield* TestScheduler.advance("1 minute")
      expect((yield* runs).map((run) => run.n)).toEqual([0, 1, 2, 3, 4, 5])
      expect(yield* pool.status).toMatchObject({ inFlight: 0, queued: 0 })
    }).pipe(
      Effect.provide(Workpool.layerMemory({ name: "capped", maxConcurrency: 2 }).pipe(Layer.provideMerge(layer())))
    ))

  it.effect("forgets a finished job once its retention has passed, by the end of the advance", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const early = yield* scheduler.runAfter("1 day", Note, { n: 1 })
      const late = yield* scheduler.runAfter("9 days", Note, { n: 2 })
      yield* TestScheduler.advance("10 days")
      // retention 2 days: the first ended 9 days ago, the second 1 day ago
      expect((yield* Effect.flip(scheduler.get(early)))._tag).toBe("JobNotFound")
      expect((yield* scheduler.get(late)).state).toBe("success")
    }).pipe(Effect.provide(layer({ retention: "2 days" }))))

  it.effect("a handler's logs carry its job's id and function path, under advance and under TestClock.adjust; the caller's do not", () => {
    const logged: Array<{ readonly message: unknown; readonly annotations: Record<string, unknown> }> = []
    const logger = Logger.make(({ annotations, message }) => {
      logged.push({ message, annotations: Object.fromEntries(HashMap.toEntries(annotations)) })
    })
    const said = (text: string) => logged.find((entry) => Array.isArray(entry.message) && entry.message[0] === text)?.annotations
    return Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const first = yield* scheduler.runAfter("1 hour", Chatty, { n: 1 })
      const second = yield* scheduler.runAfter("36 hours", Chatty, { n: 2 })
      yield* TestScheduler.advance("1 day").pipe(Effect.annotateLogs({ caller: "test" }))
      yield* Effect.log("after advance").pipe(Effect.annotateLogs({ caller: "test" }))
      yield* TestClock.adjust("1 day")
      yield* Effect.log("after adjust")
      // under advance the handler runs in the caller's fiber, with its annotations; under adjust, in a fiber of its own
      expect(said("job 1")).toEqual({ jobId: first, functionPath: "test:chatty", caller: "test" })
      expect(said("job 2")).toEqual({ jobId: second, functionPath: "test:chatty" })
      expect(said("after advance")).toEqual({ caller: "test" })
      expect(said("after adjust")).toEqual({})
    }).pipe(
      Effect.provide(Chatty.toLayer(({ n }) => Effect.log(`job ${n}`)).pipe(Layer.provideMerge(layer()))),
      Effect.provide(Logger.replace(Logger.defaultLogger, logger))
    )
  })

  it.effect("a handler run by advance leaves the caller its own context: what the caller schedules next has no parent", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const first = yield* scheduler.runAfter("1 hour", Spawn, { n: 1 })
      yield* TestScheduler.advance("1 day")
      const child = (yield* scheduler.list()).jobs.find((job) => job.id !== first)!
      expect(Option.getOrThrow(child.parentId)).toBe(first)
      const mine = yield* scheduler.runAfter("1 hour", Note, { n: 9 })
      expect((yield* scheduler.get(mine)).parentId).toEqual(Option.none())
    }).pipe(Effect.provide(layer())))

  it.effect("afterwards, TestClock.adjust goes on from where it left the Clock", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const id = yield* scheduler.runAfter("10 days", Note, { n: 1 })
      yield* TestScheduler.advance("5 days")
      expect((yield* scheduler.get(id)).state).toBe("pending")
      yield* TestClock.adjust("5 days")
      const job = yield* scheduler.get(id)
      expect(job.state).toBe("success")
      expect(Option.getOrThrow(job.startedAt)).toEqual(job.scheduledFor)
    }).pipe(Effect.provide(layer())))

  it.effect("refuses a concurrency or batch size that could lease nothing, when the layer is built", () =>
    Effect.gen(function*() {
      for (const options of [{ concurrency: 0 }, { batchSize: 0 }, { concurrency: 1.5 }, { batchSize: 101 }]) {
        const exit = yield* Effect.exit(Effect.provide(Scheduler.Scheduler, TestScheduler.layer(options)))
        expect(exit._tag).toBe("Failure")
        expect(String(exit._tag === "Failure" ? exit.cause : "")).toMatch(/must be an integer from 1 to/)
      }
      const fine = yield* Effect.exit(Effect.provide(Scheduler.Scheduler, TestScheduler.layer({ concurrency: 1, batchSize: 1 })))
      expect(fine._tag).toBe("Success")
    }))
})
