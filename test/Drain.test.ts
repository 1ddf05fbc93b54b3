import { describe, expect, it } from "@effect/vitest"
import { Effect, Queue } from "effect"
import * as Engine from "../src/internal/engine/engine.js"
import * as PoolEngine from "../src/internal/engine/pools.js"
import { makeMemory } from "../src/internal/engine/store.js"
import * as Drain from "../src/internal/runtime/drain.js"

const newJob = (n: number, now: number): Engine.NewJob => ({
  id: `job-${n}`,
  functionPath: "jobs/noop",
  args: "{}",
  runAt: now - 1,
  retryDelaysMs: [],
  deadLetter: false,
  key: null,
  shardKey: null,
  pool: null
})

/**
 * One pass of the drain loop over six due jobs, one per request, all in
 * flight at once, with a sender that answers them 20 ms apart (real time):
 * the sizes of the writes of outcomes, in order.
 */
const writesOf = (pooled: boolean) =>
  Effect.gen(function*() {
    const store = makeMemory()
    const config = Engine.defaultConfig
    const now = Date.now()
    const jobs = Array.from({ length: 6 }, (_, n) => newJob(n, now))
    if (pooled) {
      PoolEngine.define(store, now, "pool", 6)
      PoolEngine.enqueue(store, config, now, "pool", jobs)
    } else Engine.scheduleMany(store, config, now, jobs)
    const signal = yield* Queue.unbounded<void>()
    const writes: Array<number> = []
    let answered = 0
    const drain = Drain.make({
      store,
      config,
      concurrency: 6,
      batchSize: () => 1,
      groupOf: () => "",
      claimPerSlot: () => 1,
      sweepLimit: 100,
      send: (batch, settle) => {
        for (const job of batch) setTimeout(() => settle(job, { ok: true, result: null }), 20 * ++answered)
      },
      signal,
      wait: Drain.raceSignal(signal),
      // longer than the pass: a write is never due for its deadline here
      flushDelayMs: 60_000,
      spanName: "test.batch",
      watchLeases: false,
      observe: { leased: () => undefined, recorded: (results) => void writes.push(results.length), expired: () => undefined }
    })
    yield* drain({ budget: 100, leaseUntil: now + 60_000 })
    expect(store.list({ limit: 10 }).map((job) => job.state)).toEqual(Array(6).fill("success"))
    return writes
  })

describe("the drain loop's writes of outcomes", () => {
  it.live("writes the outcomes of finished single-job batches together while others run", () =>
    Effect.gen(function*() {
      // a write per finished batch would be a transaction per job at one job per request
      expect(yield* writesOf(false)).toEqual([6])
    }))

  it.live("writes the outcome of a finished batch holding a pool's job at once: its slot is free then", () =>
    Effect.gen(function*() {
      expect(yield* writesOf(true)).toEqual([1, 1, 1, 1, 1, 1])
    }))
})
