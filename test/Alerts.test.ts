import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Ref, Schema, TestClock } from "effect"
import { Alerts, Job, Scheduler } from "@lunora/scheduler"
import * as TestScheduler from "@lunora/scheduler/testing"

class Seen extends Context.Tag("test/AlertsSeen")<Seen, Ref.Ref<ReadonlyArray<Alerts.Event>>>() {}

const Work = Job.make("alerts:work", { payload: Schema.Struct({ fail: Schema.Boolean }) })
const NotifyOps = Job.make("ops:notify", { payload: Alerts.Event })
/** An alert job that always fails: its own dead letter must raise no alert. */
const BrokenPager = Job.make("ops:brokenPager", { payload: Alerts.Event })

const handlers = Layer.mergeAll(
  Work.toLayer((payload) => (payload.fail ? Effect.fail(new Error("work failed")) : Effect.void)),
  NotifyOps.toLayer((event) => Effect.flatMap(Seen, (seen) => Ref.update(seen, (all) => [...all, event]))),
  BrokenPager.toLayer((event) =>
    Effect.flatMap(Seen, (seen) => Ref.update(seen, (all) => [...all, event])).pipe(
      Effect.zipRight(Effect.fail(new Error("the pager is down")))
    )
  )
)

const layer = (alerts: Alerts.Alerts, options: Scheduler.MemoryOptions = {}) =>
  Alerts.layerMemory(alerts).pipe(
    Layer.provideMerge(handlers),
    Layer.provideMerge(Layer.merge(TestScheduler.layer(options), Layer.effect(Seen, Ref.make<ReadonlyArray<Alerts.Event>>([]))))
  )

const seen = Effect.flatMap(Seen, Ref.get)
const once = { retry: { maxAttempts: 1 } } as const

describe("Alerts (test layer, TestClock)", () => {
  it.effect("a dead letter fires the alert's job with the dead letters it names; the alert's own dead letter fires none", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const failing = yield* scheduler.runAfter(0, Work, { fail: true }, once)
      yield* scheduler.runAfter(0, Work, { fail: false }, once)
      yield* TestClock.adjust("1 second")
      const events = yield* seen
      expect(events).toHaveLength(2) // the pager's one attempt, and NotifyOps's
      for (const event of events) {
        expect(event).toMatchObject({ kind: "deadLetter", count: 1, jobs: [{ id: failing, functionPath: "alerts:work", attempt: 1 }] })
      }
      expect(new Set(events.map((event) => event.alert))).toEqual(new Set(["dead letters", "pager"]))
      // the pager's job is dead-lettered itself (1 attempt), and that raised nothing more
      expect((yield* scheduler.list({ state: "deadLettered" })).jobs.map((job) => job.functionPath).sort())
        .toEqual(["alerts:work", "ops:brokenPager"])
      yield* TestClock.adjust("1 minute")
      expect(yield* seen).toHaveLength(2)
    }).pipe(Effect.provide(layer(
      Alerts.make()
        .onDeadLetter("dead letters", NotifyOps)
        .onDeadLetter("pager", BrokenPager, { retry: { maxAttempts: 1 } })
    ))))

  it.effect("an error rate above its threshold fires once per breach, with its figures, and again after it recovered", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const run = (fail: boolean, n: number) =>
        scheduler.submit(Array.from({ length: n }, () => ({ job: Work, payload: { fail }, options: once })))
      yield* run(false, 8)
      yield* TestClock.adjust("1 second")
      expect(yield* seen).toEqual([]) // under minAttempts, and no failure
      yield* run(true, 6)
      yield* TestClock.adjust("1 second")
      const [first, ...rest] = yield* seen
      expect(rest).toEqual([])
      expect(first).toMatchObject({ alert: "failing", kind: "errorRate", above: 0.3, windowMs: 60_000, attempts: 14, failures: 6 })
      expect((first as { rate: number }).rate).toBeCloseTo(6 / 14)
      // still above: no second alert
      yield* run(true, 5)
      yield* TestClock.adjust("1 second")
      expect(yield* seen).toHaveLength(1)
      // the window slides past the failures; successes bring it under; a new burst is a new breach
      yield* TestClock.adjust("2 minutes")
      yield* run(false, 20)
      yield* TestClock.adjust("1 second")
      expect(yield* seen).toHaveLength(1)
      yield* run(true, 15)
      yield* TestClock.adjust("1 second")
      const events = yield* seen
      expect(events).toHaveLength(2)
      expect(events[1]).toMatchObject({ kind: "errorRate", attempts: 35, failures: 15 })
    }).pipe(Effect.provide(layer(
      Alerts.make().onErrorRate("failing", { above: 0.3, over: "1 minute", minAttempts: 10 }, NotifyOps, {
        functionPath: "alerts:work"
      })
    ))))

  it.effect("over shards, each shard watches its own outcomes", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const ids: Array<string> = []
      for (let n = 0; n < 8; n++) ids.push(yield* scheduler.runAfter(0, Work, { fail: true }, { ...once, key: `k${n}` }))
      yield* TestClock.adjust("1 second")
      const events = yield* seen
      const named = events.flatMap((event) => (event.kind === "deadLetter" ? event.jobs.map((job) => job.id) : []))
      expect(named.sort()).toEqual([...ids].sort())
    }).pipe(Effect.provide(layer(Alerts.make().onDeadLetter("dead letters", NotifyOps), { shards: 4 }))))

  it("refuses a malformed declaration when it is made", () => {
    const refused = (f: () => unknown) => {
      try {
        f()
      } catch (error) {
        return (error as { readonly _tag?: string; readonly message?: string })
      }
      return undefined
    }
    const alerts = Alerts.make().onDeadLetter("one", NotifyOps)
    expect(refused(() => alerts.onDeadLetter("one", NotifyOps))).toMatchObject({ _tag: "InvalidOptions" })
    expect(refused(() => alerts.onDeadLetter("", NotifyOps))?.message).toContain("a name is 1 to 128")
    expect(refused(() => alerts.onDeadLetter("x", "not a path"))?.message).toContain("not a function path")
    expect(refused(() => alerts.onErrorRate("r", { above: 1, over: "1 minute" }, NotifyOps))?.message).toContain("above")
    expect(refused(() => alerts.onErrorRate("r", { above: 0.1, over: "10 millis" }, NotifyOps))?.message).toContain("over")
    expect(refused(() => alerts.onErrorRate("r", { above: 0.1, over: "2 days" }, NotifyOps))?.message).toContain("over")
    expect(refused(() => alerts.onErrorRate("r", { above: 0.1, over: "1 minute", minAttempts: 0 }, NotifyOps))?.message)
      .toContain("minAttempts")
    expect(refused(() => alerts.onDeadLetter("x", NotifyOps, { retry: { maxAttempts: -1 } as never }))).toMatchObject({
      _tag: "InvalidOptions"
    })
    expect(alerts.definitions.map((alert) => alert.name)).toEqual(["one"])
  })
})
