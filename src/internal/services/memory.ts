/**
 * The memory runtime: the engine over a `Store` in this process, with a drain
 * loop driven by Effect's `Clock`, so `TestClock.adjust` runs due jobs.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { isTerminal } from "../../Job.js"
import { contextOf } from "../domain/job.js"
import type { CronJobs } from "../../CronSpec.js"
import * as JobRegistry from "../../JobRegistry.js"
import { JobStore, type JobRecord } from "../engine/store.js"
import { type Backend, operationsOf } from "./backend.js"
import * as CronEngine from "../engine/crons.js"
import * as Engine from "../engine/engine.js"
import * as Operations from "../engine/operations.js"

export interface MemoryOptions {
  /** How long one attempt may run before it counts as failed. Default 5 minutes. */
  readonly lease?: Duration.DurationInput | undefined
  /** How long finished jobs are kept (dead letters excepted). Default 7 days. */
  readonly retention?: Duration.DurationInput | undefined
  /** How many due jobs one pass of the drain loop leases. Default 100. */
  readonly batchSize?: number | undefined
  /** Crons to reconcile into this scheduler when the layer is built. */
  readonly crons?: CronJobs | undefined
}

export const makeBackend = (options: MemoryOptions = {}) =>
  Effect.gen(function*() {
    const store = yield* JobStore
    const registry = yield* JobRegistry.JobRegistry
    const config: Engine.EngineConfig = {
      leaseMs: options.lease === undefined ? Engine.defaultConfig.leaseMs : Duration.toMillis(options.lease),
      retentionMs: options.retention === undefined
        ? Engine.defaultConfig.retentionMs
        : Duration.toMillis(options.retention)
    }
    const batchSize = options.batchSize ?? 100
    const wake = yield* Queue.sliding<void>(1)
    const version = yield* SubscriptionRef.make(0)
    const fibers = yield* FiberSet.make()

    const changed = Effect.zipRight(Queue.offer(wake, undefined), SubscriptionRef.update(version, (n) => n + 1))

    const mutate = <A>(f: (now: number) => A): Effect.Effect<A> =>
      Clock.currentTimeMillis.pipe(
        Effect.map(f),
        Effect.tap(changed)
      )

    /** The attempts running, by `id#attempt`: an attempt whose lease the engine expires is interrupted. */
    const running = new Map<string, Fiber.RuntimeFiber<unknown, unknown>>()
    const attemptOf = (job: JobRecord) => `${job.id}#${job.attempt}`

    /**
     * The times a timer will wake the loop at. A timer is started only for a
     * time earlier than every armed one, and never interrupted: under
     * `TestClock` each sleep, even an interrupted one, is a wake-up it stops at,
     * so the loop arms once per due instant, not once per change or per job.
     */
    const armed = new Set<number>()
    const timers = yield* FiberSet.make()
    const arm = (at: number, now: number) =>
      Effect.suspend(() => {
        for (const time of armed) if (time <= at) return Effect.void
        armed.add(at)
        return FiberSet.run(
          timers,
          Effect.sleep(Duration.millis(at - now)).pipe(
            Effect.zipRight(Effect.sync(() => armed.delete(at))),
            Effect.zipRight(Queue.offer(wake, undefined))
          )
        )
      })

    const runJob = (job: JobRecord) =>
      JobRegistry.run(job.functionPath, JSON.parse(job.args), contextOf(job)).pipe(
        Effect.provideService(JobRegistry.JobRegistry, registry),
        Effect.tap((outcome) =>
          outcome._tag === "Succeeded"
            ? Effect.void
            : Effect.logWarning(`attempt ${job.attempt} ${outcome._tag === "Failed" ? "failed" : "was rejected"}`, outcome._tag === "Failed" ? outcome.error : outcome.reason)
        ),
        Effect.flatMap((outcome) =>
          mutate((now) =>
            outcome._tag === "Succeeded"
              ? Engine.complete(store, config, now, job.id, job.attempt, outcome.result)
              : Engine.fail(
                store,
                config,
                now,
                job.id,
                job.attempt,
                outcome._tag === "Failed" ? outcome.error : outcome.reason,
                outcome._tag === "Failed"
              )
          )
        ),
        Effect.annotateLogs({ jobId: job.id, functionPath: job.functionPath }),
        Effect.withSpan("Scheduler.runJob", {
          attributes: { jobId: job.id, functionPath: job.functionPath },
          captureStackTrace: false
        })
      )

    /** One pass: fire due crons, sweep, lease and start what is due, then wait for the next due time or a change (not after a full batch). */
    const pass = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const crons = CronEngine.fireDue(store, config, now, batchSize)
      for (const cron of crons.failed) yield* Effect.logError(`cron "${cron.name}" failed: ${cron.lastOutcome}`)
      const { claimed, expired, swept } = Engine.poll(store, config, now, batchSize)
      if (
        crons.fired.length > 0 || crons.skipped.length > 0 || crons.failed.length > 0 || expired.length > 0 ||
        swept > 0 || claimed.length > 0
      ) {
        yield* SubscriptionRef.update(version, (n) => n + 1)
      }
      // an attempt whose lease ran out is a failed attempt (the engine retries it): it stops, as a dispatch past its lease does
      for (const job of expired) {
        const fiber = running.get(attemptOf(job))
        if (fiber !== undefined) yield* Fiber.interruptFork(fiber)
      }
      for (const job of claimed) {
        const attempt = attemptOf(job)
        const fiber = yield* FiberSet.run(fibers, Effect.ensuring(runJob(job), Effect.sync(() => running.delete(attempt))))
        if (fiber.unsafePoll() === null) running.set(attempt, fiber)
      }
      if (claimed.length === batchSize || expired.length === batchSize || crons.fired.length === batchSize) {
        yield* Effect.yieldNow()
        return
      }
      const wakeAt = Engine.nextWakeAt(store)
      if (wakeAt !== undefined && wakeAt <= now) {
        yield* Effect.yieldNow()
        return
      }
      if (wakeAt !== undefined) yield* arm(wakeAt, now)
      yield* Queue.take(wake)
    })

    /** The loop never ends on a failure: a pass that throws is logged and retried after a backoff, on the `Clock`. */
    let failures = 0
    const drain = Effect.forever(
      pass.pipe(
        Effect.tap(() => {
          failures = 0
        }),
        Effect.catchAllCause((cause) => {
          failures++
          return Effect.zipRight(
            Effect.logError("scheduler pass failed; retrying after a backoff", cause),
            Effect.raceFirst(Effect.sleep(Duration.millis(Engine.failureBackoffMs(failures))), Queue.take(wake))
          )
        })
      )
    )
    yield* Effect.forkScoped(drain)

    const operations = Operations.make(store, config)
    const backend: Backend = {
      now: Clock.currentTimeMillis,
      ...operationsOf((name, args) => {
        const run = (now: number) => (operations[name] as Function)({ now, target: null }, ...args)
        return Operations.reads.has(name) ? Effect.map(Clock.currentTimeMillis, run) : mutate(run)
      }),
      awaitFinished: (id) =>
        version.changes.pipe(
          Stream.mapEffect(() => Effect.sync(() => store.get(id))),
          Stream.filter((job) => job === undefined || isTerminal(job.state)),
          Stream.runHead,
          Effect.map(Option.getOrUndefined)
        )
    }
    return backend
  })
