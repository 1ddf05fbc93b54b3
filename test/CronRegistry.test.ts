import { describe, expect, it } from "@effect/vitest"
import { Clock, Context, Duration, Effect, Layer, Option, Ref, Schema, TestClock } from "effect"
import { CronRegistry, CronSpec, Job, Scheduler } from "@lunora/scheduler"
import * as TestScheduler from "@lunora/scheduler/testing"
import * as CronEngine from "../src/internal/engine/crons.js"
import { defaultConfig as config } from "../src/internal/engine/engine.js"
import { makeBackend } from "../src/internal/services/memory.js"
import * as JobRegistry from "../src/JobRegistry.js"
import * as JobStore from "../src/internal/engine/store.js"

interface Fire {
  readonly path: string
  readonly at: number
  readonly due: number
  readonly key: string | null
}

class Fires extends Context.Tag("test/Fires")<Fires, Ref.Ref<ReadonlyArray<Fire>>>() {}

const SendDigest = Job.make("digest:send", { payload: Schema.Struct({ list: Schema.String }) })
const Sync = Job.make("sync:run", { payload: Schema.Struct({ seconds: Schema.Number }) })

const record = (path: string, { key, scheduledFor }: Job.JobContext) =>
  Effect.gen(function*() {
    const at = yield* Clock.currentTimeMillis
    yield* Ref.update(yield* Fires, (all) => [...all, { path, at, due: scheduledFor.epochMillis, key: Option.getOrNull(key) }])
  })

const handlers = Layer.mergeAll(
  SendDigest.toLayer((_, context) => record(SendDigest.path, context)),
  Sync.toLayer((payload, context) =>
    Effect.zipRight(record(Sync.path, context), Effect.sleep(Duration.seconds(payload.seconds)))
  )
)

const layerWith = (crons: CronSpec.CronJobs) =>
  handlers.pipe(
    Layer.provideMerge(Layer.merge(TestScheduler.layer({ crons }), Layer.effect(Fires, Ref.make<ReadonlyArray<Fire>>([]))))
  )

const fires = Effect.flatMap(Fires, Ref.get)
const DAY = 86_400_000

describe("CronRegistry (test layer, TestClock)", () => {
  it.effect("a daily cron fires exactly 31 times over a 31-day month, at 09:00 UTC each day", () => {
    const crons = CronSpec.cronJobs().daily("send digest", { hourUTC: 9, minuteUTC: 0 }, SendDigest, { list: "all" })
    return Effect.gen(function*() {
      yield* TestClock.adjust(Duration.days(31))
      const all = yield* fires
      expect(all).toHaveLength(31)
      expect(all.map((fire) => fire.at)).toEqual(Array.from({ length: 31 }, (_, day) => day * DAY + 9 * 3_600_000))
      // the handler gets the fire's idempotency key: the cron's name and its scheduled time
      expect(all[1]!.key).toBe(`cron:send digest:${DAY + 9 * 3_600_000}`)
      const [info] = yield* Effect.flatMap(CronRegistry.CronRegistry, (registry) => registry.list)
      expect(info!.nextRunAt.epochMillis).toBe(31 * DAY + 9 * 3_600_000)
      expect(info!.lastOutcome).toEqual(Option.some("fired"))
      expect(info!.lastRunState).toEqual(Option.some("success"))
      const job = yield* Effect.flatMap(Scheduler.Scheduler, (s) => s.get(Option.getOrThrow(info!.lastJobId)))
      expect(job.state).toBe("success")
      expect(job.scheduledFor.epochMillis).toBe(30 * DAY + 9 * 3_600_000)
    }).pipe(Effect.provide(layerWith(crons)))
  })

  it.effect("a fire that would overlap a run still in progress is skipped and recorded", () => {
    const crons = CronSpec.cronJobs().interval("sync", { minutes: 1 }, Sync, { seconds: 90 })
    return Effect.gen(function*() {
      yield* TestClock.adjust("5 minutes")
      // fires at 1:00 (runs to 2:30), 2:00 skipped, 3:00 (to 4:30), 4:00 skipped, 5:00
      expect((yield* fires).map((fire) => fire.due / 60_000)).toEqual([1, 3, 5])
      const info = yield* Effect.flatMap(CronRegistry.CronRegistry, (registry) => registry.get("sync"))
      expect(info.skipped).toBe(2)
      expect(info.nextRunAt.epochMillis).toBe(6 * 60_000)
    }).pipe(Effect.provide(layerWith(crons)))
  })

  it.effect("an interval counts from its scheduled times, so a slow handler does not make it drift", () => {
    const crons = CronSpec.cronJobs().interval("sync", { minutes: 10 }, Sync, { seconds: 180 })
    return Effect.gen(function*() {
      yield* TestClock.adjust("1 hour")
      expect((yield* fires).map((fire) => fire.at / 60_000)).toEqual([10, 20, 30, 40, 50, 60])
    }).pipe(Effect.provide(layerWith(crons)))
  })

  it.effect("trigger runs a cron now without moving its schedule; an unknown name is CronNotFound", () => {
    const crons = CronSpec.cronJobs().daily("send digest", { hourUTC: 9, minuteUTC: 0 }, SendDigest, { list: "vip" })
    return Effect.gen(function*() {
      const registry = yield* CronRegistry.CronRegistry
      yield* TestClock.adjust("1 hour")
      const id = yield* registry.trigger("send digest")
      yield* TestClock.adjust("1 second")
      expect((yield* fires).map((fire) => fire.at)).toEqual([3_600_000])
      expect((yield* Effect.flatMap(Scheduler.Scheduler, (s) => s.get(id))).state).toBe("success")
      expect((yield* registry.get("send digest")).nextRunAt.epochMillis).toBe(9 * 3_600_000)
      const missing = yield* Effect.flip(registry.trigger("nope"))
      expect(missing._tag).toBe("CronNotFound")
    }).pipe(Effect.provide(layerWith(crons)))
  })

  it.effect("trigger while a run is in progress starts nothing: CronRunInProgress, with the live run", () => {
    const crons = CronSpec.cronJobs().interval("sync", { minutes: 10 }, Sync, { seconds: 120 })
    return Effect.gen(function*() {
      const registry = yield* CronRegistry.CronRegistry
      yield* TestClock.adjust("11 minutes")
      const live = Option.getOrThrow((yield* registry.get("sync")).lastJobId)
      const refused = yield* Effect.flip(registry.trigger("sync"))
      expect(refused).toMatchObject({ _tag: "CronRunInProgress", name: "sync", jobId: live })
      yield* TestClock.adjust("2 minutes")
      const id = yield* registry.trigger("sync")
      yield* TestClock.adjust("1 second")
      expect((yield* fires).map((fire) => fire.key)).toEqual(["cron:sync:600000", `cron:sync:manual:${13 * 60_000}`])
      expect(id).not.toBe(live)
    }).pipe(Effect.provide(layerWith(crons)))
  })

  it.effect("reconcile: the same declaration again changes nothing; a removed cron stops; a changed one moves", () => {
    const declared = () =>
      CronSpec.cronJobs()
        .interval("sync", { minutes: 10 }, Sync, { seconds: 0 })
        .daily("send digest", { hourUTC: 9, minuteUTC: 0 }, SendDigest, { list: "all" })
    return Effect.gen(function*() {
      const registry = yield* CronRegistry.CronRegistry
      expect(yield* registry.reconcile(declared())).toEqual({ added: [], changed: [], removed: [] })
      const only = CronSpec.cronJobs().interval("sync", { minutes: 15 }, Sync, { seconds: 0 })
      expect(yield* registry.reconcile(only)).toEqual({ added: [], changed: ["sync"], removed: ["send digest"] })
      yield* TestClock.adjust("1 day")
      expect((yield* fires).every((fire) => fire.path === Sync.path && fire.due % (15 * 60_000) === 0)).toBe(true)
      expect(yield* fires).toHaveLength(96)
    }).pipe(Effect.provide(layerWith(declared())))
  })
})

describe("crons across daylight-saving gaps, on TestClock", () => {
  const Plain = Job.make("plain:job", { payload: Schema.Struct({}) })
  /** The wall-clock hour and minute of an instant in a zone. */
  const wall = (timeZone: string, at: number) =>
    new Intl.DateTimeFormat("en-GB", { timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(at)

  // each zone's spring-forward in 2026: Cairo and Santiago skip midnight to 01:00, Lord Howe 02:00 to 02:30
  const cases = [
    { zone: "Africa/Cairo", from: "2026-04-22T00:00:00Z", daily: "0 0 * * *", gapDay: "00:00 -> 01:00" },
    { zone: "America/Santiago", from: "2026-09-04T00:00:00Z", daily: "0 0 * * *", gapDay: "00:00 -> 01:00" },
    { zone: "Australia/Lord_Howe", from: "2026-10-01T12:00:00Z", daily: "0 2 * * *", gapDay: "02:00 -> 02:30" }
  ] as const

  for (const { daily, from, gapDay, zone } of cases) {
    it.effect(`${zone} (${gapDay}): "${daily}" and "0 */2 * * *" fire through the gap, and a plain job after it runs`, () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(Date.parse(from))
        const crons = CronSpec.cronJobs()
          .cron("daily", daily, SendDigest, { list: "daily" }, { timeZone: zone })
          .cron("every two hours", "0 */2 * * *", SendDigest, { list: "two-hourly" }, { timeZone: zone })
        const layer = Plain.toLayer((_, context) => record(Plain.path, context)).pipe(Layer.provideMerge(layerWith(crons)))
        yield* Effect.gen(function*() {
          const scheduler = yield* Scheduler.Scheduler
          yield* scheduler.runAt(Date.parse(from) + 5 * DAY, Plain, {})
          for (let hour = 0; hour < 6 * 24; hour++) yield* TestClock.adjust("1 hour")
          const all = yield* fires
          const dailies = all.filter((fire) => fire.key?.startsWith("cron:daily:"))
          expect(dailies).toHaveLength(6)
          // every day once, at its time or (the day of the gap) just after the gap
          expect(new Set(dailies.map((fire) => wall(zone, fire.due))).size).toBeLessThanOrEqual(2)
          const twoHourly = all.filter((fire) => fire.key?.startsWith("cron:every two hours:"))
          expect(twoHourly.length).toBeGreaterThanOrEqual(70)
          expect(new Set(twoHourly.map((fire) => fire.due)).size).toBe(twoHourly.length)
          expect(all.filter((fire) => fire.path === Plain.path)).toHaveLength(1)
          const infos = yield* Effect.flatMap(CronRegistry.CronRegistry, (registry) => registry.list)
          expect(infos.map((info) => Option.getOrNull(info.lastOutcome))).toEqual(["fired", "fired"])
        }).pipe(Effect.provide(layer))
      }))
  }

  it.effect("a cron that cannot fire is recorded on it, and the others and the jobs run", () => {
    const crons = CronSpec.cronJobs().interval("tick", { minutes: 1 }, SendDigest, { list: "tick" })
    const store = JobStore.makeMemory()
    return Effect.scoped(Effect.gen(function*() {
      const backend = yield* makeBackend()
      yield* backend.reconcileCrons(crons.definitions)
      store.putCron({ ...store.getCron("tick")!, name: "broken", schedule: "not json" })
      yield* Scheduler.fromBackend(backend).runAfter("90 seconds", SendDigest, { list: "plain" })
      yield* TestClock.adjust("3 minutes")
      expect((yield* fires).map((fire) => fire.key ?? "plain")).toEqual(["cron:tick:60000", "plain", "cron:tick:120000", "cron:tick:180000"])
      const broken = yield* CronRegistry.fromBackend(backend).get("broken")
      expect(Option.getOrThrow(broken.lastOutcome)).toMatch(/^error: /)
      expect(broken.nextRunAt.epochMillis).toBe(4 * 60_000)
    })).pipe(
      Effect.provide(handlers.pipe(Layer.provideMerge(JobRegistry.layer))),
      Effect.provideService(JobStore.JobStore, store),
      Effect.provide(Layer.effect(Fires, Ref.make<ReadonlyArray<Fire>>([])))
    )
  })
})

describe("an outage, on TestClock", () => {
  it.effect("three days with the scheduler down: one catch-up run when it is back, then on schedule", () => {
    const crons = CronSpec.cronJobs().daily("send digest", { hourUTC: 9, minuteUTC: 0 }, SendDigest, { list: "all" })
    const store = JobStore.makeMemory()
    // a scheduler over one store that outlives it: up, down (its scope closed), up again
    const up = <A, E, R>(body: Effect.Effect<A, E, R>) =>
      Effect.scoped(Effect.gen(function*() {
        const backend = yield* makeBackend()
        yield* backend.reconcileCrons(crons.definitions)
        return yield* body
      })).pipe(
        Effect.provide(handlers.pipe(Layer.provideMerge(JobRegistry.layer))),
        Effect.provideService(JobStore.JobStore, store)
      )
    return Effect.gen(function*() {
      yield* up(TestClock.adjust("10 hours")) // day 0, 09:00 fires
      yield* TestClock.adjust("3 days") // down until day 3, 10:00: days 1, 2 and 3 at 09:00 are missed
      yield* up(TestClock.adjust("2 days")) // back: one catch-up at once, then days 4 and 5
      expect((yield* fires).map((fire) => [fire.at / 3_600_000, fire.due / 3_600_000])).toEqual([
        [9, 9],
        [82, 81],
        [105, 105],
        [129, 129]
      ])
    }).pipe(Effect.provide(Layer.effect(Fires, Ref.make<ReadonlyArray<Fire>>([]))))
  })
})

describe("cron engine", () => {
  const store = () => JobStore.makeMemory()

  it("after an outage of three days, the latest missed window fires once and the cron resumes on schedule", () => {
    const s = store()
    const crons = CronSpec.cronJobs().daily("send digest", { hourUTC: 9, minuteUTC: 0 }, SendDigest, { list: "all" })
    CronEngine.reconcile(s, 0, crons.definitions)
    const outageEnd = 3 * DAY + 12 * 3_600_000
    const { fired, skipped } = CronEngine.fireDue(s, config, outageEnd, 100)
    expect(skipped).toEqual([])
    expect(fired).toHaveLength(1)
    expect(fired[0]!.scheduledFor).toBe(3 * DAY + 9 * 3_600_000)
    expect(s.getCron("send digest")!.nextRunAt).toBe(4 * DAY + 9 * 3_600_000)
    expect(CronEngine.fireDue(s, config, outageEnd, 100).fired).toEqual([])
  })

  it("an interval resumes on its own grid after an outage", () => {
    const s = store()
    CronEngine.reconcile(s, 0, CronSpec.cronJobs().interval("tick", { minutes: 10 }, "x:y", {}).definitions)
    CronEngine.fireDue(s, config, 95 * 60_000, 100)
    expect(s.getCron("tick")!.nextRunAt).toBe(100 * 60_000)
  })

  it("a fire is stored once: its job id and key name the cron and the scheduled time", () => {
    const s = store()
    CronEngine.reconcile(s, 0, CronSpec.cronJobs().interval("tick", { minutes: 1 }, "x:y", {}).definitions)
    const [job] = CronEngine.fireDue(s, config, 60_000, 100).fired
    expect(job!.key).toBe("cron:tick:60000")
    expect(job!.id).toMatch(/^job_0_c[0-9a-z]{16}$/)
    expect(Schema.is(Job.JobId)(job!.id)).toBe(true)
  })
})
