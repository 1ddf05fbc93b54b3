/// <reference types="@cloudflare/workers-types" />
/// <reference types="@cloudflare/vitest-pool-workers" />
/**
 * A scheduler spread over several real `SchedulerDO`s (SQLite, alarms):
 * where each job, pool and cron lives, what each call reaches, and changing
 * the shard count. Each shard is its own instance (`<instanceName>#<k>`),
 * read here through its own stub.
 */
import { env, SELF } from "cloudflare:test"
import { Effect, Option } from "effect"
import { describe, expect, it } from "vitest"
import { createScheduler } from "../../src/cloudflare/createScheduler.js"
import * as CronRegistry from "../../src/CronRegistry.js"
import * as CronSpec from "../../src/CronSpec.js"
import { shardFor, shardInstance, shardOfId } from "../../src/internal/domain/shards.js"
import type * as Job from "../../src/Job.js"
import * as Scheduler from "../../src/Scheduler.js"
import * as Workpool from "../../src/Workpool.js"
import { settled } from "./support.js"
import { Echo, PoolWork } from "./worker.js"

const namespace = env.SCHEDULER
const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)

/** A scheduler over `shards` shards of a fresh instance, and the stub of each shard. */
const sharded = (shards: number, instanceName = `shards-${crypto.randomUUID()}`) => {
  const options = { namespace, binding: "SELF_APP", instanceName, shards }
  const scheduler = Effect.runSync(Scheduler.make(options))
  const stub = (shard: number) => namespace.get(namespace.idFromName(shardInstance(instanceName, shard)))
  return { instanceName, options, scheduler, stub }
}

/** Every job of a list, page by page. */
const listAll = async (scheduler: Scheduler.Scheduler["Type"], query: Scheduler.ListQuery) => {
  const all: Array<Job.JobInfo> = []
  let page = await run(scheduler.list(query))
  for (;;) {
    all.push(...page.jobs)
    if (Option.isNone(page.cursor)) return all
    page = await run(scheduler.list({ cursor: page.cursor.value, limit: query.limit }))
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe("a scheduler over several SchedulerDOs", () => {
  it("stores each job on the shard its id names, alone; each runs there once", async () => {
    const { scheduler, stub } = sharded(4)
    const ids: Array<string> = []
    for (let n = 0; n < 16; n++) ids.push(await run(scheduler.runAfter(0, Echo, { text: `job ${n}` })))
    expect(new Set(ids.map(shardOfId)).size).toBeGreaterThan(1)
    for (const id of ids) {
      const home = shardOfId(id)!
      for (let shard = 0; shard < 4; shard++) {
        expect((await stub(shard).get(id))?.id).toBe(shard === home ? id : undefined)
      }
    }
    for (const id of ids) expect((await settled(scheduler, id)).state).toBe("success")
    const runs: Record<string, number> = await (await SELF.fetch("https://app/runs")).json()
    for (const id of ids) expect(runs[id]).toBe(1)
  })

  it("lists over every shard in the order jobs were scheduled, with one cursor; purge fans out", async () => {
    const { scheduler } = sharded(3)
    const ids: Array<string> = []
    for (let n = 0; n < 14; n++) {
      ids.push(await run(scheduler.runAfter("1 hour", Echo, { text: `later ${n}` })))
      await sleep(2)
    }
    expect((await listAll(scheduler, { limit: 4 })).map((job) => job.id)).toEqual(ids)
    expect((await listAll(scheduler, { state: "pending", limit: 100 })).map((job) => job.id)).toEqual(ids)
    for (const id of ids) await run(scheduler.cancel(id))
    expect((await listAll(scheduler, { state: "canceled", limit: 5 })).map((job) => job.id)).toEqual(ids)
    expect(await run(scheduler.purge())).toBe(0)
  })

  it("puts a key on one shard, where it dedupes; one shardKey's jobs share a shard and run with it", async () => {
    const { scheduler, stub } = sharded(4)
    const first = await run(scheduler.runAfter("1 hour", Echo, { text: "a" }, { key: "order:1" }))
    const again = await run(scheduler.submit([{ job: Echo, payload: { text: "b" }, options: { key: "order:1" } }]))
    expect(again[0]).toMatchObject({ _tag: "Existing", id: first })
    expect(shardOfId(first)).toBe(shardFor("order:1", 4))
    const tenant: Array<string> = []
    for (let n = 0; n < 6; n++) tenant.push(await run(scheduler.runAfter(0, Echo, { text: `t${n}` }, { shardKey: "tenant-7" })))
    expect(new Set(tenant.map(shardOfId))).toEqual(new Set([shardFor("tenant-7", 4)]))
    for (const id of tenant) {
      const job = await settled(scheduler, id)
      expect(job.state).toBe("success")
      expect(job.shardKey).toEqual(Option.some("tenant-7"))
    }
    expect((await stub(shardFor("tenant-7", 4)).census())).toMatchObject({ live: shardFor("order:1", 4) === shardFor("tenant-7", 4) ? 1 : 0 })
  })

  it("keeps a workpool on one shard, so its cap holds for the whole pool", async () => {
    const { options, scheduler, stub } = sharded(4)
    const group = crypto.randomUUID()
    const pool = Effect.runSync(Workpool.make({ ...options, name: "reports", maxConcurrency: 2 }))
    const ids: Array<string> = []
    for (let n = 0; n < 8; n++) ids.push((await run(pool.enqueue(PoolWork, { group, ms: 150 }))).id)
    const home = shardFor("reports", 4)
    expect(new Set(ids.map(shardOfId))).toEqual(new Set([home]))
    expect(await stub(home).poolStatus("reports")).toMatchObject({ name: "reports", maxConcurrency: 2 })
    for (const id of ids) expect((await settled(scheduler, id, 15_000)).state).toBe("success")
    const gauge: { max: number; starts: ReadonlyArray<string> } = await (await SELF.fetch(`https://app/gauges/${group}`)).json()
    expect(gauge.starts).toHaveLength(8)
    expect(gauge.max).toBeLessThanOrEqual(2)
  })

  it("keeps each cron on one shard, and moves crons off the shards a smaller count drops", async () => {
    const { options, stub } = sharded(4)
    const crons = CronSpec.cronJobs()
      .interval("a", { minutes: 5 }, Echo, { text: "a" })
      .interval("b", { minutes: 5 }, Echo, { text: "b" })
      .interval("c", { minutes: 5 }, Echo, { text: "c" })
      .interval("d", { minutes: 5 }, Echo, { text: "d" })
      .interval("e", { minutes: 5 }, Echo, { text: "e" })
    const four = await run(Effect.provide(CronRegistry.CronRegistry, CronRegistry.layer({ ...options, crons })))
    expect((await run(four.list)).map((cron) => cron.name)).toEqual(["a", "b", "c", "d", "e"])
    for (let shard = 0; shard < 4; shard++) {
      const names = (await stub(shard).listCrons()).map((cron) => cron.name)
      expect(names).toEqual(["a", "b", "c", "d", "e"].filter((name) => shardFor(name, 4) === shard))
    }
    const fired = await run(four.trigger("c"))
    expect(shardOfId(fired)).toBe(shardFor("c", 4))
    const scheduler = Effect.runSync(Scheduler.make(options))
    expect((await settled(scheduler, fired)).state).toBe("success")
    // two shards: the crons move to shards 0 and 1, so nothing is left on 2 and 3 and the count shrinks
    const two = await run(
      Effect.provide(CronRegistry.CronRegistry, CronRegistry.layer({ ...options, shards: 2, crons }))
    )
    expect((await run(two.list)).map((cron) => cron.name)).toEqual(["a", "b", "c", "d", "e"])
    for (let shard = 0; shard < 4; shard++) {
      const names = (await stub(shard).listCrons()).map((cron) => cron.name)
      expect(names).toEqual(["a", "b", "c", "d", "e"].filter((name) => shard < 2 && shardFor(name, 2) === shard))
    }
    expect(await stub(0).shards(2, false)).toEqual({ recorded: 2, highest: 4 })
  })

  it("grows its shard count with ids still routing, and shrinks only once the dropped shards are empty", async () => {
    const { instanceName, stub } = sharded(2)
    const two = sharded(2, instanceName).scheduler
    const early: Array<string> = []
    for (let n = 0; n < 6; n++) early.push(await run(two.runAfter("1 hour", Echo, { text: `early ${n}` })))
    const four = sharded(4, instanceName).scheduler
    const later: Array<string> = []
    for (let n = 0; n < 16; n++) later.push(await run(four.runAfter("1 hour", Echo, { text: `later ${n}` })))
    expect(await stub(0).shards(4, false)).toEqual({ recorded: 4, highest: 4 })
    for (const id of [...early, ...later]) expect((await run(four.get(id))).id).toBe(id)
    expect((await listAll(four, { limit: 5 })).map((job) => job.id)).toEqual([...early, ...later])
    // back to two while shards 2 and 3 hold pending jobs: refused, nothing stored
    const refused = await run(Effect.flip(sharded(2, instanceName).scheduler.runAfter(0, Echo, { text: "no" })))
    expect(refused).toMatchObject({ _tag: "InvalidOptions" })
    expect(refused.message).toContain(`shards: 2 would drop shards 2 to 3 of instance "${instanceName}"`)
    expect((await listAll(four, { limit: 100 })).map((job) => job.id)).toEqual([...early, ...later])
    // the dropped shards' jobs stay reachable by id from a smaller count; once none is live, it may shrink
    const dropped = later.filter((id) => shardOfId(id)! >= 2)
    expect(dropped.length).toBeGreaterThan(0)
    const shrinking = sharded(2, instanceName).scheduler
    for (const id of dropped) expect(await run(shrinking.cancel(id))).toMatchObject({ _tag: "Canceled" })
    const accepted = await run(shrinking.runAfter(0, Echo, { text: "after the shrink" }))
    expect(shardOfId(accepted)).toBeLessThan(2)
    expect(await stub(0).shards(2, false)).toEqual({ recorded: 2, highest: 4 })
    expect((await run(shrinking.get(dropped[0]!))).state).toBe("canceled")
    // a fresh backend of the smaller count still finds the dropped shard's jobs by id
    expect((await run(sharded(2, instanceName).scheduler.get(dropped[0]!))).state).toBe("canceled")
  })

  it("records the shard count on shard 0: growth at once, a shrink only when told, and the most ever", async () => {
    const { stub } = sharded(1)
    expect(await stub(0).shards(3, false)).toEqual({ recorded: null, highest: 3 })
    expect(await stub(0).shards(2, false)).toEqual({ recorded: 3, highest: 3 })
    expect(await stub(0).shards(2, true)).toEqual({ recorded: 3, highest: 3 })
    expect(await stub(0).shards(5, false)).toEqual({ recorded: 2, highest: 5 })
    expect(await stub(0).shards(1, false)).toEqual({ recorded: 5, highest: 5 })
    expect(await stub(0).census()).toEqual({ live: 0, crons: 0 })
  })

  it("looks a made-up id up on shard 0 unless a count that large was ever recorded: no object is made for it", async () => {
    const instanceName = `shards-${crypto.randomUUID()}`
    const asked: Array<string> = []
    const watched = {
      idFromName: (name: string) => {
        asked.push(name)
        return namespace.idFromName(name)
      },
      get: (id: DurableObjectId) => namespace.get(id)
    }
    const scheduler = Effect.runSync(Scheduler.make({ namespace: watched, binding: "SELF_APP", instanceName }))
    await run(scheduler.runAfter("1 hour", Echo, { text: "one shard" }))
    const forged = "job_7_0mx66vzfzmmgufzvvhz2xqfl8s1"
    expect(await run(Effect.flip(scheduler.get(forged)))).toMatchObject({ _tag: "JobNotFound" })
    expect(await run(Effect.flip(scheduler.cancel(forged)))).toMatchObject({ _tag: "JobNotFound" })
    expect(await run(scheduler.purge({ ids: [forged] }))).toBe(0)
    expect(new Set(asked)).toEqual(new Set([instanceName]))
    // once 8 shards were recorded, the same id goes to shard 7
    await run(Effect.runSync(Scheduler.make({ namespace, binding: "SELF_APP", instanceName, shards: 8 })).runAfter(0, Echo, { text: "eight" }))
    const later = Effect.runSync(Scheduler.make({ namespace: watched, binding: "SELF_APP", instanceName }))
    expect(await run(Effect.flip(later.get(forged)))).toMatchObject({ _tag: "JobNotFound" })
    expect(asked).toContain(shardInstance(instanceName, 7))
  })

  it("refuses a shard count out of range when the scheduler is made", () => {
    for (const shards of [0, 1.5, 1025]) {
      const exit = Effect.runSyncExit(Scheduler.make({ namespace, binding: "SELF_APP", shards }))
      expect(String(exit)).toContain("shards must be an integer from 1 to 1024")
    }
  })

  it("works through the Promise facade with the same option", async () => {
    const instanceName = `facade-${crypto.randomUUID()}`
    const scheduler = createScheduler({ namespace, binding: "SELF_APP", instanceName, shards: 4 })
    const ids: Array<string> = []
    for (let n = 0; n < 8; n++) ids.push((await scheduler.runAfter(0, Echo, { text: `facade ${n}` })).id)
    expect(new Set(ids.map(shardOfId)).size).toBeGreaterThan(1)
    const effectSide = Effect.runSync(Scheduler.make({ namespace, binding: "SELF_APP", instanceName, shards: 4 }))
    for (const id of ids) expect((await settled(effectSide, id)).state).toBe("success")
    const page = await scheduler.list({ state: "success" })
    expect(page.jobs.map((job) => job.id).sort()).toEqual([...ids].sort())
  })
})
