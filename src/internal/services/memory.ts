/**
 * The memory runtime: the engine over a `Store` in this process, with a drain
 * loop driven by Effect's `Clock`, so `TestClock.adjust` runs due jobs.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as FiberSet from "effect/FiberSet"
import * as HashMap from "effect/HashMap"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { isTerminal } from "../../Job.js"
import { InvalidOptions } from "../../SchedulerError.js"
import { contextOf } from "../domain/job.js"
import type { CronJobs } from "../../CronSpec.js"
import * as JobRegistry from "../../JobRegistry.js"
import { runIn } from "../domain/registry.js"
import { JobStore, type JobRecord, makeMemory } from "../engine/store.js"
import { MAX_SHARDS } from "../domain/shards.js"
import * as Sharded from "./sharded.js"
import { type Backend, operationsOf, type Stepper } from "./backend.js"
import * as Engine from "../engine/engine.js"
import * as Operations from "../engine/operations.js"
import type { Outcome } from "../runtime/dispatcher.js"
import * as Drain from "../runtime/drain.js"
import { type OwnTargetSender, sendToOwnTarget } from "../runtime/ownTarget.js"
import { ownTargetOf } from "../domain/targets.js"
import type { WorkflowBinding } from "../runtime/workflow.js"

const stepClocks = new WeakMap<() => number, Clock.Clock>()

/**
 * A `Clock` that reads `now()` and whose sleeps end at once: time that
 * `advance` steps, not waits, through. One per `now`, so a step already under
 * it (`advanceOver` runs every step under it) need not set it again.
 */
const stepClock = (now: () => number): Clock.Clock => {
  let clock = stepClocks.get(now)
  if (clock === undefined) {
    stepClocks.set(now, clock = {
      [Clock.ClockTypeId]: Clock.ClockTypeId,
      unsafeCurrentTimeMillis: now,
      unsafeCurrentTimeNanos: () => BigInt(now()) * 1_000_000n,
      currentTimeMillis: Effect.sync(now),
      currentTimeNanos: Effect.sync(() => BigInt(now()) * 1_000_000n),
      sleep: () => Effect.void
    })
  }
  return clock
}

/**
 * An `adjust` (or `setTime`) of a `TestClock` in progress, as the memory
 * loops on it see it: the instant it ends at, and how far they have stepped
 * the `Clock` ahead of the `TestClock` within it.
 */
interface TestWindow {
  readonly clock: TestClock.TestClock
  /** The end of the `adjust` in progress; `undefined` between them. */
  end: number | undefined
  /** The instant the loops stepped to, ahead of the `TestClock` (until it gets there). */
  lead: number
  /** How many `adjust`s are in progress (one, but for a fiber that adjusts while another does). */
  open: number
  /** Told when an `adjust` or `setTime` starts: the pacers of the loops on this clock, which step to what it reaches. */
  readonly openers: Set<Effect.Effect<void>>
}

/** The windows of the `TestClock`s the memory runtime wrapped, by wrapper. */
const windows = new WeakMap<Clock.Clock, TestWindow>()

const isTestClock = (clock: Clock.Clock): clock is TestClock.TestClock =>
  "adjust" in clock && "setTime" in clock && "sleeps" in clock

/**
 * A `TestClock` that delegates to `clock` and records each `adjust` or
 * `setTime` in progress in its window. It reads the later of `clock`'s time
 * and the window's lead, and a sleep ends that long after the time it reads.
 */
const windowed = (clock: TestClock.TestClock): TestClock.TestClock => {
  const window: TestWindow = { clock, end: undefined, lead: Number.NEGATIVE_INFINITY, open: 0, openers: new Set() }
  const now = () => Math.max(clock.unsafeCurrentTimeMillis(), window.lead)
  const within = (end: number, effect: Effect.Effect<void>) =>
    Effect.suspend(() => {
      window.open++
      window.end = Math.max(window.end ?? end, end)
      return Effect.ensuring(
        Effect.zipRight(Effect.forEach(window.openers, (opener) => opener, { discard: true }), effect),
        Effect.sync(() => {
          if (--window.open > 0) return
          window.end = undefined
          window.lead = Number.NEGATIVE_INFINITY
        })
      )
    })
  const wrapper: TestClock.TestClock = {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: now,
    unsafeCurrentTimeNanos: () => BigInt(now()) * 1_000_000n,
    currentTimeMillis: Effect.sync(now),
    currentTimeNanos: Effect.sync(() => BigInt(now()) * 1_000_000n),
    sleep: (duration) =>
      Effect.suspend(() => {
        const ms = Duration.toMillis(duration)
        return clock.sleep(ms > 0 ? Duration.millis(ms + now() - clock.unsafeCurrentTimeMillis()) : duration)
      }),
    adjust: (duration) =>
      Effect.suspend(() =>
        within(clock.unsafeCurrentTimeMillis() + Duration.toMillis(Duration.decode(duration)), clock.adjust(duration))
      ),
    adjustWith: (duration) => (effect) => Effect.zipLeft(effect, wrapper.adjust(duration), { concurrent: true }),
    save: Effect.map(clock.save, (restore) => Effect.zipRight(Effect.sync(() => (window.lead = Number.NEGATIVE_INFINITY)), restore)),
    setTime: (time) =>
      Effect.suspend(() => {
        window.lead = Number.NEGATIVE_INFINITY
        return within(time, clock.setTime(time))
      }),
    sleeps: clock.sleeps
  }
  windows.set(wrapper, window)
  return wrapper
}

/**
 * The window of the `TestClock` in context, which is wrapped (`windowed`)
 * for the scope when it is not yet; `undefined` under any other `Clock`.
 */
const testWindow: Effect.Effect<TestWindow | undefined, never, Scope.Scope> = Effect.gen(function*() {
  const clock = yield* Effect.clock
  const known = windows.get(clock)
  if (known !== undefined || !isTestClock(clock)) return known
  const wrapper = windowed(clock)
  yield* Effect.withClockScoped(wrapper)
  return windows.get(wrapper)
})

/** A drain loop's wait, as its pacer sees it. */
interface Waiter {
  readonly wake: Queue.Queue<void>
  /** Until when the loop waits (`undefined`: for a signal only); `null` while it runs. */
  at: number | undefined | null
  /** Whether it waits between passes, with nothing in flight. */
  idle: boolean
}

/**
 * Paces the drain loops of one memory backend on one `Clock`. When every
 * loop waits, the earliest time one waits for is reached by a timer, or,
 * when the loops are idle under a wrapped `TestClock` (`windowed`), without
 * one: within an `adjust` (or `setTime`) that reaches it before any other
 * sleep ends, at once, the `Clock` stepping ahead to it (the window's lead)
 * and that loop waking; past the end of the one in progress, or between
 * them, when the next one starts (its `openers`). So `adjust` stops at no
 * instant the loops step to, only at one a sleep of another fiber waits for.
 * A timer is started only for a time earlier than every armed one, and never
 * interrupted: under `TestClock` each sleep, even an interrupted one, is a
 * wake-up it stops at, and a wait for every fiber to suspend.
 */
const makePacer = (window: TestWindow | undefined) =>
  Effect.gen(function*() {
    const loops: Array<Waiter> = []
    const armed = new Set<number>()
    const timers = yield* FiberSet.make()

    const wakeAll = Effect.forEach(loops, (loop) => Queue.offer(loop.wake, undefined), { discard: true })
    const arm = (at: number) =>
      Effect.suspend(() => {
        for (const time of armed) if (time <= at) return Effect.void
        armed.add(at)
        return FiberSet.run(
          timers,
          Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sleep(Duration.millis(at - now))).pipe(
            Effect.zipRight(Effect.sync(() => armed.delete(at))),
            Effect.zipRight(wakeAll)
          )
        )
      })

    /** The first time a sleep of another fiber than the timers ends. */
    const othersFirst = (sleeps: Iterable<number>) => {
      const ours = new Set(armed)
      let first = Number.POSITIVE_INFINITY
      for (const time of sleeps) if (!ours.delete(time)) first = Math.min(first, time)
      return first
    }

    const pace = (yielded: boolean): Effect.Effect<void> =>
      Effect.suspend(() => {
        let next: number | undefined
        let idle = true
        for (const loop of loops) {
          // a loop that runs paces them when it waits
          if (loop.at === null) return Effect.void
          next = Engine.earliest(next, loop.at)
          idle &&= loop.idle
        }
        if (next === undefined) return Effect.void
        const at = next
        if (window === undefined || !idle) return arm(at)
        // idle loops wait for no timer: the adjust or setTime that reaches `at` steps to it (`openers`)
        if (window.end === undefined || at > window.end) return Effect.void
        // fibers this instant woke run first (a yield, not a wait: a loop that waits on nothing else lets adjust go on)
        if (!yielded) return Effect.zipRight(Effect.yieldNow(), pace(true))
        return Effect.flatMap(window.clock.sleeps, (sleeps) => {
          if (at >= othersFirst(sleeps)) return arm(at)
          window.lead = Math.max(window.lead, at)
          return Effect.forEach(loops, (loop) => (loop.at === at ? Queue.offer(loop.wake, undefined) : Effect.void), {
            discard: true
          })
        })
      })

    if (window !== undefined) {
      const opener = pace(false)
      window.openers.add(opener)
      yield* Effect.addFinalizer(() => Effect.sync(() => window.openers.delete(opener)))
    }

    return {
      /** A loop to pace, woken through `wake`. */
      register: (wake: Queue.Queue<void>): Waiter => {
        const loop: Waiter = { wake, at: null, idle: false }
        loops.push(loop)
        return loop
      },
      /** Waits for a signal, or until `at`; `idle`: between passes, with nothing in flight. */
      wait: (loop: Waiter, at: number | undefined, idle: boolean): Effect.Effect<void> =>
        Effect.suspend(() => {
          loop.at = at
          loop.idle = idle
          return Effect.zipRight(pace(false), Queue.take(loop.wake)).pipe(
            Effect.ensuring(Effect.sync(() => (loop.at = null)))
          )
        })
    }
  })

type Pacer = Effect.Effect.Success<ReturnType<typeof makePacer>>

/** How many expired leases, and finished jobs per state, one step handles. */
const SWEEP_LIMIT = 100

export interface MemoryOptions {
  /** How long one attempt may run before it counts as failed. Default 5 minutes. */
  readonly lease?: Duration.DurationInput | undefined
  /** How long finished jobs are kept (dead letters excepted). Default 7 days. */
  readonly retention?: Duration.DurationInput | undefined
  /** How many batches of jobs run at once, as the `SchedulerDO`'s `LUNORA_SCHEDULER_CONCURRENCY` (1–64). Default 6. */
  readonly concurrency?: number | undefined
  /** How many due jobs one batch carries, as the `SchedulerDO`'s `LUNORA_SCHEDULER_DISPATCH_BATCH` (1–100). Default 10. */
  readonly batchSize?: number | undefined
  /** Crons to reconcile into this scheduler when the layer is built. */
  readonly crons?: CronJobs | undefined
  /**
   * How many shards jobs are spread over, as the live layer's `shards` (1–1024):
   * each a store and a loop of its own, on the one `Clock`. Default 1.
   */
  readonly shards?: number | undefined
  /**
   * How webhook jobs (`Webhook.make`) are delivered: really, with `fetch`, signed
   * with `secret` (default `"test-webhook-secret"`), to any URL the
   * `SchedulerDO` would send to or to loopback (`hosts`: its allow-list).
   * Give `fetch` to answer them in the test instead.
   */
  readonly webhooks?: {
    readonly secret?: string | undefined
    readonly hosts?: ReadonlyArray<string> | undefined
    readonly fetch?: typeof globalThis.fetch | undefined
  } | undefined
  /**
   * The Workflow bindings workflow jobs (`Workflow.make`) start instances of,
   * by binding name: anything with `create({ id, params })`.
   */
  readonly workflows?: Readonly<Record<string, WorkflowBinding>> | undefined
}

/**
 * Steps through every due instant up to `ms` from now, over the loops of
 * one backend or of several shards on one timeline, without waiting on the
 * `Clock`: at each instant, one pass of the loop that has work then, with the
 * `Clock` reading that instant (a handler's own waits on it take no time),
 * run to its end; then moves the `Clock` (`TestClock.adjust`) to the end.
 */
export const advanceOver = (
  steppers: ReadonlyArray<(now: () => number) => Effect.Effect<Stepper>>,
  ms: number
): Effect.Effect<void> =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    const end = start + ms
    let current = start
    const now = () => current
    const loops = yield* Effect.forEach(steppers, (stepper) => stepper(now))
    const steps = Effect.gen(function*() {
      for (;;) {
        let next: Stepper | undefined
        let at: number | undefined
        for (const loop of loops) {
          const wake = loop.nextWorkAt()
          if (wake !== undefined && (at === undefined || wake < at)) [at, next] = [wake, loop]
        }
        if (next === undefined || at === undefined || at > end) break
        const previous = current
        current = Math.max(at, current)
        const result = yield* next.step
        // what is due at once and does nothing (a step that fails) is left to the loops on the Clock
        if (current === previous && !result.progress) break
      }
    })
    yield* Effect.withClock(steps, stepClock(now))
    yield* TestClock.adjust(Duration.millis(end - (yield* Clock.currentTimeMillis)))
  })

/**
 * The memory runtime over the `JobStore` in context; with `shards`, over
 * that store and a fresh one per further shard, each with its loop, routed as
 * the live layer routes (`sharded.ts`), stepped together by `advance`.
 */
export const makeBackend = (options: MemoryOptions = {}) =>
  Effect.gen(function*() {
    const count = options.shards ?? 1
    if (!Number.isInteger(count) || count < 1 || count > MAX_SHARDS) {
      return yield* Effect.die(new InvalidOptions({ reason: `shards must be an integer from 1 to ${MAX_SHARDS}, not ${count}` }))
    }
    const pacer = yield* makePacer(yield* testWindow)
    const first = yield* makeShard(options, pacer)
    if (count === 1) return first
    const rest = yield* Effect.forEach(
      Array.from({ length: count - 1 }),
      () => Effect.provideService(makeShard(options, pacer), JobStore, makeMemory())
    )
    const shards = [first, ...rest]
    const backend = Sharded.make({ count, instanceName: "memory", shard: (shard) => shards[shard] ?? first })
    return { ...backend, advance: (ms: number) => advanceOver(shards.map((shard) => shard.stepper!), ms) } satisfies Backend
  })

/** One shard of the memory runtime: the engine over the `JobStore` in context, and its drain loop. */
const makeShard = (options: MemoryOptions, pacer: Pacer) =>
  Effect.gen(function*() {
    const store = yield* JobStore
    const registry = yield* JobRegistry.JobRegistry
    const config: Engine.EngineConfig = {
      leaseMs: options.lease === undefined ? Engine.defaultConfig.leaseMs : Duration.toMillis(options.lease),
      retentionMs: options.retention === undefined
        ? Engine.defaultConfig.retentionMs
        : Duration.toMillis(options.retention)
    }
    const batchSize = options.batchSize ?? 10
    const concurrency = options.concurrency ?? 6
    // a loop that could lease nothing would never run a job
    for (const [name, value, most] of [["concurrency", concurrency, 64], ["batchSize", batchSize, 100]] as const) {
      if (!Number.isInteger(value) || value < 1 || value > most) {
        return yield* Effect.die(new InvalidOptions({ reason: `${name} must be an integer from 1 to ${most}, not ${value}` }))
      }
    }
    const wake = yield* Queue.sliding<void>(1)
    const loop = pacer.register(wake)
    /** The waits of `awaitFinished`, each told of every change to the store; each says whether it is done. */
    const watchers = new Set<() => boolean>()
    const notify = Effect.sync(() => {
      for (const watcher of watchers) watcher()
    })
    const fibers = yield* FiberSet.make()

    const changed = Effect.zipRight(Queue.offer(wake, undefined), notify)

    const mutate = <A>(f: (now: number) => A): Effect.Effect<A> =>
      Clock.currentTimeMillis.pipe(
        Effect.map(f),
        Effect.tap(changed)
      )

    /** The attempts running, by `id#attempt`: an attempt whose lease the engine expires is interrupted. */
    const running = new Map<string, Fiber.RuntimeFiber<unknown, unknown>>()
    const attemptOf = (job: JobRecord) => `${job.id}#${job.attempt}`

    const ownTargets: OwnTargetSender = {
      secret: Redacted.make(options.webhooks?.secret ?? "test-webhook-secret"),
      policy: { allowLoopback: true, hosts: options.webhooks?.hosts },
      fetch: options.webhooks?.fetch,
      workflow: (name) => options.workflows?.[name] ?? `the test layer has no Workflow binding ${name} (its workflows option)`
    }

    /** One attempt's outcome: its handler's, or (a webhook, a Workflow) its own target's, sent as the `SchedulerDO` sends it. */
    const outcomeOf = (job: JobRecord): Effect.Effect<Outcome> => {
      const own = ownTargetOf(job.target)
      if (own !== undefined) {
        return Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.promise(() => sendToOwnTarget(ownTargets, own, job, now)))
      }
      // the attempt's fiber is its own (`senderOf`)
      return runIn(registry, job.functionPath, JSON.parse(job.args), contextOf(job), true).pipe(
        Effect.flatMap((outcome): Effect.Effect<Outcome> => {
          if (outcome._tag === "Succeeded") return Effect.succeed({ ok: true, result: outcome.result })
          const error = outcome._tag === "Failed" ? outcome.error : outcome.reason
          return Effect.as(
            Effect.logWarning(`attempt ${job.attempt} ${outcome._tag === "Failed" ? "failed" : "was rejected"}`, error),
            { ok: false, retryable: outcome._tag === "Failed", error }
          )
        })
      )
    }

    /**
     * Runs one attempt, with its logs annotated by the job over
     * `annotations` and its handler's services: set on the fiber that runs
     * it, not `locally` (about 6 µs an attempt), so whoever runs it sets
     * them back, or the fiber ends with it. Its caller settles the outcome
     * from the exit (`settled`), however it ends.
     */
    const runJob = (job: JobRecord, annotations: HashMap.HashMap<string, unknown>) =>
      Effect.zipRight(
        FiberRef.set(
          FiberRef.currentLogAnnotations,
          HashMap.set(HashMap.set(annotations, "jobId", job.id), "functionPath", job.functionPath)
        ),
        outcomeOf(job)
      )

    /** The outcome an attempt's exit settles: its own, or a retryable failure when it was stopped. */
    const settled = (exit: Exit.Exit<Outcome>): Outcome =>
      Exit.isSuccess(exit) ? exit.value : { ok: false, retryable: true, error: "the attempt was stopped" }

    /** The memory sender, forking with `fork`: each job of a batch runs at once, in a fiber of its own (an expired lease stops it). */
    const senderOf = (fork: (effect: Effect.Effect<Outcome>) => Fiber.RuntimeFiber<Outcome>): Drain.Sender =>
    (batch, settle) => {
      for (const job of batch) {
        const attempt = attemptOf(job)
        // a fiber of its own, whose annotations end with it; settled as it exits, however it ends
        const fiber = fork(Effect.flatMap(FiberRef.get(FiberRef.currentLogAnnotations), (annotations) => runJob(job, annotations)))
        fiber.addObserver((exit) => {
          running.delete(attempt)
          settle(job, settled(exit))
        })
        if (fiber.unsafePoll() === null) running.set(attempt, fiber)
      }
    }

    const drainOf = (
      send: Drain.Sender,
      signal: Queue.Queue<void>,
      wait: (at: number | undefined, now: number) => Effect.Effect<void>
    ) =>
      Drain.make({
        store,
        config,
        concurrency,
        batchSize: () => batchSize,
        groupOf: () => "",
        claimPerSlot: () => batchSize,
        sweepLimit: SWEEP_LIMIT,
        send,
        signal,
        watchLeases: true,
        flushDelayMs: 0,
        wait,
        spanName: "Scheduler.runJobs",
        // an attempt whose lease ran out is a failed attempt (the engine retries it): it stops, as a dispatch past its lease does
        onExpired: (jobs) =>
          Effect.forEach(jobs, (job) => {
            const fiber = running.get(attemptOf(job))
            return fiber === undefined ? Effect.void : Fiber.interruptFork(fiber)
          }, { discard: true }),
        onChange: notify
      })

    const drainPass = drainOf(
      senderOf((effect) => runFork(effect)),
      wake,
      (at) => pacer.wait(loop, at, false)
    )

    /** The loop's bulk stepping: one pass at a time, with the `Clock` reading the instant `now` gives. */
    const stepper = (now: () => number) =>
      Effect.gen(function*() {
        const stepped = stepClock(now)
        const signal = yield* Queue.sliding<void>(1)
        // time does not pass within an instant: the batches sent run when the pass waits, one job after another, in its fiber
        const sent: Array<readonly [ReadonlyArray<JobRecord>, (job: JobRecord, outcome: Outcome) => void]> = []
        const send: Drain.Sender = (batch, settle) => void sent.push([batch, settle])
        // in the caller's fiber: each attempt's annotations over the caller's, which are set back after them, and its
        // handler's services over the caller's context, which is set back after each (an attempt sets them on its fiber)
        const runSent = Effect.flatMap(
          Effect.zip(FiberRef.get(FiberRef.currentLogAnnotations), FiberRef.get(FiberRef.currentContext)),
          ([annotations, context]) => {
            const restored = FiberRef.set(FiberRef.currentContext, context)
            return Effect.forEach(
              sent.splice(0),
              ([batch, settle]) =>
                Effect.forEach(batch, (job) =>
                  Effect.flatMap(Effect.exit(runJob(job, annotations)), (exit) => {
                    settle(job, settled(exit))
                    return restored
                  }), { discard: true }),
              { discard: true }
            ).pipe(Effect.zipRight(FiberRef.set(FiberRef.currentLogAnnotations, annotations)))
          }
        )
        const pass = drainOf(send, signal, () => runSent)({
          budget: Number.POSITIVE_INFINITY,
          leaseUntil: Number.POSITIVE_INFINITY
        })
        const step = Effect.clockWith((clock) => (clock === stepped ? pass : Effect.withClock(pass, stepped)))
        return { nextWorkAt: () => Engine.nextWorkAt(store), step }
      })

    /** One pass of the drain loop, then a wait for the next due time or a change. */
    const pass = Effect.gen(function*() {
      const result = yield* drainPass({ budget: Number.POSITIVE_INFINITY, leaseUntil: Number.POSITIVE_INFINITY })
      if (result.failed) return result
      // what woke the loop during the pass is in the store, which is read next
      yield* Queue.takeAll(wake)
      const now = yield* Clock.currentTimeMillis
      const wakeAt = Engine.nextWakeAt(store)
      if (wakeAt !== undefined && wakeAt <= now) {
        yield* Effect.yieldNow()
        return result
      }
      yield* pacer.wait(loop, wakeAt, true)
      return result
    })

    /** The loop never ends on a failure: a pass that fails a step is logged and retried after a backoff, on the `Clock`. */
    let failures = 0
    const backoff = Effect.flatMap(
      Clock.currentTimeMillis,
      (now) => pacer.wait(loop, now + Engine.failureBackoffMs(failures), false)
    )
    const drain = Effect.forever(
      pass.pipe(
        Effect.catchAllCause((cause) =>
          Effect.as(Effect.logError("scheduler pass failed; retrying after a backoff", cause), { failed: true })
        ),
        Effect.flatMap((result) => {
          failures = result.failed ? failures + 1 : 0
          return result.failed ? backoff : Effect.void
        })
      )
    )
    const runFork = yield* FiberSet.runtime(fibers)<never>()
    yield* Effect.forkScoped(drain)

    const operations = Operations.make(store, config)
    const backend: Backend = {
      now: Clock.currentTimeMillis,
      shardCount: 1,
      stepper,
      advance: (ms) => advanceOver([stepper], ms),
      ...operationsOf((name, args) => {
        const run = (now: number) => (operations[name] as Function)({ now, target: null }, ...args)
        return Operations.reads.has(name) ? Effect.map(Clock.currentTimeMillis, run) : mutate(run)
      }),
      awaitFinished: (id) =>
        Effect.async<JobRecord | undefined>((resume) => {
          const watcher = () => {
            const job = store.get(id)
            if (job !== undefined && !isTerminal(job.state)) return false
            watchers.delete(watcher)
            resume(Effect.succeed(job))
            return true
          }
          if (watcher()) return
          watchers.add(watcher)
          return Effect.sync(() => watchers.delete(watcher))
        })
    }
    return backend
  })
