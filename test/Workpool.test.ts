import { describe, expect, it } from "@effect/vitest"
import { Clock, Context, Duration, Effect, Exit, FastCheck as fc, Layer, Option, Ref, Schema, TestClock } from "effect"
import { Job, Scheduler, Workpool } from "@lunora/scheduler"
import * as TestScheduler from "@lunora/scheduler/testing"

/** What the handlers saw: each start and end, and the most jobs running at once. */
interface Trace {
  readonly starts: ReadonlyArray<{ readonly id: string; readonly attempt: number; readonly at: number }>
  readonly ends: ReadonlyArray<{ readonly id: string; readonly at: number }>
  readonly running: number
  readonly maxRunning: number
}

class Traces extends Context.Tag("test/Traces")<Traces, Ref.Ref<Trace>>() {}

const Work = Job.make("pool:work", {
  payload: Schema.Struct({ ms: Schema.Int, failures: Schema.optional(Schema.Int), children: Schema.optional(Schema.Int) })
})

/** Runs for `ms`, failing its first `failures` attempts; enqueues `children` into its own pool. */
const handlers = Work.toLayer((payload, { attempt, id, pool }) =>
  Effect.gen(function*() {
    const traces = yield* Traces
    const at = yield* Clock.currentTimeMillis
    yield* Ref.update(traces, (t) => ({
      ...t,
      starts: [...t.starts, { id, attempt, at }],
      running: t.running + 1,
      maxRunning: Math.max(t.maxRunning, t.running + 1)
    }))
    yield* Effect.sleep(Duration.millis(payload.ms)).pipe(
      Effect.ensuring(Ref.update(traces, (t) => ({ ...t, running: t.running - 1 })))
    )
    const end = yield* Clock.currentTimeMillis
    yield* Ref.update(traces, (t) => ({ ...t, ends: [...t.ends, { id, at: end }] }))
    if (attempt <= (payload.failures ?? 0)) return yield* Effect.fail(new Error(`attempt ${attempt} failed`))
    if ((payload.children ?? 0) > 0 && Option.isSome(pool)) {
      const workpool = yield* Workpool.Workpool
      for (let i = 0; i < payload.children!; i++) yield* workpool.enqueue(Work, { ms: payload.ms })
    }
  })
)

const TracesLive = Layer.effect(
  Traces,
  Ref.make<Trace>({ starts: [], ends: [], running: 0, maxRunning: 0 })
)

const poolLayer = (options: Workpool.PoolOptions = { name: "work", maxConcurrency: 2 }) =>
  handlers.pipe(
    Layer.provideMerge(Workpool.layerMemory(options)),
    Layer.provideMerge(Layer.merge(TestScheduler.layer(), TracesLive))
  )

const trace = Effect.flatMap(Traces, Ref.get)
const startOrder = (t: Trace) => t.starts.filter((s) => s.attempt === 1).map((s) => s.id)

describe("Workpool (in memory, on TestClock)", () => {
  it.effect("keeps at most maxConcurrency running, starts in FIFO order, and drains", () =>
    Effect.gen(function*() {
      const pool = yield* Workpool.Workpool
      const ids: Array<string> = []
      for (let i = 0; i < 7; i++) ids.push((yield* pool.enqueue(Work, { ms: 10_000 })).id)
      yield* TestClock.adjust("1 millis")
      expect(yield* pool.status).toMatchObject({ inFlight: 2, queued: 5, maxConcurrency: 2, paused: false })
      yield* TestClock.adjust("45 seconds")
      const t = yield* trace
      expect(t.maxRunning).toBe(2)
      expect(startOrder(t)).toEqual(ids)
      expect(yield* pool.status).toMatchObject({ inFlight: 0, queued: 0, deadLettered: 0 })
      const scheduler = yield* Scheduler.Scheduler
      const job = yield* scheduler.get(ids[6]!)
      expect(job.state).toBe("success")
      expect(job.pool).toEqual(Option.some("work"))
    }).pipe(Effect.provide(poolLayer())))

  it.effect("starts the next job at the instant a slot frees", () =>
    Effect.gen(function*() {
      const pool = yield* Workpool.Workpool
      yield* pool.enqueue(Work, { ms: 7_000 })
      const second = yield* pool.enqueue(Work, { ms: 1_000 })
      yield* TestClock.adjust("10 seconds")
      const t = yield* trace
      expect(t.starts.find((s) => s.id === second.id)?.at).toBe(7_000)
    }).pipe(Effect.provide(poolLayer({ name: "one", maxConcurrency: 1 }))))

  it.effect("reports the status an operator needs: counts, dead letters and the age of the oldest queued job", () =>
    Effect.gen(function*() {
      const pool = yield* Workpool.Workpool
      yield* pool.enqueue(Work, { ms: 60_000 })
      yield* pool.enqueue(Work, { ms: 1, failures: 5 }, { retry: { maxAttempts: 1 } })
      yield* TestClock.adjust("30 seconds")
      const status = yield* pool.status
      expect(status).toMatchObject({ name: "one", maxConcurrency: 1, inFlight: 1, queued: 1, deadLettered: 0 })
      expect(Option.map(status.oldestQueuedAge, Duration.toMillis)).toEqual(Option.some(30_000))
      yield* TestClock.adjust("31 seconds")
      expect(yield* pool.status).toMatchObject({ inFlight: 0, queued: 0, deadLettered: 1 })
    }).pipe(Effect.provide(poolLayer({ name: "one", maxConcurrency: 1 }))))

  it.effect("pauses and resumes; in-flight work finishes; the pause holds across a redeclaration", () =>
    Effect.gen(function*() {
      const pool = yield* Workpool.Workpool
      const ids: Array<string> = []
      for (let i = 0; i < 4; i++) ids.push((yield* pool.enqueue(Work, { ms: 1_000 })).id)
      yield* TestClock.adjust("1 millis")
      yield* pool.pause
      yield* TestClock.adjust("1 minute")
      expect((yield* trace).starts.map((s) => s.id)).toEqual(ids.slice(0, 2))
      const redeclared = yield* Workpool.makeFromEngine({ name: "work", maxConcurrency: 2 })
      expect(yield* redeclared.status).toMatchObject({ paused: true, queued: 2, inFlight: 0 })
      yield* pool.resume
      yield* TestClock.adjust("2 seconds")
      expect(startOrder(yield* trace)).toEqual(ids)
    }).pipe(Effect.provide(poolLayer())))

  it.effect("changes maxConcurrency at runtime, and keeps it until the declaration changes", () =>
    Effect.gen(function*() {
      const pool = yield* Workpool.Workpool
      yield* pool.setMaxConcurrency(4)
      for (let i = 0; i < 8; i++) yield* pool.enqueue(Work, { ms: 1_000 })
      yield* TestClock.adjust("1 millis")
      expect((yield* pool.status).inFlight).toBe(4)
      const sameDeclaration = yield* Workpool.makeFromEngine({ name: "work", maxConcurrency: 2 })
      expect((yield* sameDeclaration.status).maxConcurrency).toBe(4)
      const newDeclaration = yield* Workpool.makeFromEngine({ name: "work", maxConcurrency: 3 })
      expect((yield* newDeclaration.status).maxConcurrency).toBe(3)
      yield* TestClock.adjust("5 seconds")
      expect((yield* trace).maxRunning).toBe(4)
    }).pipe(Effect.provide(poolLayer())))

  it.effect("cancels one queued job, or everything queued; running jobs finish", () =>
    Effect.gen(function*() {
      const pool = yield* Workpool.Workpool
      const ids: Array<string> = []
      for (let i = 0; i < 6; i++) ids.push((yield* pool.enqueue(Work, { ms: 1_000 })).id)
      yield* TestClock.adjust("1 millis")
      expect(yield* pool.cancel(ids[0]!)).toMatchObject({ _tag: "TooLate" })
      expect(yield* pool.cancel(ids[2]!)).toMatchObject({ _tag: "Canceled" })
      expect(yield* pool.cancelQueued).toBe(3)
      yield* TestClock.adjust("10 seconds")
      expect((yield* trace).starts.map((s) => s.id)).toEqual(ids.slice(0, 2))
      expect((yield* pool.get(ids[5]!)).state).toBe("canceled")
      const missing = yield* Effect.exit(pool.cancel("job_0_nope000000000000"))
      expect(missing).toEqual(Exit.fail(expect.objectContaining({ _tag: "JobNotFound" })))
    }).pipe(Effect.provide(poolLayer())))

  it.effect("counts work enqueued from inside a pool job against the pool", () =>
    Effect.gen(function*() {
      const pool = yield* Workpool.Workpool
      yield* pool.enqueue(Work, { ms: 1_000, children: 3 })
      yield* pool.enqueue(Work, { ms: 1_000, children: 3 })
      yield* TestClock.adjust("1 minute")
      const t = yield* trace
      expect(t.starts).toHaveLength(8)
      expect(t.maxRunning).toBe(2)
    }).pipe(Effect.provide(poolLayer())))

  it.effect("does not hold scheduled jobs behind a full pool", () =>
    Effect.gen(function*() {
      const pool = yield* Workpool.Workpool
      const scheduler = yield* Scheduler.Scheduler
      for (let i = 0; i < 5; i++) yield* pool.enqueue(Work, { ms: 60_000 })
      const scheduled = yield* scheduler.runAfter("1 second", Work, { ms: 0 })
      yield* TestClock.adjust("2 seconds")
      expect((yield* trace).starts.some((s) => s.id === scheduled && s.at === 1_000)).toBe(true)
    }).pipe(Effect.provide(poolLayer({ name: "one", maxConcurrency: 1 }))))

  describe("refusals: typed errors, nothing stored", () => {
    it.effect("an unknown pool, when attaching without a maxConcurrency", () =>
      Effect.gen(function*() {
        const pool = yield* Workpool.makeFromEngine({ name: "nowhere" })
        const enqueued = yield* Effect.exit(pool.enqueue(Work, { ms: 1 }))
        expect(enqueued).toEqual(Exit.fail(expect.objectContaining({ _tag: "PoolNotFound", pool: "nowhere" })))
        expect(Exit.isFailure(yield* Effect.exit(pool.status))).toBe(true)
        const page = yield* (yield* Scheduler.Scheduler).list()
        expect(page.jobs).toEqual([])
      }).pipe(Effect.provide(poolLayer())))

    it.effect("maxConcurrency below 1, not an integer or too large; a malformed name", () =>
      Effect.gen(function*() {
        for (const options of [
          { name: "p", maxConcurrency: 0 },
          { name: "p", maxConcurrency: 2.5 },
          { name: "p", maxConcurrency: 1001 },
          { name: "", maxConcurrency: 1 },
          { name: "has space", maxConcurrency: 1 }
        ]) {
          const made = yield* Effect.exit(Workpool.makeFromEngine(options))
          expect(made, JSON.stringify(options)).toEqual(Exit.fail(expect.objectContaining({ _tag: "InvalidOptions" })))
        }
        const pool = yield* Workpool.Workpool
        const changed = yield* Effect.exit(pool.setMaxConcurrency(0))
        expect(changed).toEqual(Exit.fail(expect.objectContaining({ _tag: "InvalidOptions" })))
        expect((yield* pool.status).maxConcurrency).toBe(2)
      }).pipe(Effect.provide(poolLayer())))

    it.effect("a payload failing its Schema: InvalidPayload, and no job of the batch is stored", () =>
      Effect.gen(function*() {
        const pool = yield* Workpool.Workpool
        const enqueued = yield* Effect.exit(pool.enqueueMany([
          { job: Work, payload: { ms: 1 } },
          { job: Work, payload: { ms: "soon" } as never }
        ]))
        expect(enqueued).toEqual(Exit.fail(expect.objectContaining({ _tag: "InvalidPayload" })))
        expect(yield* pool.status).toMatchObject({ queued: 0, inFlight: 0 })
        expect((yield* (yield* Scheduler.Scheduler).list()).jobs).toEqual([])
      }).pipe(Effect.provide(poolLayer())))
  })
})

/** One job of a random scenario: how long each attempt runs, how many fail, and whether it is canceled. */
interface Plan {
  readonly seconds: number
  readonly failures: number
  readonly cancelAtSeconds: number | null
}

const planArb: fc.Arbitrary<Plan> = fc.record({
  seconds: fc.integer({ min: 0, max: 4 }),
  failures: fc.integer({ min: 0, max: 3 }),
  cancelAtSeconds: fc.option(fc.integer({ min: 0, max: 12 }), { nil: null })
})

describe("Workpool properties (random durations, failures, cancels, pauses)", () => {
  it.effect.prop(
    "never more than maxConcurrency in flight, FIFO first starts, one terminal state each",
    [
      fc.array(planArb, { minLength: 1, maxLength: 12 }),
      fc.integer({ min: 1, max: 4 }),
      fc.option(fc.tuple(fc.integer({ min: 0, max: 10 }), fc.integer({ min: 1, max: 10 })), { nil: null })
    ],
    ([plans, maxConcurrency, pauseWindow]) =>
      Effect.gen(function*() {
        const pool = yield* Workpool.Workpool
        const scheduler = yield* Scheduler.Scheduler
        const ids: Array<string> = []
        for (const plan of plans) {
          const { id } = yield* pool.enqueue(
            Work,
            { ms: plan.seconds * 1_000, failures: plan.failures },
            { retry: { maxAttempts: 3, backoff: "linear", baseMs: 1_000 } }
          )
          ids.push(id)
        }
        // each event answers what it canceled, if it did: a pending job, or a running one (TooLate)
        type Canceled = readonly ["canceled" | "running", string]
        const events: Array<readonly [number, Effect.Effect<Canceled | undefined, unknown>]> = []
        plans.forEach((plan, i) => {
          if (plan.cancelAtSeconds !== null) {
            events.push([
              plan.cancelAtSeconds,
              Effect.map(pool.cancel(ids[i]!), (result): Canceled | undefined =>
                result._tag === "Canceled"
                  ? ["canceled", result.id]
                  : result._tag === "TooLate"
                  ? ["running", result.id]
                  : undefined)
            ])
          }
        })
        if (pauseWindow !== null) {
          events.push(
            [pauseWindow[0], Effect.as(pool.pause, undefined)],
            [pauseWindow[0] + pauseWindow[1], Effect.as(pool.resume, undefined)]
          )
        }
        // for each job canceled (pending or running): how many attempts had started by then (none may start after)
        const startsAtCancel = new Map<string, number>()
        const canceledRunning = new Set<string>()
        for (const [seconds, event] of events.sort((a, b) => a[0] - b[0])) {
          const now = yield* Clock.currentTimeMillis
          if (seconds * 1_000 > now) yield* TestClock.adjust(Duration.millis(seconds * 1_000 - now))
          const canceled = yield* event
          if (canceled !== undefined) {
            const [kind, id] = canceled
            startsAtCancel.set(id, (yield* trace).starts.filter((s) => s.id === id).length)
            if (kind === "running") canceledRunning.add(id)
          }
        }
        yield* TestClock.adjust("2 minutes")

        const t = yield* trace
        expect(t.maxRunning).toBeLessThanOrEqual(maxConcurrency)
        expect(t.running).toBe(0)
        const first = startOrder(t)
        expect(first).toEqual(ids.filter((id) => first.includes(id)))
        for (const [i, id] of ids.entries()) {
          const job = yield* scheduler.get(id)
          const plan = plans[i]!
          const attempts = t.starts.filter((s) => s.id === id)
          if (startsAtCancel.has(id)) {
            // a running one finishes that attempt: a success if it was to succeed, else canceled (never retried)
            const succeeded = canceledRunning.has(id) && startsAtCancel.get(id)! > plan.failures
            expect(job.state).toBe(succeeded ? "success" : "canceled")
            expect(attempts).toHaveLength(startsAtCancel.get(id)!)
          } else {
            expect(job.state).toBe(plan.failures < 3 ? "success" : "deadLettered")
            expect(attempts).toHaveLength(Math.min(plan.failures + 1, 3))
          }
        }
        expect(yield* pool.status).toMatchObject({ inFlight: 0, queued: 0 })
      }).pipe(Effect.provide(poolLayer({ name: "prop", maxConcurrency }))),
    { fastCheck: { numRuns: 40 }, timeout: 120_000 }
  )
})
