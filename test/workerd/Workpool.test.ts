/// <reference types="@cloudflare/workers-types" />
/// <reference types="@cloudflare/vitest-pool-workers" />
/**
 * Workpools end to end inside workerd: the live `Workpool` over a real
 * `SchedulerDO` (SQLite, alarms), dispatching through the `SELF_APP` service
 * binding to handlers that measure how many of a group run at once.
 */
import { env, runInDurableObject, SELF } from "cloudflare:test"
import { Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { createWorkpool } from "../../src/cloudflare/createWorkpool.js"
import { isTerminal } from "../../src/Job.js"
import * as Scheduler from "../../src/Scheduler.js"
import * as Workpool from "../../src/Workpool.js"
import { PoolWork, type SchedulerDO } from "./worker.js"

interface Gauge {
  readonly running: number
  readonly max: number
  readonly starts: ReadonlyArray<string>
  readonly ends: ReadonlyArray<string>
  readonly spans: ReadonlyArray<{ readonly attempt: string; readonly start: number; readonly end: number | null }>
}

/** The most attempts whose spans overlap; an attempt that never ended stopped at `cutoff`. */
const maxOverlap = (spans: Gauge["spans"], cutoff: number) => {
  const edges = spans.flatMap((span) => [[span.start, 1], [span.end ?? cutoff, -1]] as const)
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1])
  let running = 0
  let max = 0
  for (const [, step] of edges) max = Math.max(max, running += step)
  return max
}

const gauge = async (group: string): Promise<Gauge> => (await SELF.fetch(`https://app/gauges/${group}`)).json()

const freshPool = (maxConcurrency: number | undefined = 5, namespace: DurableObjectNamespace<SchedulerDO> = env.SCHEDULER) => {
  const instanceName = `pool-${crypto.randomUUID()}`
  const options = { namespace, binding: "SELF_APP", instanceName }
  const pool = Effect.runSync(Workpool.make({ ...options, name: "work", maxConcurrency }))
  const scheduler = Effect.runSync(Scheduler.make(options))
  const stub = namespace.get(namespace.idFromName(instanceName))
  const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)
  return { group: crypto.randomUUID(), instanceName, options, pool, run, scheduler, stub }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls, on the real clock, until `done` holds of what `read` returns. */
const until = async <A>(read: () => Promise<A>, done: (value: A) => boolean, timeoutMs = 15_000) => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await read()
    if (done(value) || Date.now() > deadline) return value
    await sleep(20)
  }
}

/** Retried at once, so a test sees the retry of an attempt lost with its lease. */
const fast = { retry: { maxAttempts: 3, backoff: "linear", baseMs: 0 } } as const

const enqueueWork = (pool: Workpool.Workpool["Type"], group: string, count: number, ms: number) =>
  Effect.runPromise(
    pool.enqueueMany(Array.from({ length: count }, () => ({ job: PoolWork, payload: { group, ms }, options: fast })))
  ).then((scheduled) => scheduled.map((s) => s.id as string))

describe("Workpool end to end", { timeout: 30_000 }, () => {
  it("runs 50 slow jobs at most 5 at a time, in order, with status right throughout, and drains", async () => {
    const { group, pool, run, scheduler } = freshPool(5)
    const ids = await enqueueWork(pool, group, 50, 120)
    let sawFull = false
    let lastQueued = 50
    for (const deadline = Date.now() + 20_000; Date.now() < deadline;) {
      const status = await run(pool.status)
      expect(status.inFlight).toBeLessThanOrEqual(5)
      expect(status.queued).toBeLessThanOrEqual(lastQueued)
      expect(status.inFlight + status.queued).toBeLessThanOrEqual(50)
      lastQueued = status.queued
      if (status.inFlight === 5) sawFull = true
      if (status.queued === 0 && status.inFlight === 0) break
      await sleep(20)
    }
    // status answered while dispatches were in flight, and saw the pool saturated
    expect(sawFull).toBe(true)
    const seen = await gauge(group)
    expect(seen.max).toBe(5)
    expect(seen.starts).toEqual(ids)
    const jobs = await Promise.all(ids.map((id) => run(scheduler.get(id))))
    expect(jobs.every((job) => job.state === "success" && job.attempt === 1)).toBe(true)
    expect(await run(pool.status)).toMatchObject({ inFlight: 0, queued: 0, deadLettered: 0, maxConcurrency: 5 })
  })

  it("loses nothing when the object restarts mid-drain, and keeps the cap through the recovery", async () => {
    const { group, pool, run, scheduler, stub } = freshPool(5)
    const ids = await enqueueWork(pool, group, 30, 150)
    await until(() => gauge(group), (g) => g.ends.length >= 8)
    await expect(runInDurableObject(stub, (_, state) => state.abort("injected restart"))).rejects.toThrow(
      "injected restart"
    )
    // the handlers of the dispatches in flight die with their requests (those still being confirmed with the
    // object never start)
    const restartedAt = Date.now()
    const jobs = await until(
      () => Promise.all(ids.map((id) => run(scheduler.get(id)))),
      (all) => all.every((job) => isTerminal(job.state)),
      20_000
    )
    expect(jobs.map((job) => job.state)).toEqual(ids.map(() => "success"))
    const seen = await gauge(group)
    expect(seen.spans.filter((span) => span.end === null).length).toBeLessThanOrEqual(5)
    expect(maxOverlap(seen.spans, restartedAt)).toBe(5)
    expect(new Set(seen.ends)).toEqual(new Set(ids))
    // the attempts cut off by the restart were retried after their leases expired
    expect(jobs.some((job) => job.attempt === 2)).toBe(true)
  })

  it("keeps the pool saturated while a long handler runs, and answers RPCs meanwhile", async () => {
    const { group, pool, run } = freshPool(3, env.LONG_LEASE_SCHEDULER)
    const [long] = await enqueueWork(pool, group, 1, 2_500)
    const short = await enqueueWork(pool, group, 8, 100)
    await until(() => gauge(group), (g) => g.starts.length >= 3)
    // enqueue, cancel and status answer while the long dispatch is in flight
    const late = await run(pool.enqueue(PoolWork, { group, ms: 100 }))
    expect(await run(pool.status)).toMatchObject({ inFlight: 3 })
    const extra = await run(pool.enqueue(PoolWork, { group, ms: 100 }))
    expect((await run(pool.cancel(extra.id)))._tag).toBe("Canceled")
    const seen = await until(() => gauge(group), (g) => g.ends.includes(long!))
    const ends = seen.ends
    for (const id of [...short, late.id]) expect(ends.indexOf(id)).toBeLessThan(ends.indexOf(long!))
    expect(seen.starts).not.toContain(extra.id)
  })

  it("pause holds new starts, resume releases them; setMaxConcurrency applies at once", async () => {
    const { group, pool, run } = freshPool(2)
    await run(pool.pause)
    const ids = await enqueueWork(pool, group, 6, 100)
    await sleep(300)
    expect((await gauge(group)).starts).toEqual([])
    expect(await run(pool.status)).toMatchObject({ paused: true, queued: 6, inFlight: 0 })
    await run(pool.setMaxConcurrency(3))
    await run(pool.resume)
    const seen = await until(() => gauge(group), (g) => g.ends.length === 6)
    expect(seen.starts).toEqual(ids)
    expect(seen.max).toBe(3)
  })

  it("refuses bad input with typed errors and stores nothing", async () => {
    const { group, options, pool, run, scheduler } = freshPool(2)
    const attached = Effect.runSync(Workpool.make({ ...options, name: "never-declared" }))
    const unknown = await Effect.runPromise(Effect.exit(attached.enqueue(PoolWork, { group, ms: 1 })))
    expect(unknown).toEqual(Exit.fail(expect.objectContaining({ _tag: "PoolNotFound", pool: "never-declared" })))
    for (const maxConcurrency of [0, -1, 1.5]) {
      const made = Effect.runSyncExit(Workpool.make({ ...options, name: "work", maxConcurrency }))
      expect(made).toEqual(Exit.fail(expect.objectContaining({ _tag: "InvalidOptions" })))
    }
    const invalid = await Effect.runPromise(Effect.exit(pool.enqueue(PoolWork, { group, ms: "soon" } as never)))
    expect(invalid).toEqual(Exit.fail(expect.objectContaining({ _tag: "InvalidPayload" })))
    expect(await run(pool.status)).toMatchObject({ queued: 0, inFlight: 0 })
    expect((await run(scheduler.list())).jobs).toEqual([])
  })

  it("createWorkpool: the Promise facade over the same service", async () => {
    const instanceName = `pool-${crypto.randomUUID()}`
    const group = crypto.randomUUID()
    const pool = createWorkpool({ namespace: env.SCHEDULER, binding: "SELF_APP", instanceName, name: "mail", maxConcurrency: 1 })
    const { id } = await pool.enqueue(PoolWork, { group, ms: 10 })
    await until(() => pool.get(id), (job) => job.state === "success")
    expect((await pool.status()).maxConcurrency).toBe(1)
    await expect(pool.setMaxConcurrency(0)).rejects.toMatchObject({ _tag: "InvalidOptions" })
    const attached = createWorkpool({ namespace: env.SCHEDULER, binding: "SELF_APP", instanceName, name: "other" })
    await expect(attached.status()).rejects.toMatchObject({ _tag: "PoolNotFound" })
    expect(() => createWorkpool({ namespace: env.SCHEDULER, binding: "SELF_APP", name: "bad name" })).toThrow()
  })
})
