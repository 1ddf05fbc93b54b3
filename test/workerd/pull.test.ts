/**
 * Pull pools through the real `SchedulerDO` (real SQLite and alarms): the
 * alarm never dispatches their jobs; workers lease them within the pool's
 * cap, heartbeat, and complete or fail them with their lease token; a lease
 * that runs out is a failed attempt (the job is retried and leased again),
 * and the late worker's token is refused. `PullWorker.run` drains a pool.
 */
import { env } from "cloudflare:test"
import { Effect, Exit, Fiber, Option, Schema } from "effect"
import { describe, expect, it } from "vitest"
import * as Job from "../../src/Job.js"
import * as PullWorker from "../../src/PullWorker.js"
import * as Workpool from "../../src/Workpool.js"
import { fresh, runs, settled, sleep } from "./support.js"

const Render = Job.make("render:frame", { payload: Schema.Struct({ frame: Schema.Int }) })
const fast = { retry: { maxAttempts: 3, backoff: "linear", baseMs: 0 } } as const

const setUp = async (maxConcurrency = 2) => {
  const { instanceName, run, scheduler } = fresh()
  const options = { namespace: env.SCHEDULER, binding: "SELF_APP", instanceName }
  const pool = Effect.runSync(Workpool.make({ ...options, name: "renders", maxConcurrency, pull: true }))
  const worker = Effect.runSync(PullWorker.make({ ...options, pool: "renders" }))
  const enqueue = (frame: number) => Effect.runPromise(Effect.map(pool.enqueue(Render, { frame }, fast), (r) => r.id))
  return { pool, run, scheduler, worker, enqueue, exec: <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect) }
}

describe("pull pools", { timeout: 20_000 }, () => {
  it("are never dispatched by the alarm; a worker leases within the cap, and a completion frees a slot", async () => {
    const { enqueue, exec, pool, scheduler, worker } = await setUp(2)
    const ids = [await enqueue(1), await enqueue(2), await enqueue(3)]
    await sleep(300)
    expect((await runs())[ids[0]!]).toBeUndefined()
    expect(await exec(pool.status)).toMatchObject({ queued: 3, inFlight: 0 })

    const first = await exec(worker.lease(10, "30 seconds"))
    expect(first.map((job) => [job.id, job.payload, job.attempt])).toEqual([[ids[0], { frame: 1 }, 1], [ids[1], { frame: 2 }, 1]])
    expect(await exec(worker.lease(10, "30 seconds"))).toEqual([])
    expect(await exec(pool.status)).toMatchObject({ queued: 1, inFlight: 2 })

    const until = await exec(worker.heartbeat(first[0]!, "1 minute"))
    expect(until.epochMillis).toBeGreaterThan(first[0]!.leaseUntil.epochMillis)
    await exec(worker.complete(first[0]!, { pixels: 42 }))
    const done = await settled(scheduler, ids[0]!)
    expect(done).toMatchObject({ state: "success", result: Option.some({ pixels: 42 }) })

    const next = await exec(worker.lease(10, "30 seconds"))
    expect(next.map((job) => job.id)).toEqual([ids[2]])
    await exec(worker.fail(next[0]!, new Error("GPU on fire"), { retry: false }))
    expect(await settled(scheduler, ids[2]!)).toMatchObject({ state: "deadLettered", lastError: Option.some("Error: GPU on fire") })
  })

  it("a lease that runs out is a failed attempt: the job is leased again, and the late worker's token is refused", async () => {
    const { enqueue, exec, scheduler, worker } = await setUp(1)
    const id = await enqueue(7)
    const [held] = await exec(worker.lease(1, "1 second"))
    expect(held!.attempt).toBe(1)
    // the worker dies: no heartbeat; the object's alarm ends the lease, and the job is due again at once
    let again: ReadonlyArray<PullWorker.PulledJob> = []
    for (let tries = 0; again.length === 0 && tries < 60; tries++) {
      await sleep(100)
      again = await exec(worker.lease(1, "30 seconds"))
    }
    expect(again.map((job) => [job.id, job.attempt])).toEqual([[id, 2]])
    expect(Option.getOrThrow((await exec(scheduler.get(id))).lastError)).toMatch(/lease expired/)

    for (const late of [worker.complete(held!, "late"), worker.heartbeat(held!), worker.fail(held!, "late")]) {
      const exit = await Effect.runPromiseExit(late)
      expect(Exit.isFailure(exit) && Exit.causeOption(exit).pipe(Option.map(String), Option.getOrElse(() => ""))).toMatch(/LeaseLost/)
    }
    await exec(worker.complete(again[0]!, "on time"))
    expect(await settled(scheduler, id)).toMatchObject({ state: "success", attempt: 2, result: Option.some("on time") })
  })

  it("PullWorker.run heartbeats a job that outlasts its lease: it succeeds on its first attempt", async () => {
    const { enqueue, scheduler, worker } = await setUp(1)
    const id = await enqueue(9)
    const fiber = Effect.runFork(PullWorker.run(worker, {
      "render:frame": () => Effect.as(Effect.sleep("2500 millis"), "slow but alive")
    }, { concurrency: 1, lease: "1 second", idle: "50 millis" }))
    const job = await settled(scheduler, id, 15_000)
    await Effect.runPromise(Fiber.interrupt(fiber))
    expect(job).toMatchObject({ state: "success", attempt: 1, result: Option.some("slow but alive") })
  })

  it("PullWorker.run drains the pool within its concurrency, and a pool that is not a pull pool is refused", async () => {
    const { enqueue, exec, scheduler, worker } = await setUp(3)
    const ids = await Promise.all([1, 2, 3, 4, 5].map(enqueue))
    let active = 0
    let most = 0
    const fiber = Effect.runFork(PullWorker.run(worker, {
      "render:frame": (payload) =>
        Effect.gen(function*() {
          most = Math.max(most, ++active)
          yield* Effect.sleep("50 millis")
          active--
          return { rendered: (payload as { frame: number }).frame }
        })
    }, { concurrency: 2, lease: "10 seconds", idle: "50 millis" }))
    const jobs = await Promise.all(ids.map((id) => settled(scheduler, id)))
    await Effect.runPromise(Fiber.interrupt(fiber))
    expect(jobs.map((job) => [job.state, job.result])).toEqual(
      [1, 2, 3, 4, 5].map((frame) => ["success", Option.some({ rendered: frame })])
    )
    expect(most).toBe(2)

    const { instanceName } = fresh()
    const options = { namespace: env.SCHEDULER, binding: "SELF_APP", instanceName }
    const pushed = Effect.runSync(Workpool.make({ ...options, name: "pushed", maxConcurrency: 1 }))
    await exec(pushed.status)
    const refused = await Effect.runPromise(Effect.flip(Effect.runSync(PullWorker.make({ ...options, pool: "pushed" })).lease(1)))
    expect(refused.message).toMatch(/not a pull pool/)
  })
})
