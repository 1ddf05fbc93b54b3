/**
 * The README's cron example: declared crons fire on `TestClock`, and the
 * registry shows their next times and last runs.
 */
import { expect, it } from "@effect/vitest"
import { DateTime, Effect, Layer, Option, TestClock } from "effect"
import { CronRegistry, Scheduler } from "@lunora/scheduler"
import * as TestScheduler from "@lunora/scheduler/testing"
import crons from "./crons.js"
import { handlers } from "./jobs.js"

const TestLayer = handlers.pipe(Layer.provideMerge(TestScheduler.layer({ crons })))

it.effect("a week of the example's crons", () =>
  Effect.gen(function*() {
    // TestClock starts at 1970-01-01T00:00Z, a Thursday
    yield* TestClock.adjust("7 days")
    const registry = yield* CronRegistry.CronRegistry
    const nightly = yield* registry.get("nightly export")
    expect(DateTime.formatIso(nightly.nextRunAt)).toBe("1970-01-08T02:00:00.000Z")
    expect(nightly.lastOutcome).toEqual(Option.some("fired"))

    const scheduler = yield* Scheduler.Scheduler
    const exports = yield* scheduler.list({ functionPath: "exports:build", limit: 1000 })
    // 7 nightly exports and Monday's weekly report, all run
    expect(exports.jobs).toHaveLength(8)
    expect(exports.jobs.every((job) => job.state === "success")).toBe(true)

    const standup = yield* registry.get("london standup")
    // 1970: London kept UTC+1 all year (British Standard Time), so 09:00 local is 08:00 UTC
    expect(Option.map(standup.lastRunAt, DateTime.formatIso)).toEqual(Option.some("1970-01-07T08:00:00.000Z"))
  }).pipe(Effect.provide(TestLayer)))
