/// <reference types="@cloudflare/workers-types" />
/// <reference types="@cloudflare/vitest-pool-workers" />
/**
 * Batched dispatch end to end (real SQLite, real alarms, real requests): one
 * signed request carries up to `LUNORA_SCHEDULER_DISPATCH_BATCH` due jobs,
 * each job's outcome is its own, a lease still bounds each job, a crash
 * mid-batch loses nothing, and an endpoint that does not take batches gets
 * one request per job.
 */
import { env, runInDurableObject, SELF } from "cloudflare:test"
import { Effect, Option } from "effect"
import { describe, expect, it } from "vitest"
import * as Scheduler from "../../src/Scheduler.js"
import { fast, fresh, runs, settled, sleep } from "./support.js"
import { Echo, Flaky, Slow } from "./worker.js"

type Stub = ReturnType<typeof fresh>["stub"]

/** The dispatch requests the object behind `stub` sent to the test Worker. */
const requestsOf = async (stub: Stub): Promise<{ single: number; batch: number; batchSizes: Array<number> }> =>
  (await SELF.fetch(`https://app/requests/${stub.id.toString()}`)).json()

/** Requests per path at the Node origin. */
const hits = async (): Promise<Record<string, number>> => (await fetch(`${env.ORIGIN_URL}/hits`)).json()
const originRuns = async (): Promise<Record<string, number>> => (await fetch(`${env.ORIGIN_URL}/runs`)).json()

describe("batched dispatch", { timeout: 30_000 }, () => {
  it("sends due jobs together and records each job's own outcome: success, retry, rejection, unknown function", async () => {
    const { run, scheduler, stub } = fresh()
    const [ok, flaky, mistyped, unknown] = await run((s) =>
      s.submit([
        { job: Echo, payload: { text: "one of four" } },
        { job: Flaky, payload: { succeedOn: 2 }, options: fast },
        { job: "test:echo", payload: { text: 42 } },
        { job: "nobody:home", payload: {} }
      ])
    )
    const [a, b, c, d] = await Promise.all([ok!, flaky!, mistyped!, unknown!].map((job) => settled(scheduler, job.id)))
    expect([a!.state, a!.attempt]).toEqual(["success", 1])
    expect(a!.result).toEqual(Option.some({ echoed: "one of four", shardKey: null }))
    expect([b!.state, b!.attempt]).toEqual(["success", 2])
    expect([c!.state, c!.attempt]).toEqual(["deadLettered", 1])
    expect(Option.getOrThrow(c!.lastError)).toMatch(/does not match the Schema of test:echo/)
    expect([d!.state, d!.attempt]).toEqual(["deadLettered", 1])
    expect(Option.getOrThrow(d!.lastError)).toBe("no handler is registered for nobody:home")
    // the four first attempts went out in one request; the retry, alone, in a request of its own
    const requests = await requestsOf(stub)
    expect(requests.batchSizes).toEqual([4])
    expect(requests.single).toBe(1)
  })

  it("a job of a batch that outlives its lease fails alone: the others' outcomes came as they ended", async () => {
    const { run, scheduler } = fresh()
    // the default test lease is 1 s
    const [slow, quick] = await run((s) =>
      s.submit([
        { job: Slow, payload: { ms: 3_000 }, options: { retry: { maxAttempts: 1 } } },
        { job: Echo, payload: { text: "quick" } }
      ])
    )
    const quickJob = await settled(scheduler, quick!.id)
    expect(quickJob.state).toBe("success")
    const slowJob = await settled(scheduler, slow!.id)
    expect(slowJob.state).toBe("deadLettered")
    expect(Option.getOrThrow(slowJob.lastError)).toContain("no response within the lease")
    expect(Option.getOrThrow(slowJob.startedAt).epochMillis).toBe(Option.getOrThrow(quickJob.startedAt).epochMillis)
    // the quick job's outcome was recorded while the slow one still ran, not when the request ended
    expect(Option.getOrThrow(slowJob.completedAt).epochMillis - Option.getOrThrow(quickJob.completedAt).epochMillis)
      .toBeGreaterThanOrEqual(700)
  })

  it("a crash mid-batch loses nothing: each job runs again after its lease, once more at most", async () => {
    const { instanceName, run, scheduler, stub } = fresh()
    const jobs = await run((s) =>
      s.submit(Array.from({ length: 8 }, () => ({ job: Slow, payload: { ms: 400 }, options: fast })))
    )
    await sleep(150)
    const before = await runs()
    expect(jobs.every((job) => before[job.id] === 1)).toBe(true)
    await expect(runInDurableObject(stub, (_, state) => state.abort("injected crash"))).rejects.toThrow("injected crash")
    // the first call after the restart re-arms; the leases (1 s) expire and the jobs are retried
    const again = Effect.runSync(
      Scheduler.make({ namespace: env.SCHEDULER, binding: "SELF_APP", instanceName })
    )
    const done = await Promise.all(jobs.map((job) => settled(again, job.id, 15_000)))
    expect(done.map((job) => job.state)).toEqual(Array(8).fill("success"))
    expect(done.map((job) => job.attempt)).toEqual(Array(8).fill(2))
    const after = await runs()
    expect(jobs.map((job) => after[job.id])).toEqual(Array(8).fill(2))
    void scheduler
  })

  it("an answer cut after its first line: that job succeeds, the others are failed attempts, retried; none is lost", async () => {
    const { run, scheduler } = fresh(env.SCHEDULER, { originUrl: `${env.ORIGIN_URL}/cut` })
    const jobs = await run((s) =>
      s.submit(Array.from({ length: 4 }, (_, i) => ({
        job: "origin:shout",
        payload: { text: `cut ${i}` },
        options: { retry: { maxAttempts: 6, backoff: "linear", baseMs: 0 } }
      })))
    )
    const done = await Promise.all(jobs.map((job) => settled(scheduler, job.id, 15_000)))
    expect(done.map((job) => job.state)).toEqual(Array(4).fill("success"))
    // one outcome per batch gets through: a job's attempt is how many batches it took
    expect(done.map((job) => job.attempt).sort()).toEqual([1, 2, 3, 4])
    const ran = await originRuns()
    for (const job of done) expect(ran[job.id]).toBe(job.attempt)
  })

  it("an endpoint that does not serve the batch path (404) gets one request per job, and is not asked again", async () => {
    const originUrl = `${env.ORIGIN_URL}/legacy`
    const { run, scheduler } = fresh(env.SCHEDULER, { originUrl })
    const batchHits = () => hits().then((h) => h["POST /legacy/_lunora/scheduler/dispatch/batch"] ?? 0)
    const singleHits = () => hits().then((h) => h["POST /legacy/_lunora/scheduler/dispatch"] ?? 0)
    const [batchBefore, singleBefore] = [await batchHits(), await singleHits()]
    const first = await run((s) =>
      s.submit(Array.from({ length: 5 }, (_, i) => ({ job: "origin:shout", payload: { text: `old ${i}` } })))
    )
    const done = await Promise.all(first.map((job) => settled(scheduler, job.id)))
    expect(done.map((job) => [job.state, job.attempt])).toEqual(Array(5).fill(["success", 1]))
    expect(await batchHits()).toBe(batchBefore + 1)
    expect(await singleHits()).toBe(singleBefore + 5)
    const second = await run((s) =>
      s.submit(Array.from({ length: 5 }, (_, i) => ({ job: "origin:shout", payload: { text: `again ${i}` } })))
    )
    await Promise.all(second.map((job) => settled(scheduler, job.id)))
    expect(await batchHits()).toBe(batchBefore + 1)
    expect(await singleHits()).toBe(singleBefore + 10)
  })

  it("one request per job when LUNORA_SCHEDULER_DISPATCH_BATCH is 1", async () => {
    const { run, scheduler, stub } = fresh(env.SINGLE_SCHEDULER)
    const jobs = await run((s) => s.submit(Array.from({ length: 5 }, (_, i) => ({ job: Echo, payload: { text: `${i}` } }))))
    await Promise.all(jobs.map((job) => settled(scheduler, job.id)))
    expect(await requestsOf(stub)).toEqual({ single: 5, batch: 0, batchSizes: [] })
  })
})
