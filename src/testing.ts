/**
 * Test support: the scheduler in memory, driven by `TestClock`.
 *
 * @example
 * ```ts
 * import { it } from "@effect/vitest"
 * import { Effect, TestClock } from "effect"
 * import { Scheduler } from "@lunora/scheduler"
 * import * as TestScheduler from "@lunora/scheduler/testing"
 *
 * it.effect("runs after five minutes", () =>
 *   Effect.gen(function*() {
 *     const scheduler = yield* Scheduler.Scheduler
 *     const id = yield* scheduler.runAfter("5 minutes", "exports:build", { userId: "u-1" })
 *     yield* TestClock.adjust("5 minutes")
 *     // ... the handler has run
 *   }).pipe(Effect.provide(TestScheduler.layer())))
 * ```
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as CronRegistry from "./CronRegistry.js"
import type * as JobRegistry from "./JobRegistry.js"
import * as Scheduler from "./Scheduler.js"

/**
 * A fresh in-memory scheduler (store, registry and drain loop) per build,
 * on Effect's `Clock`: after `TestClock.adjust(d)`, every job due within `d`
 * has run, in time order, retries and jobs scheduled by handlers included.
 * Provide job handlers (`Job.toLayer`) on top with `Layer.provideMerge`;
 * pass `crons` to fire declared crons on the same clock (`CronRegistry`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: Scheduler.MemoryOptions
): Layer.Layer<
  Scheduler.Scheduler | CronRegistry.CronRegistry | JobRegistry.JobRegistry | Scheduler.SchedulerEngine
> =>
  Scheduler.layerMemory(options)

/**
 * The bulk driver for long simulations: runs every job, retry and cron due
 * within `duration` of now, in time order with the same semantics as
 * `TestClock.adjust(duration)` (pool caps, retries, children, crons), but
 * steps from one due instant to the next instead of waiting at each for every
 * fiber to suspend (about 3 ms an instant under `TestClock`). At each instant
 * the handlers see the `Clock` read that instant and run to their end: their
 * own waits on the `Clock` (`Effect.sleep`, a timeout) take no simulated
 * time, so use `TestClock.adjust` for handlers that wait. A finished job past
 * its retention is forgotten at the next instant with work (or at the end),
 * not at an instant of its own. Then the `Clock` is at now + `duration`, as
 * after `TestClock.adjust(duration)`.
 *
 * @example
 * ```ts
 * yield* scheduler.submit(jobsOverAYear)
 * yield* TestScheduler.advance("365 days")
 * ```
 *
 * @since 0.1.0
 * @category testing
 */
export const advance = (duration: Duration.DurationInput): Effect.Effect<void, never, Scheduler.SchedulerEngine> =>
  Effect.flatMap(Scheduler.SchedulerEngine, (engine) =>
    engine.advance === undefined
      ? Effect.dieMessage("TestScheduler.advance needs the test layer (TestScheduler.layer): this scheduler is not in memory")
      : engine.advance(Duration.toMillis(Duration.decode(duration))))
