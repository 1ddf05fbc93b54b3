import { describe, expect, it } from "@effect/vitest"
import { Chunk, Clock, Context, DateTime, Duration, Effect, Exit, Layer, Option, Ref, Schedule, Schema, TestClock } from "effect"
import { Job, JobRegistry, Scheduler } from "@lunora/scheduler"
import * as JobStore from "../src/internal/engine/store.js"
import { makeBackend } from "../src/internal/services/memory.js"
import * as TestScheduler from "@lunora/scheduler/testing"

interface Run {
  readonly path: string
  readonly payload: unknown
  readonly at: number
  readonly attempt: number
}

class Runs extends Context.Tag("test/Runs")<Runs, Ref.Ref<ReadonlyArray<Run>>>() {}

const record = (path: string, payload: unknown, attempt: number) =>
  Effect.gen(function*() {
    const runs = yield* Runs
    const at = yield* Clock.currentTimeMillis
    yield* Ref.update(runs, (all) => [...all, { path, payload, at, attempt }])
  })

const runsOf = (path?: string) =>
  Effect.flatMap(Runs, Ref.get).pipe(Effect.map((all) => (path === undefined ? all : all.filter((r) => r.path === path))))

const ExportRequested = Job.make("exports:build", {
  payload: Schema.Struct({ userId: Schema.String }),
  success: Schema.Struct({ url: Schema.String })
})
const TrialExpired = Job.make("billing:expireTrial", { payload: Schema.Struct({ accountId: Schema.String }) })
const SendReminder = Job.make("email:sendReminder", { payload: Schema.Struct({ userId: Schema.String }) })
const AlwaysFails = Job.make("flaky:alwaysFails", { payload: Schema.Struct({ n: Schema.Number }) })
const FollowUp = Job.make("posts:publish", { payload: Schema.Struct({ postId: Schema.String }) })
const Slow = Job.make("slow:work", { payload: Schema.Struct({ seconds: Schema.Number }) })
const Dated = Job.make("dates:remember", { payload: Schema.Struct({ when: Schema.DateFromString }) })
const Tick = Job.make("clock:tick", { payload: Schema.Struct({}) })
/** Schedules a reminder, works for a minute, schedules another, then fails: a parent whose children a cancel stops. */
const Campaign = Job.make("campaigns:run", { payload: Schema.Struct({ name: Schema.String }) })

const handlers = Layer.mergeAll(
  ExportRequested.toLayer((payload, ctx) =>
    Effect.as(record(ExportRequested.path, payload, ctx.attempt), { url: `https://files.example/${payload.userId}.zip` })
  ),
  TrialExpired.toLayer((payload, ctx) => record(TrialExpired.path, payload, ctx.attempt)),
  SendReminder.toLayer((payload, ctx) => record(SendReminder.path, payload, ctx.attempt)),
  AlwaysFails.toLayer((payload, ctx) =>
    Effect.zipRight(record(AlwaysFails.path, payload, ctx.attempt), Effect.fail(new Error(`attempt ${ctx.attempt} failed`)))
  ),
  FollowUp.toLayer((payload, ctx) =>
    Effect.gen(function*() {
      yield* record(FollowUp.path, payload, ctx.attempt)
      const scheduler = yield* Scheduler.Scheduler
      if (payload.postId === "p-1") yield* scheduler.runAfter("30 seconds", FollowUp, { postId: "p-1-followup" })
    })
  ),
  Slow.toLayer((payload, ctx) => Effect.zipRight(Effect.sleep(Duration.seconds(payload.seconds)), record(Slow.path, payload, ctx.attempt))),
  Dated.toLayer((payload, ctx) => record(Dated.path, DateTime.formatIso(DateTime.unsafeFromDate(payload.when)), ctx.attempt)),
  Tick.toLayer((payload, ctx) => record(Tick.path, payload, ctx.attempt)),
  Campaign.toLayer((payload, ctx) =>
    Effect.gen(function*() {
      yield* record(Campaign.path, payload, ctx.attempt)
      const scheduler = yield* Scheduler.Scheduler
      yield* scheduler.runAfter("5 minutes", SendReminder, { userId: `${payload.name}-first` })
      yield* Effect.sleep("1 minute")
      yield* scheduler.runAfter("5 minutes", SendReminder, { userId: `${payload.name}-second` })
      return yield* Effect.fail(new Error("the campaign failed"))
    })
  )
)

const RunsLive = Layer.effect(Runs, Ref.make<ReadonlyArray<Run>>([]))

const TestLayer = (options?: Scheduler.MemoryOptions) =>
  handlers.pipe(Layer.provideMerge(Layer.merge(TestScheduler.layer(options), RunsLive)))

const scheduler = Scheduler.Scheduler

describe("Scheduler (test layer, TestClock)", () => {
  it.effect("an export requested with runAfter(\"5 minutes\") runs once after five minutes, not before", () =>
    Effect.gen(function*() {
      const s = yield* scheduler
      const id = yield* s.runAfter("5 minutes", ExportRequested, { userId: "u-1" })
      yield* TestClock.adjust("4 minutes")
      expect(yield* runsOf()).toEqual([])
      expect((yield* s.get(id)).state).toBe("pending")
      yield* TestClock.adjust("1 minute")
      expect(yield* runsOf()).toEqual([{ path: "exports:build", payload: { userId: "u-1" }, at: 300_000, attempt: 1 }])
      const info = yield* s.get(id)
      expect(info.state).toBe("success")
      expect(info.result).toEqual(Option.some({ url: "https://files.example/u-1.zip" }))
      yield* TestClock.adjust("1 hour")
      expect(yield* runsOf()).toHaveLength(1)
    }).pipe(Effect.provide(TestLayer())))

  it.effect("a trial expiry scheduled with runAt fires at that instant (DateTime, Date or epoch ms)", () =>
    Effect.gen(function*() {
      const s = yield* scheduler
      const start = yield* DateTime.now
      const trialEnd = DateTime.add(start, { days: 14 })
      yield* s.runAt(trialEnd, TrialExpired, { accountId: "a-1" })
      yield* s.runAt(new Date(DateTime.toEpochMillis(trialEnd) + 1_000), TrialExpired, { accountId: "a-2" })
      yield* s.runAt(DateTime.toEpochMillis(trialEnd) + 2_000, TrialExpired, { accountId: "a-3" })
      yield* TestClock.adjust(Duration.subtract(Duration.days(14), Duration.millis(1)))
      expect(yield* runsOf()).toEqual([])
      yield* TestClock.adjust("1 minute")
      const runs = yield* runsOf()
      expect(runs.map((r) => [r.payload, r.at - DateTime.toEpochMillis(trialEnd)])).toEqual([
        [{ accountId: "a-1" }, 0],
        [{ accountId: "a-2" }, 1_000],
        [{ accountId: "a-3" }, 2_000]
      ])
    }).pipe(Effect.provide(TestLayer())))

  it.effect("a reminder cancelled before it fires never runs", () =>
    Effect.gen(function*() {
      const s = yield* scheduler
      const id = yield* s.runAfter("1 hour", SendReminder, { userId: "u-2" })
      const kept = yield* s.runAfter("1 hour", SendReminder, { userId: "u-3" })
      expect(yield* s.cancel(id)).toEqual({ _tag: "Canceled", id, children: 0 })
      yield* TestClock.adjust("2 hours")
      expect((yield* runsOf()).map((r) => r.payload)).toEqual([{ userId: "u-3" }])
      expect((yield* s.get(id)).state).toBe("canceled")
      expect(yield* s.cancel(id)).toEqual({ _tag: "AlreadyFinished", id, state: "canceled" })
      expect(yield* s.cancel(kept)).toEqual({ _tag: "AlreadyFinished", id: kept, state: "success" })
      const missing = yield* Effect.flip(s.cancel("job_0_doesnotexist00"))
      expect(missing._tag).toBe("JobNotFound")
    }).pipe(Effect.provide(TestLayer())))

  it.effect("cancel of a running job says it is too late, and the job finishes", () =>
    Effect.gen(function*() {
      const s = yield* scheduler
      const id = yield* s.runAfter(0, Slow, { seconds: 60 })
      yield* TestClock.adjust("1 second")
      expect((yield* s.get(id)).state).toBe("inProgress")
      expect(yield* s.cancel(id)).toEqual({ _tag: "TooLate", id, state: "inProgress", children: 0 })
      yield* TestClock.adjust("1 minute")
      expect((yield* s.get(id)).state).toBe("success")
    }).pipe(Effect.provide(TestLayer())))

  it.effect("takes no payload for a job whose payload can be empty, or a function path given as text", () =>
    Effect.gen(function*() {
      const s = yield* scheduler
      const typed = yield* s.runAfter("1 minute", Tick)
      const byPath = yield* s.runAt(60_000, "clock:tick")
      const withOptions = yield* s.runAfter("1 minute", Tick, {}, { key: "tick:once" })
      // @ts-expect-error a payload with required fields cannot be left out
      const refused = yield* Effect.flip(s.runAfter("1 minute", SendReminder))
      expect(refused._tag).toBe("InvalidPayload")
      yield* TestClock.adjust("1 minute")
      expect((yield* runsOf(Tick.path)).map((run) => run.payload)).toEqual([{}, {}, {}])
      for (const id of [typed, byPath, withOptions]) expect((yield* s.get(id)).args).toEqual({})
    }).pipe(Effect.provide(TestLayer())))

  it.effect("cancel of a running job stops its children: pending ones, and those it schedules until it ends; no retry", () =>
    Effect.gen(function*() {
      const s = yield* scheduler
      const id = yield* s.runAfter(0, Campaign, { name: "spring" }, { retry: { maxAttempts: 3 } })
      yield* TestClock.adjust("1 second")
      const [first] = (yield* s.list({ functionPath: SendReminder.path })).jobs
      expect(first?.parentId).toEqual(Option.some(id))
      expect(first?.state).toBe("pending")
      expect(yield* s.cancel(id)).toEqual({ _tag: "TooLate", id, state: "inProgress", children: 1 })
      yield* TestClock.adjust("10 minutes")
      const reminders = (yield* s.list({ functionPath: SendReminder.path })).jobs
      expect(reminders.map((job) => [job.args, job.state, Option.getOrNull(job.parentId)])).toEqual([
        [{ userId: "spring-first" }, "canceled", id],
        [{ userId: "spring-second" }, "canceled", id]
      ])
      const campaign = yield* s.get(id)
      expect([campaign.state, campaign.attempt]).toEqual(["canceled", 1])
      expect(yield* runsOf(SendReminder.path)).toEqual([])
      // a job scheduled outside any handler has no parent
      expect(campaign.parentId).toEqual(Option.none())
    }).pipe(Effect.provide(TestLayer())))

  it.effect("without a cancel, the children a handler schedules run, each naming its parent", () =>
    Effect.gen(function*() {
      const s = yield* scheduler
      const id = yield* s.runAfter(0, Campaign, { name: "autumn" }, { retry: { maxAttempts: 1 }, deadLetter: false })
      yield* TestClock.adjust("10 minutes")
      expect((yield* runsOf(SendReminder.path)).map((run) => run.payload)).toEqual([
        { userId: "autumn-first" },
        { userId: "autumn-second" }
      ])
      const reminders = (yield* s.list({ functionPath: SendReminder.path })).jobs
      expect(reminders.map((job) => [job.state, Option.getOrNull(job.parentId)])).toEqual([["success", id], ["success", id]])
    }).pipe(Effect.provide(TestLayer())))

  it.effect("a handler that always fails is retried on the policy's delays, dead-letters, and replays", () =>
    Effect.gen(function*() {
      const s = yield* scheduler
      const retry = Schedule.exponential("30 seconds").pipe(Schedule.intersect(Schedule.recurs(3)))
      const id = yield* s.runAfter("1 minute", AlwaysFails, { n: 1 }, { retry })
      const awaited = yield* Effect.fork(s.await(id))
      yield* TestClock.adjust("1 hour")
      const at = (yield* runsOf()).map((r) => [r.attempt, r.at])
      // first run at 60 s, then 30 s, 60 s, 120 s after each failure
      expect(at).toEqual([[1, 60_000], [2, 90_000], [3, 150_000], [4, 270_000]])
      const info = yield* s.get(id)
      expect(info.state).toBe("deadLettered")
      expect(info.maxAttempts).toBe(4)
      expect(info.lastError).toEqual(Option.some("Error: attempt 4 failed"))
      const failure = yield* Effect.flip(awaited.await.pipe(Effect.flatten))
      expect(failure).toMatchObject({ _tag: "JobDeadLettered", jobId: id, attempt: 4, lastError: "Error: attempt 4 failed" })

      const dead = yield* s.list({ state: "deadLettered" })
      expect(dead.jobs.map((j) => j.id)).toEqual([id])

      yield* s.replay(id)
      yield* TestClock.adjust("1 second")
      const replayed = (yield* runsOf()).slice(4)
      expect(replayed).toEqual([{ path: AlwaysFails.path, payload: { n: 1 }, at: 3_600_000, attempt: 1 }])
      yield* TestClock.adjust("1 hour")
      expect((yield* s.get(id)).state).toBe("deadLettered")
      expect(yield* s.purge({ ids: [id] })).toBe(1)
      expect((yield* Effect.flip(s.get(id)))._tag).toBe("JobNotFound")
    }).pipe(Effect.provide(TestLayer())))

  it.effect("the default policy is 5 attempts, exponential from 30 s; the data form is accepted", () =>
    Effect.gen(function*() {
      const s = yield* scheduler
      const byDefault = yield* s.runAfter(0, AlwaysFails, { n: 1 })
      const linear = yield* s.runAfter(0, AlwaysFails, { n: 2 }, {
        retry: { maxAttempts: 3, backoff: "linear", baseMs: 1_000 }
      })
      const capped = yield* s.runAfter(0, AlwaysFails, { n: 3 }, {
        retry: { maxAttempts: 4, baseMs: 1_000, maxMs: 1_500 }
      })
      yield* TestClock.adjust("1 hour")
      const times = (n: number) => Effect.map(runsOf(AlwaysFails.path), (runs) => runs.filter((r) => (r.payload as any).n === n).map((r) => r.at))
      expect(yield* times(1)).toEqual([0, 30_000, 90_000, 210_000, 450_000])
      expect(yield* times(2)).toEqual([0, 1_000, 3_000])
      expect(yield* times(3)).toEqual([0, 1_000, 2_500, 4_000])
      for (const id of [byDefault, linear, capped]) expect((yield* s.get(id)).state).toBe("deadLettered")
    }).pipe(Effect.provide(TestLayer())))

  it.effect("an unbounded schedule is capped at MAX_ATTEMPTS, and says so", () =>
    Effect.gen(function*() {
      const s = yield* scheduler
      const id = yield* s.runAfter(0, AlwaysFails, { n: 1 }, { retry: Schedule.spaced("1 second") })
      expect((yield* s.get(id)).maxAttempts).toBe(50)
    }).pipe(Effect.provide(TestLayer())))

  it.effect("runAfter(0) hands off: not run inline, run on the next tick", () =>
    Effect.gen(function*() {
      const s = yield* scheduler
      const id = yield* s.runAfter(0, SendReminder, { userId: "now" })
      expect((yield* s.get(id)).state).toBe("pending")
      yield* TestClock.adjust(0)
      expect((yield* runsOf()).map((r) => [r.payload, r.at])).toEqual([[{ userId: "now" }, 0]])
      expect((yield* s.get(id)).state).toBe("success")
    }).pipe(Effect.provide(TestLayer())))

  it.effect("a time in the past runs as soon as possible", () =>
    Effect.gen(function*() {
      const s = yield* scheduler
      yield* TestClock.adjust("1 hour")
      yield* s.runAt(new Date(0), SendReminder, { userId: "late" })
      yield* TestClock.adjust(0)
      expect((yield* runsOf()).map((r) => r.at)).toEqual([3_600_000])
    }).pipe(Effect.provide(TestLayer())))

  it.effect("a payload nested 64 deep is taken; one shared many times over is checked once", () =>
    Effect.gen(function*() {
      const s = yield* scheduler
      let deep: unknown = {}
      for (let i = 1; i < 64; i++) deep = [deep]
      yield* s.runAfter("1 hour", "x:y", deep)
      // 40 levels of [x, x]: 2^40 paths through 40 objects
      let shared: unknown = 0
      for (let i = 0; i < 40; i++) shared = [shared, shared]
      const refused = yield* Effect.flip(s.runAfter("1 hour", "x:y", { shared }))
      expect(refused).toMatchObject({ _tag: "InvalidPayload", problem: "size" })
      expect((yield* s.list()).jobs).toHaveLength(1)
    }).pipe(Effect.provide(TestLayer())))

  it.effect("runAt takes a time up to exactly five calendar years ahead", () =>
    Effect.gen(function*() {
      const s = yield* scheduler
      yield* TestClock.adjust("1 hour")
      const now = yield* DateTime.now
      const id = yield* s.runAt(DateTime.add(now, { years: 5 }), SendReminder, { userId: "patient" })
      expect(DateTime.formatIso((yield* s.get(id)).scheduledFor)).toBe("1975-01-01T01:00:00.000Z")
      const later = yield* s.runAfter(Duration.days(365 * 5 + 1), SendReminder, { userId: "days" })
      expect((yield* s.get(later)).scheduledFor.epochMillis).toBe(Date.UTC(1975, 0, 1, 1))
    }).pipe(Effect.provide(TestLayer())))

  it.effect("jobs scheduled by a running handler are honoured inside the same adjust", () =>
    Effect.gen(function*() {
      const s = yield* scheduler
      yield* s.runAfter("10 seconds", FollowUp, { postId: "p-1" })
      yield* TestClock.adjust("1 minute")
      expect((yield* runsOf()).map((r) => [r.payload, r.at])).toEqual([
        [{ postId: "p-1" }, 10_000],
        [{ postId: "p-1-followup" }, 40_000]
      ])
    }).pipe(Effect.provide(TestLayer())))

  it.effect("jobs run in time order whatever the order they were scheduled in", () =>
    Effect.gen(function*() {
      const s = yield* scheduler
      for (const [delay, userId] of [[30, "c"], [10, "a"], [20, "b"], [10, "a2"]] as const) {
        yield* s.runAfter(Duration.seconds(delay), SendReminder, { userId })
      }
      yield* TestClock.adjust("1 minute")
      expect((yield* runsOf()).map((r) => (r.payload as any).userId)).toEqual(["a", "a2", "b", "c"])
    }).pipe(Effect.provide(TestLayer())))

  it.effect("a key dedupes while the job is live; the outcome says which", () =>
    Effect.gen(function*() {
      const s = yield* scheduler
      const first = yield* s.runAfter("5 minutes", SendReminder, { userId: "u-1" }, { key: "reminder:u-1" })
      const second = yield* s.runAfter("1 minute", SendReminder, { userId: "u-1" }, { key: "reminder:u-1" })
      expect(second).toBe(first)
      const [outcome] = yield* s.submit([{ job: SendReminder, payload: { userId: "u-1" }, options: { key: "reminder:u-1" } }])
      expect(outcome).toMatchObject({ _tag: "Existing", id: first })
      yield* TestClock.adjust("5 minutes")
      expect(yield* runsOf()).toHaveLength(1)
      const third = yield* s.runAfter("1 minute", SendReminder, { userId: "u-1" }, { key: "reminder:u-1" })
      expect(third).not.toBe(first)
      const info = yield* s.get(third)
      expect(info.key).toEqual(Option.some("reminder:u-1"))
    }).pipe(Effect.provide(TestLayer())))

  it.effect("await returns the result of a job that succeeds", () =>
    Effect.gen(function*() {
      const s = yield* scheduler
      const id = yield* s.runAfter("1 minute", ExportRequested, { userId: "u-9" })
      const fiber = yield* Effect.fork(s.await(id))
      yield* TestClock.adjust("1 minute")
      const info = yield* fiber.await.pipe(Effect.flatten)
      expect(info.result).toEqual(Option.some({ url: "https://files.example/u-9.zip" }))
    }).pipe(Effect.provide(TestLayer())))

  it.effect("a job with no handler, or whose payload fails its Schema, dead-letters at once with the reason", () =>
    Effect.gen(function*() {
      const s = yield* scheduler
      const unknown = yield* s.runAfter(0, "nobody:home", { x: 1 })
      const mistyped = yield* s.runAfter(0, "email:sendReminder", { user: 42 })
      yield* TestClock.adjust("1 hour")
      const a = yield* s.get(unknown)
      expect([a.state, a.attempt, Option.getOrNull(a.lastError)]).toEqual(["deadLettered", 1, "no handler is registered for nobody:home"])
      const b = yield* s.get(mistyped)
      expect(b.state).toBe("deadLettered")
      expect(b.attempt).toBe(1)
      expect(Option.getOrThrow(b.lastError)).toMatch(/does not match the Schema of email:sendReminder[\s\S]*userId/)
      expect(yield* runsOf()).toEqual([])
    }).pipe(Effect.provide(TestLayer())))

  it.effect("payloads go through the job's Schema both ways", () =>
    Effect.gen(function*() {
      const s = yield* scheduler
      const id = yield* s.runAfter(0, Dated, { when: new Date("2026-03-01T10:00:00.000Z") })
      expect((yield* s.get(id)).args).toEqual({ when: "2026-03-01T10:00:00.000Z" })
      yield* TestClock.adjust(0)
      expect((yield* runsOf()).map((r) => r.payload)).toEqual(["2026-03-01T10:00:00.000Z"])
    }).pipe(Effect.provide(TestLayer())))

  it.effect("an idle loop waits on no TestClock timer: the adjust that reaches a due instant runs it", () =>
    Effect.gen(function*() {
      const s = yield* scheduler
      for (let i = 0; i < 50; i++) yield* s.runAfter("1 hour", SendReminder, { userId: `u-${i}` })
      yield* s.runAfter("2 hours", SendReminder, { userId: "later" })
      yield* TestClock.adjust(0)
      // each TestClock sleep, even one interrupted, is a stop of `adjust` (a wait for every fiber): 51 calls leave none
      expect(Chunk.toReadonlyArray(yield* TestClock.sleeps())).toEqual([])
      yield* TestClock.adjust("59 minutes")
      expect(yield* runsOf(SendReminder.path)).toHaveLength(0)
      yield* TestClock.adjust("1 minute")
      expect(yield* runsOf(SendReminder.path)).toHaveLength(50)
      // 50 runs leave none either (they finished before the wait for their leases' end)
      expect(Chunk.toReadonlyArray(yield* TestClock.sleeps())).toEqual([])
      yield* TestClock.adjust("1 hour")
      expect(yield* runsOf(SendReminder.path)).toHaveLength(51)
    }).pipe(Effect.provide(TestLayer())))

  it.effect("an attempt that outlives its lease counts as failed and is retried", () =>
    Effect.gen(function*() {
      const s = yield* scheduler
      const id = yield* s.runAfter(0, Slow, { seconds: 120 }, { retry: { maxAttempts: 2, baseMs: 1_000 } })
      yield* TestClock.adjust("10 minutes")
      const info = yield* s.get(id)
      expect(info.state).toBe("deadLettered")
      expect(info.attempt).toBe(2)
      expect(Option.getOrThrow(info.lastError)).toMatch(/timed out after 60000 ms|lease expired/)
      expect(yield* runsOf()).toEqual([])
    }).pipe(Effect.provide(TestLayer({ lease: "1 minute" }))))

  it.effect("finished jobs are swept after the retention; dead letters stay", () =>
    Effect.gen(function*() {
      const s = yield* scheduler
      const done = yield* s.runAfter(0, SendReminder, { userId: "u" })
      const dead = yield* s.runAfter(0, "nobody:home", {})
      yield* TestClock.adjust("59 minutes")
      expect((yield* s.get(done)).state).toBe("success")
      yield* TestClock.adjust("2 minutes")
      expect((yield* Effect.flip(s.get(done)))._tag).toBe("JobNotFound")
      expect((yield* s.get(dead)).state).toBe("deadLettered")
    }).pipe(Effect.provide(TestLayer({ retention: "1 hour" }))))

  it.effect("list pages through jobs with a cursor and filters", () =>
    Effect.gen(function*() {
      const s = yield* scheduler
      const ids: Array<string> = []
      for (let i = 0; i < 5; i++) ids.push(yield* s.runAfter("1 hour", SendReminder, { userId: `u-${i}` }))
      yield* s.runAfter("1 hour", TrialExpired, { accountId: "a" })
      const first = yield* s.list({ functionPath: SendReminder.path, limit: 3 })
      expect(first.jobs.map((j) => j.id)).toEqual(ids.slice(0, 3))
      const second = yield* s.list({ functionPath: SendReminder.path, limit: 3, cursor: Option.getOrThrow(first.cursor) })
      expect(second.jobs.map((j) => j.id)).toEqual(ids.slice(3))
      expect(second.cursor).toEqual(Option.none())
      expect((yield* s.list({ state: "success" })).jobs).toEqual([])
    }).pipe(Effect.provide(TestLayer())))

  it.effect("a cursor carries its query: the next page keeps the filter, and another filter is refused", () =>
    Effect.gen(function*() {
      const s = yield* scheduler
      const ids: Array<string> = []
      for (let i = 0; i < 4; i++) {
        ids.push(yield* s.runAfter("1 hour", SendReminder, { userId: `u-${i}` }))
        yield* s.runAfter("1 hour", TrialExpired, { accountId: `a-${i}` })
      }
      const page = yield* s.list({ state: "pending", functionPath: SendReminder.path, limit: 2 })
      const cursor = Option.getOrThrow(page.cursor)
      // the README's snippet: the second call names the state only, and the function path still holds
      const next = yield* s.list({ state: "pending", cursor })
      expect(next.jobs.map((j) => j.id)).toEqual(ids.slice(2))
      expect((yield* s.list({ cursor })).jobs.map((j) => j.id)).toEqual(ids.slice(2))
      const other = yield* Effect.flip(s.list({ functionPath: TrialExpired.path, cursor }))
      expect(other).toMatchObject({ _tag: "InvalidOptions", reason: expect.stringContaining("cursor belongs to a list") })
      expect((yield* Effect.flip(s.list({ state: "success", cursor })))._tag).toBe("InvalidOptions")
    }).pipe(Effect.provide(TestLayer())))

  it.effect("the drain loop survives a store that throws: it backs off on the Clock, then runs what is due", () =>
    Effect.gen(function*() {
      let broken = true
      const store = JobStore.makeMemory()
      const faulty: JobStore.Store = {
        ...store,
        ready: (pool, now, limit) => {
          if (broken) throw new Error("injected store fault")
          return store.ready(pool, now, limit)
        }
      }
      const layer = handlers.pipe(
        Layer.provideMerge(Layer.scoped(Scheduler.Scheduler, Effect.map(makeBackend(), Scheduler.fromBackend))),
        Layer.provideMerge(Layer.mergeAll(Layer.succeed(JobStore.JobStore, faulty), JobRegistry.layer, RunsLive))
      )
      yield* Effect.gen(function*() {
        const s = yield* Scheduler.Scheduler
        yield* s.runAfter(0, SendReminder, { userId: "patient" })
        yield* TestClock.adjust("10 seconds")
        expect(yield* runsOf()).toEqual([])
        broken = false
        // the backoff doubles from 1 s, at most a minute: the next pass is within 16 s
        yield* TestClock.adjust("16 seconds")
        expect((yield* runsOf()).map((r) => r.payload)).toEqual([{ userId: "patient" }])
      }).pipe(Effect.provide(layer))
    }))

  it.effect("submit stores a batch atomically: one refusal stores none", () =>
    Effect.gen(function*() {
      const s = yield* scheduler
      const refused = yield* Effect.flip(s.submit([
        { job: SendReminder, payload: { userId: "ok" }, after: "1 minute" },
        { job: SendReminder, payload: { userId: "bad" }, after: -1 }
      ]))
      expect(refused._tag).toBe("InvalidTime")
      expect((yield* s.list()).jobs).toEqual([])
      const scheduled = yield* s.submit([
        { job: SendReminder, payload: { userId: "a" }, after: "1 minute" },
        { job: TrialExpired, payload: { accountId: "b" }, at: 120_000 }
      ])
      expect(scheduled.map((x) => [x._tag, DateTime.toEpochMillis(x.scheduledFor)])).toEqual([["Created", 60_000], ["Created", 120_000]])
    }).pipe(Effect.provide(TestLayer())))

  it.effect("submit takes 20,000 jobs in one call, each with an id of its own", () =>
    Effect.gen(function*() {
      const s = yield* scheduler
      const scheduled = yield* s.submit(
        Array.from({ length: 20_000 }, (_, i) => ({ job: SendReminder, payload: { userId: `u-${i}` }, after: "1 hour" }))
      )
      expect(new Set(scheduled.map((x) => x.id)).size).toBe(20_000)
      expect(scheduled.every((x) => x._tag === "Created")).toBe(true)
    }).pipe(Effect.provide(TestLayer())))
})

describe("Scheduler refusals: a typed error, and nothing stored", () => {
  const refuses = <E extends { readonly _tag: string }>(
    name: string,
    call: (s: Scheduler.Scheduler["Type"]) => Effect.Effect<unknown, E>,
    tag: string,
    reason: RegExp
  ) =>
    it.effect(name, () =>
      Effect.gen(function*() {
        const s = yield* scheduler
        const exit = yield* Effect.exit(call(s))
        expect(Exit.isFailure(exit)).toBe(true)
        const error = yield* Effect.flip(call(s))
        expect(error._tag).toBe(tag)
        expect((error as unknown as Error).message).toMatch(reason)
        expect((yield* s.list()).jobs).toEqual([])
      }).pipe(Effect.provide(TestLayer())))

  const reminder = { userId: "u" }
  refuses("a negative delay", (s) => s.runAfter(-1, SendReminder, reminder), "InvalidTime", /negative/)
  refuses("a negative duration string", (s) => s.runAfter("-5 minutes" as Duration.DurationInput, SendReminder, reminder), "InvalidTime", /negative/)
  refuses("a NaN delay", (s) => s.runAfter(Number.NaN, SendReminder, reminder), "InvalidTime", /NaN is not a finite/)
  refuses("an infinite delay", (s) => s.runAfter(Duration.infinity, SendReminder, reminder), "InvalidTime", /infinite/)
  // TestClock starts at 1970-01-01: five calendar years later is 1975-01-01, 1,826 days (1972 is a leap year)
  refuses("a delay over 5 calendar years", (s) => s.runAfter(Duration.days(365 * 5 + 2), SendReminder, reminder), "InvalidTime", /5 calendar years/)
  refuses("a malformed duration", (s) => s.runAfter("soon" as Duration.DurationInput, SendReminder, reminder), "InvalidTime", /not a duration/)
  refuses("an invalid Date", (s) => s.runAt(new Date("nope"), SendReminder, reminder), "InvalidTime", /invalid Date/)
  refuses("an epoch that is not finite", (s) => s.runAt(Number.POSITIVE_INFINITY, SendReminder, reminder), "InvalidTime", /finite/)
  refuses("a fire time over 5 years ahead", (s) => s.runAt(Date.UTC(2100, 0, 1), SendReminder, reminder), "InvalidTime", /5 calendar years/)
  refuses("a fire time a millisecond past 5 calendar years", (s) => s.runAt(Date.UTC(1975, 0, 1) + 1, SendReminder, reminder), "InvalidTime", /5 calendar years/)
  refuses(
    "a payload that fails the job's Schema",
    // @ts-expect-error the payload type comes from the job's Schema, so this does not compile either
    (s) => s.runAfter(0, SendReminder, { userId: 7 }),
    "InvalidPayload",
    /schema[\s\S]*userId/
  )
  refuses("a payload that is not JSON data (Date in an untyped payload)", (s) => s.runAfter(0, "x:y", { at: new Date() }), "InvalidPayload", /serialization.*at \.at: a Date/)
  refuses("a bigint payload", (s) => s.runAfter(0, "x:y", { n: 1n }), "InvalidPayload", /bigint/)
  refuses("a function in a payload", (s) => s.runAfter(0, "x:y", [() => 1]), "InvalidPayload", /at \[0\]: a function/)
  refuses("a cyclic payload", (s) => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    return s.runAfter(0, "x:y", cyclic)
  }, "InvalidPayload", /contains itself/)
  refuses("a payload over the size limit", (s) => s.runAfter(0, "x:y", { blob: "é".repeat(600_000) }), "InvalidPayload", /size.*1200011 bytes.*1048576/)
  const nested = (depth: number): unknown => {
    let value: unknown = { bottom: true }
    for (let i = 1; i < depth; i++) value = [value]
    return value
  }
  refuses("a payload nested 5,000 deep (untyped)", (s) => s.runAfter(0, "x:y", nested(5_000)), "InvalidPayload", /size.*nested more than 64 levels/)
  refuses(
    "a payload nested 5,000 deep (through a Schema)",
    (s) => s.runAfter(0, Job.make("x:deep", { payload: Schema.Unknown }), nested(5_000)),
    "InvalidPayload",
    /size.*nested more than 64 levels/
  )
  refuses("a payload nested 65 deep", (s) => s.runAfter(0, "x:y", nested(65)), "InvalidPayload", /64 levels/)
  refuses("a malformed function path", (s) => s.runAfter(0, "no-colon", {}), "InvalidOptions", /function path/)
  refuses("an empty key", (s) => s.runAfter(0, SendReminder, reminder, { key: "" }), "InvalidOptions", /key/)
  refuses("a retry policy with zero attempts", (s) => s.runAfter(0, SendReminder, reminder, { retry: { maxAttempts: 0 } }), "InvalidOptions", /maxAttempts/)
  refuses("a list limit out of range", (s) => s.list({ limit: 0 }), "InvalidOptions", /limit/)
  refuses("a malformed cursor", (s) => s.list({ cursor: "abc" }), "InvalidOptions", /cursor/)
  refuses("an unknown job id", (s) => s.get("job_0_nothinghere00"), "JobNotFound", /not found/)
  refuses("replaying a job that does not exist", (s) => s.replay("job_0_nothinghere00"), "JobNotFound", /not found/)

  it("Job.make refuses a malformed path at definition time", () => {
    expect(() => Job.make("nocolon", { payload: Schema.Struct({}) })).toThrow(/namespace:function/)
  })
})

describe("the live scheduler's client", () => {
  /** A namespace whose object rejects every call as the SchedulerDO does a malformed one: the message is all RPC keeps. */
  const refusing = (message: string) => ({
    idFromName: (name: string) => name,
    get: () => new Proxy({}, { get: () => () => Promise.reject(new Error(message)) })
  })

  it.effect("a refusal by the SchedulerDO reaches the caller as its typed error; anything else is SchedulerUnavailable", () =>
    Effect.gen(function*() {
      const refused = yield* Scheduler.make({ namespace: refusing("InvalidTime: invalid time x: more than 5 years ahead"), binding: "SELF" })
      expect(yield* Effect.flip(refused.runAfter(0, SendReminder, { userId: "u" }))).toMatchObject({
        _tag: "InvalidTime",
        reason: expect.stringContaining("the SchedulerDO refused the call")
      })
      // a call the service validated fully cannot name the refusal: it says the scheduler is unusable from here
      expect(yield* Effect.flip(refused.get("job_0_0000000000000000"))).toMatchObject({ _tag: "SchedulerUnavailable" })
      const down = yield* Scheduler.make({ namespace: refusing("Network connection lost."), binding: "SELF" })
      expect(yield* Effect.flip(down.runAfter(0, SendReminder, { userId: "u" }))).toMatchObject({
        _tag: "SchedulerUnavailable",
        reason: "Network connection lost."
      })
    }))
})
