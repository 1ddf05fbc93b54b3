/**
 * The README's workpool example: a pool of 2 in memory, on `TestClock`.
 * Run it with `npm test` (it is part of the suite).
 */
import { expect, it } from "@effect/vitest"
import { Effect, Layer, Option, TestClock } from "effect"
import { Scheduler, Workpool } from "@lunora/scheduler"
import * as TestScheduler from "@lunora/scheduler/testing"
import { handlers, SyncAccount } from "./jobs.js"

const TestLayer = handlers.pipe(
  Layer.provideMerge(Workpool.layerMemory({ name: "crm-sync", maxConcurrency: 2 })),
  Layer.provideMerge(TestScheduler.layer())
)

it.effect("six syncs run two at a time, in the order they were enqueued", () =>
  Effect.gen(function*() {
    const pool = yield* Workpool.Workpool
    const ids: Array<string> = []
    for (const accountId of ["a", "b", "c", "d", "e", "f"]) {
      ids.push((yield* pool.enqueue(SyncAccount, { accountId, ms: 2_000 })).id)
    }

    yield* TestClock.adjust("1 second")
    expect(yield* pool.status).toMatchObject({ inFlight: 2, queued: 4, maxConcurrency: 2 })

    yield* TestClock.adjust("2 seconds") // a and b are done; c and d started the moment they finished
    expect(yield* pool.status).toMatchObject({ inFlight: 2, queued: 2 })

    yield* TestClock.adjust("3 seconds")
    const scheduler = yield* Scheduler.Scheduler
    const jobs = yield* Effect.forEach(ids, (id) => scheduler.get(id))
    expect(jobs.map((job) => job.state)).toEqual(ids.map(() => "success"))
    const startedAt = jobs.map((job) => Option.map(job.startedAt, (at) => at.epochMillis))
    expect(startedAt).toEqual([0, 0, 2_000, 2_000, 4_000, 4_000].map(Option.some))
  }).pipe(Effect.provide(TestLayer)))
