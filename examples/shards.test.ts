/**
 * The README's sharding example: a scheduler over 4 shards in memory, on
 * `TestClock`. Run it with `npm test` (it is part of the suite).
 */
import { expect, it } from "@effect/vitest"
import { Effect, Layer, Option, TestClock } from "effect"
import { Scheduler } from "@lunora/scheduler"
import * as TestScheduler from "@lunora/scheduler/testing"
import { handlers, SyncAccount } from "./jobs.js"

const TestLayer = handlers.pipe(Layer.provideMerge(TestScheduler.layer({ shards: 4 })))

/** The shard a job id names: `job_<shard>_…`, base 36. */
const shardOf = (id: string) => parseInt(id.split("_")[1]!, 36)

it.effect("each account's syncs share a shard, a key dedupes there, and list sees every shard", () =>
  Effect.gen(function*() {
    const scheduler = yield* Scheduler.Scheduler
    const sync = (accountId: string) =>
      scheduler.runAfter("1 minute", SyncAccount, { accountId }, { shardKey: accountId, key: `sync:${accountId}` })

    const ids = yield* Effect.forEach(["a", "b", "c", "d", "e", "f", "g", "h"], sync)
    expect(new Set(ids.map(shardOf)).size).toBeGreaterThan(1) // spread over the shards
    expect(yield* sync("c")).toBe(ids[2]) // the same key: the live job, not a second one

    const page = yield* scheduler.list({ state: "pending" }) // from every shard
    expect(page.jobs.map((job) => job.id).sort()).toEqual([...ids].sort())
    expect(page.cursor).toEqual(Option.none())

    yield* TestClock.adjust("5 minutes")
    const jobs = yield* Effect.forEach(ids, (id) => scheduler.get(id)) // each from its own shard
    expect(jobs.map((job) => job.state)).toEqual(ids.map(() => "success"))
  }).pipe(Effect.provide(TestLayer)))
