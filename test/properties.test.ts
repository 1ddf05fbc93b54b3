import { describe, expect, it } from "@effect/vitest"
import { Clock, Context, Duration, Effect, FastCheck as fc, Layer, Ref, Schema, TestClock } from "effect"
import { Job, Scheduler } from "@lunora/scheduler"
import * as TestScheduler from "@lunora/scheduler/testing"
import * as Engine from "../src/internal/engine/engine.js"
import { makeMemory } from "../src/internal/engine/store.js"

const TERMINAL = new Set(["success", "failed", "canceled", "deadLettered"])

/** One job of a random scenario. */
interface Plan {
  readonly delayMs: number
  readonly retryDelaysMs: ReadonlyArray<number>
  /** What each attempt does: "ok", "fail", "reject" (not retryable) or "hang" (no report: the lease expires). */
  readonly attempts: ReadonlyArray<"ok" | "fail" | "reject" | "hang">
  /** Cancel at this time, if set. */
  readonly cancelAtMs: number | null
  readonly key: string | null
}

const planArb: fc.Arbitrary<Plan> = fc.record({
  delayMs: fc.integer({ min: 0, max: 10_000 }),
  retryDelaysMs: fc.array(fc.integer({ min: 0, max: 5_000 }), { maxLength: 4 }),
  attempts: fc.array(fc.constantFrom("ok", "fail", "fail", "reject", "hang"), { minLength: 6, maxLength: 6 }),
  cancelAtMs: fc.option(fc.integer({ min: 0, max: 15_000 }), { nil: null }),
  key: fc.option(fc.constantFrom("k1", "k2"), { nil: null })
})

describe("engine properties (random schedules, cancels, failures, hangs)", () => {
  const config: Engine.EngineConfig = { leaseMs: 3_000, retentionMs: 10_000_000 }

  it.prop("no early run, no run after cancel, attempts within policy, one terminal state each", [fc.array(planArb, { minLength: 1, maxLength: 25 }), fc.integer({ min: 1, max: 10 })], ([plans, batch]) => {
    const store = makeMemory()
    const created = new Map<string, Plan>()
    const canceledAt = new Map<string, number>()
    // canceled while running: it finishes that attempt, and never runs again
    const tooLate = new Set<string>()
    const runs = new Map<string, number>()
    const results = Engine.scheduleMany(store, config, 0, plans.map((plan, i) => ({
      id: `j${i}`,
      functionPath: "p:job",
      args: "{}",
      runAt: plan.delayMs,
      retryDelaysMs: plan.retryDelaysMs,
      deadLetter: i % 2 === 0,
      key: plan.key,
      shardKey: null,
      pool: null
    })))
    results.forEach((result, i) => {
      if (result._tag === "Created") created.set(result.job.id, plans[i]!)
      else expect(result.job.key).toBe(plans[i]!.key)
    })
    const cancels = [...created].flatMap(([id, plan]) => (plan.cancelAtMs === null ? [] : [[plan.cancelAtMs, id] as const]))

    for (let now = 0; now <= 200_000; now += 250) {
      for (const [at, id] of cancels) {
        if (at > now - 250 && at <= now) {
          const result = Engine.cancel(store, config, now, id)
          if (result._tag === "Canceled") canceledAt.set(id, now)
          if (result._tag === "TooLate") tooLate.add(id)
        }
      }
      // drain this instant, in bounded batches, as the runtimes do
      for (let pass = 0; pass < 100; pass++) {
        const { claimed } = Engine.poll(store, config, now, batch)
        for (const job of claimed) {
          const plan = created.get(job.id)!
          expect(job.scheduledFor).toBeLessThanOrEqual(now)
          expect(canceledAt.has(job.id)).toBe(false)
          expect(tooLate.has(job.id)).toBe(false)
          expect(job.attempt).toBeLessThanOrEqual(job.retryDelaysMs.length + 1)
          runs.set(job.id, (runs.get(job.id) ?? 0) + 1)
          const behaviour = plan.attempts[job.attempt - 1]!
          if (behaviour === "ok") Engine.complete(store, config, now, job.id, job.attempt, null)
          else if (behaviour !== "hang") Engine.fail(store, config, now, job.id, job.attempt, behaviour, behaviour === "fail")
        }
        if (claimed.length < batch) break
      }
    }

    for (const [id] of created) {
      const job = store.get(id)!
      expect(TERMINAL.has(job.state)).toBe(true)
      expect(job.attempt).toBe(runs.get(id) ?? 0)
      expect(job.attempt).toBeLessThanOrEqual(job.retryDelaysMs.length + 1)
      if (canceledAt.has(id)) expect(job.state).toBe("canceled")
      if (tooLate.has(id)) expect(["success", "canceled"]).toContain(job.state)
      if (job.state === "canceled") expect(canceledAt.has(id) || tooLate.has(id)).toBe(true)
      if (job.state === "success") expect(created.get(id)!.attempts[job.attempt - 1]).toBe("ok")
      if (job.state === "deadLettered" || job.state === "failed") {
        const last = created.get(id)!.attempts[job.attempt - 1]
        expect(last === "reject" || job.attempt === job.retryDelaysMs.length + 1).toBe(true)
      }
    }
    const wake = Engine.nextWakeAt(store)
    expect(wake === undefined || wake > 200_000).toBe(true)
  }, { fastCheck: { numRuns: 300 } })
})

interface Entry {
  readonly id: string
  readonly at: number
  readonly attempt: number
  readonly scheduledFor: number
}

class Log extends Context.Tag("test/Log")<Log, Ref.Ref<ReadonlyArray<Entry>>>() {}

const Flaky = Job.make("prop:flaky", {
  payload: Schema.Struct({ failures: Schema.Int, workMs: Schema.Int })
})

const FlakyLive = Flaky.toLayer((payload, ctx) =>
  Effect.gen(function*() {
    const log = yield* Log
    const at = yield* Clock.currentTimeMillis
    yield* Ref.update(log, (all) => [...all, { id: ctx.id, at, attempt: ctx.attempt, scheduledFor: ctx.scheduledFor.epochMillis }])
    yield* Effect.sleep(Duration.millis(payload.workMs))
    if (ctx.attempt <= payload.failures) return yield* Effect.fail(new Error(`failure ${ctx.attempt}`))
  })
)

describe("Scheduler properties (test layer, TestClock)", () => {
  const jobArb = fc.record({
    delayMs: fc.integer({ min: 0, max: 60_000 }),
    failures: fc.integer({ min: 0, max: 4 }),
    workMs: fc.integer({ min: 0, max: 2_000 }),
    maxAttempts: fc.integer({ min: 1, max: 4 }),
    cancelAfterMs: fc.option(fc.integer({ min: 0, max: 90_000 }), { nil: null })
  })

  it.effect.prop("every job ends in exactly one state, never early, never after a cancel", [fc.array(jobArb, { minLength: 1, maxLength: 12 })], ([jobs]) =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const ids = yield* Effect.forEach(jobs, (job) =>
        scheduler.runAfter(job.delayMs, Flaky, { failures: job.failures, workMs: job.workMs }, {
          retry: { maxAttempts: job.maxAttempts, backoff: "linear", baseMs: 5_000 }
        }))
      const cancels = jobs
        .map((job, i) => [job.cancelAfterMs, ids[i]!] as const)
        .filter((c): c is readonly [number, Job.JobId] => c[0] !== null)
        .sort((a, b) => a[0] - b[0])
      // by how many runs were logged when the cancel was answered: a run at the cancel's own instant may precede it
      const loggedAtCancel = new Map<string, number>()
      const loggedAtTooLate = new Map<string, number>()
      let elapsed = 0
      for (const [at, id] of cancels) {
        yield* TestClock.adjust(at - elapsed)
        elapsed = at
        const result = yield* scheduler.cancel(id)
        const logged = (yield* Effect.flatMap(Log, Ref.get)).length
        if (result._tag === "Canceled") loggedAtCancel.set(id, logged)
        if (result._tag === "TooLate") loggedAtTooLate.set(id, logged)
      }
      yield* TestClock.adjust(Duration.millis(200_000 - elapsed))

      const log = yield* Effect.flatMap(Log, Ref.get)
      for (const [i, id] of ids.entries()) {
        const info = yield* scheduler.get(id)
        const runs = log.filter((entry) => entry.id === id)
        const positions = log.flatMap((entry, position) => (entry.id === id ? [position] : []))
        expect(TERMINAL.has(info.state)).toBe(true)
        expect(runs).toHaveLength(info.attempt)
        expect(info.attempt).toBeLessThanOrEqual(jobs[i]!.maxAttempts)
        for (const run of runs) expect(run.at).toBeGreaterThanOrEqual(run.scheduledFor)
        expect(runs[0]?.at ?? jobs[i]!.delayMs).toBeGreaterThanOrEqual(jobs[i]!.delayMs)
        const logged = loggedAtCancel.get(id)
        const loggedRunning = loggedAtTooLate.get(id)
        if (logged !== undefined) {
          // canceled while pending: before its first run or between retries; no run after the cancel
          expect(info.state).toBe("canceled")
          for (const position of positions) expect(position).toBeLessThan(logged)
        } else if (loggedRunning !== undefined) {
          // canceled while running: that attempt ends it, a success or canceled; no run after the cancel
          for (const position of positions) expect(position).toBeLessThan(loggedRunning)
          expect(info.state).toBe(info.attempt > jobs[i]!.failures ? "success" : "canceled")
        } else {
          const succeeds = jobs[i]!.failures < jobs[i]!.maxAttempts
          expect(info.state).toBe(succeeds ? "success" : "deadLettered")
          expect(info.attempt).toBe(succeeds ? jobs[i]!.failures + 1 : jobs[i]!.maxAttempts)
        }
      }
    }).pipe(Effect.provide(FlakyLive.pipe(Layer.provideMerge(Layer.merge(TestScheduler.layer(), Layer.effect(Log, Ref.make<ReadonlyArray<Entry>>([]))))))), { timeout: 60_000, fastCheck: { numRuns: 30 } })
})
