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
