/**
 * The README's first example: test a scheduled export with `TestClock`.
 * Run it with `npm test` (it is part of the suite).
 */
import { expect, it } from "@effect/vitest"
import { Effect, Layer, Option, TestClock } from "effect"
import { Scheduler } from "@lunora/scheduler"
import * as TestScheduler from "@lunora/scheduler/testing"
import { BuildExport, handlers } from "./jobs.js"

const TestLayer = handlers.pipe(Layer.provideMerge(TestScheduler.layer()))

it.effect("the export runs five minutes after it is requested, not before", () =>
  Effect.gen(function*() {
    const scheduler = yield* Scheduler.Scheduler
    const id = yield* scheduler.runAfter("5 minutes", BuildExport, { userId: "u-1", format: "csv" })

    yield* TestClock.adjust("4 minutes")
    expect((yield* scheduler.get(id)).state).toBe("pending")

    yield* TestClock.adjust("1 minute")
    const job = yield* scheduler.get(id)
    expect(job.state).toBe("success")
    expect(job.result).toEqual(Option.some({ url: "https://files.example.com/exports/u-1.csv" }))
  }).pipe(Effect.provide(TestLayer)))
