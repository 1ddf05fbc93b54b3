/// <reference types="@cloudflare/workers-types" />
/// <reference types="@cloudflare/vitest-pool-workers" />
/**
 * End to end inside workerd: the live `Scheduler` over a real `SchedulerDO`
 * (SQLite storage, alarms), dispatching through the `SELF_APP` service
 * binding to the test worker's dispatch endpoint, which runs the handlers.
 * Each test uses its own instance: alarms are not reset between tests.
 */
import {
  createScheduledController,
  env,
  runDurableObjectAlarm,
  runInDurableObject,
  SELF
} from "cloudflare:test"
import { Config, ConfigProvider, Effect, Either, Option, Redacted, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { createCronTrigger, serveCronTriggers } from "../../src/cloudflare/createCronTrigger.js"
import { createScheduler } from "../../src/cloudflare/createScheduler.js"
import { createWorkpool } from "../../src/cloudflare/createWorkpool.js"
import * as SqliteStore from "../../src/cloudflare/internal/sqliteStore.js"
import * as Engine from "../../src/internal/engine/engine.js"
import { DISPATCH_PATH, sign, SIGNATURE_HEADER } from "../../src/internal/runtime/wire.js"
import * as CronRegistry from "../../src/CronRegistry.js"
import * as CronSpec from "../../src/CronSpec.js"
import type * as Job from "../../src/Job.js"
import * as Scheduler from "../../src/Scheduler.js"
import * as Workflow from "../../src/Workflow.js"
import { fast, fresh, runs, settled } from "./support.js"
import worker, { Echo, Flaky, functionTriggers, Slow, triggerCrons } from "./worker.js"

describe("SchedulerDO end to end", () => {
  it("schedules, wakes on its alarm, dispatches, and records success with the handler's result", async () => {
    const { run, scheduler } = fresh()
    const id = await run((s) => s.runAfter(0, Echo, { text: "hello" }, { shardKey: "tenant-7" }))
    const job = await settled(scheduler, id)
    expect(job.state).toBe("success")
    expect(job.attempt).toBe(1)
    expect(job.result).toEqual(Option.some({ echoed: "hello", shardKey: "tenant-7" }))
    expect((await runs())[id]).toBe(1)
  })

  it("does not fire a job before its time", async () => {
    const { run, stub } = fresh()
    const id = await run((s) => s.runAfter("1 hour", Echo, { text: "later" }))
    await runDurableObjectAlarm(stub)
    expect((await run((s) => s.get(id))).state).toBe("pending")
    expect((await runs())[id]).toBeUndefined()
  })

  it("retries a handler that fails twice, then records success on the third attempt", async () => {
    const { run, scheduler } = fresh(env.LONG_LEASE_SCHEDULER) // its last error is the handler's, not a lease run out on a busy machine
    const id = await run((s) => s.runAfter(0, Flaky, { succeedOn: 3 }, fast))
    const job = await settled(scheduler, id)
    expect(job.state).toBe("success")
    expect(job.attempt).toBe(3)
    expect(job.lastError).toEqual(Option.some("Error: attempt 2 failed"))
    expect((await runs())[id]).toBe(3)
  })

  it("dead-letters on exhaustion with the last error, and replay runs it again", async () => {
    const { run, scheduler } = fresh(env.LONG_LEASE_SCHEDULER) // its last error is the handler's, not a lease run out on a busy machine
    const id = await run((s) => s.runAfter(0, Flaky, { succeedOn: 4 }, fast))
    const dead = await settled(scheduler, id)
    expect(dead.state).toBe("deadLettered")
    expect(dead.attempt).toBe(3)
    expect(dead.lastError).toEqual(Option.some("Error: attempt 3 failed"))
    const awaited = await run((s) => Effect.either(s.await(id)))
    expect(Either.isLeft(awaited) && awaited.left._tag).toBe("JobDeadLettered")

    expect((await run((s) => s.list({ state: "deadLettered" }))).jobs.map((j) => j.id)).toEqual([id])
    await run((s) => s.replay(id))
    const again = await settled(scheduler, id)
    expect(again.state).toBe("deadLettered")
    expect((await runs())[id]).toBe(6)
    expect(await run((s) => s.purge({ ids: [id] }))).toBe(1)
    expect(Either.isLeft(await run((s) => Effect.either(s.get(id))))).toBe(true)
  })

  it("never runs a job cancelled before its alarm", async () => {
    const { run, scheduler, stub } = fresh()
    const id = await run((s) => s.runAfter(0, Echo, { text: "never" }))
    expect(await run((s) => s.cancel(id))).toEqual({ _tag: "Canceled", id, children: 0 })
    await runDurableObjectAlarm(stub)
    expect((await settled(scheduler, id)).state).toBe("canceled")
    expect((await runs())[id]).toBeUndefined()
    expect(await run((s) => s.cancel(id))).toEqual({ _tag: "AlreadyFinished", id, state: "canceled" })
  })

  it("dead-letters an unknown function at once, with the reason, without retrying", async () => {
    const { run, scheduler } = fresh()
    const id = await run((s) => s.runAfter(0, "test:nobody", { any: 1 }, fast))
    const job = await settled(scheduler, id)
    expect(job.state).toBe("deadLettered")
    expect(job.attempt).toBe(1)
    expect(Option.getOrThrow(job.lastError)).toContain("no handler is registered for test:nobody")
  })

  it("dead-letters a payload that fails its Schema on the app side at once", async () => {
    const { run, scheduler } = fresh()
    // a bare path skips the typed check at the call; the app's Schema still refuses it
    const id = await run((s) => s.runAfter(0, "test:echo", { text: 42 }, fast))
    const job = await settled(scheduler, id)
    expect(job.state).toBe("deadLettered")
    expect(job.attempt).toBe(1)
    expect(Option.getOrThrow(job.lastError)).toContain("payload does not match the Schema of test:echo")
    expect((await runs())[id]).toBeUndefined()
  })

  it("answers a bad or missing signature with 401 and runs nothing", async () => {
    const body = JSON.stringify({ id: "job_0_forged000", functionPath: "test:echo", args: { text: "x" }, shardKey: null, scheduledFor: 0, attempt: 1 })
    const forged = await Effect.runPromise(sign(Redacted.make("not-the-secret"), Date.now(), body))
    for (const headers of [{}, { [SIGNATURE_HEADER]: forged }, { [SIGNATURE_HEADER]: "t=1,v1=00" }]) {
      const response = await SELF.fetch(`https://app${DISPATCH_PATH}`, { method: "POST", body, headers })
      expect(response.status).toBe(401)
    }
    expect((await runs())["job_0_forged000"]).toBeUndefined()
  })

  it("a Durable Object signing with the wrong secret gets 401s: retried, then dead-lettered, never run", async () => {
    const { run, scheduler } = fresh(env.WRONG_SECRET_SCHEDULER)
    const id = await run((s) => s.runAfter(0, Echo, { text: "forged" }, fast))
    const job = await settled(scheduler, id)
    expect(job.state).toBe("deadLettered")
    expect(job.attempt).toBe(3)
    expect(Option.getOrThrow(job.lastError)).toContain("bad or stale signature")
    expect((await runs())[id]).toBeUndefined()
  })

  it("loses nothing when the object dies after leasing: the expired lease is a failed attempt, then it runs", async () => {
    const { run, scheduler, stub } = fresh()
    const id = await run((s) => s.runAfter("1 second", Echo, { text: "survivor" }, fast))
    // what an alarm does before it dispatches (here a second early), then the object dies
    const leased = await runInDurableObject(stub, (_, state) =>
      Engine.poll(SqliteStore.make(state.storage), { leaseMs: 1_000, retentionMs: 60_000 }, Date.now() + 1_000, 10)
        .claimed.map((j) => j.id))
    expect(leased).toEqual([id])
    await expect(runInDurableObject(stub, (_, state) => state.abort("injected crash"))).rejects.toThrow("injected crash")
    expect((await run((s) => s.get(id))).state).toBe("inProgress")
    expect((await runs())[id]).toBeUndefined()

    // the restarted object's alarm finds the lease expired: a failed attempt, retried at once
    const job = await settled(scheduler, id)
    expect(job.state).toBe("success")
    expect(job.attempt).toBe(2)
    expect(Option.getOrThrow(job.lastError)).toContain("lease expired")
    expect((await runs())[id]).toBe(1)
  })

  it("a dispatch that outlives the lease is a failed attempt and follows the policy", async () => {
    const { run, scheduler } = fresh()
    const id = await run((s) => s.runAfter(0, Slow, { ms: 3_000 }, { retry: { maxAttempts: 1 } }))
    const job = await settled(scheduler, id)
    expect(job.state).toBe("deadLettered")
    expect(Option.getOrThrow(job.lastError)).toContain("no response within the lease")
  })

  it("dispatches over real HTTP to an originUrl (a Node server on loopback runs the handler)", async () => {
    const { run, scheduler } = fresh(env.SCHEDULER, { originUrl: env.ORIGIN_URL })
    const id = await run((s) => s.runAfter(0, "origin:shout", { text: "over the wire" }))
    const job = await settled(scheduler, id)
    expect(job.state).toBe("success")
    expect(job.result).toEqual(Option.some({ shouted: "OVER THE WIRE", from: "node" }))
  })

  it("a network error reaching the originUrl is a failed attempt, retried, then dead-lettered", async () => {
    const { run, scheduler } = fresh(env.SCHEDULER, { originUrl: "http://127.0.0.1:9" })
    const id = await run((s) => s.runAfter(0, Echo, { text: "nobody listens" }, fast))
    const job = await settled(scheduler, id)
    expect(job.state).toBe("deadLettered")
    expect(job.attempt).toBe(3)
    expect(Option.getOrThrow(job.lastError)).toContain("dispatch failed")
  })

  it("createScheduler: the Promise facade over the same service", async () => {
    const instanceName = `test-${crypto.randomUUID()}`
    const scheduler = createScheduler({ namespace: env.SCHEDULER, binding: "SELF_APP", instanceName })
    const { id, scheduledFor } = await scheduler.runAfter(30_000, "test:echo", { text: "later" })
    expect(scheduledFor).toBeInstanceOf(Date)
    expect(scheduledFor.getTime()).toBeGreaterThan(Date.now() + 29_000)
    expect((await scheduler.get(id)).state).toBe("pending")
    expect((await scheduler.list()).jobs.map((j) => j.id)).toEqual([id])
    expect(await scheduler.cancel(id)).toEqual({ _tag: "Canceled", id, children: 0, cancelled: true })
    await expect(scheduler.runAfter(-1, Echo, { text: "x" })).rejects.toMatchObject({ _tag: "InvalidTime" })
    // once the first call has settled the shard count, a call is checked and sent without Effect: the same answers
    const plain = await scheduler.runAt(Date.now() + 60_000, Echo, { text: "plain" }, { key: "plain-key" })
    expect((await scheduler.get(plain.id)).scheduledFor.epochMillis).toBe(plain.scheduledFor.getTime())
    expect((await scheduler.runAfter(1_000, Echo, { text: "again" }, { key: "plain-key" })).id).toBe(plain.id)
    // and the SchedulerDO's own refusal is the typed error
    const Missing = Workflow.make("reports:missing", { binding: "NO_SUCH_WORKFLOW", params: Schema.Struct({}) })
    await expect(scheduler.runAfter(0, Missing, {})).rejects.toMatchObject({
      _tag: "InvalidOptions",
      reason: expect.stringContaining("no Workflow binding NO_SUCH_WORKFLOW")
    })
    await expect(scheduler.get("job_0_missing00")).rejects.toMatchObject({ _tag: "JobNotFound" })
    // the typed error itself is thrown, not a FiberFailure around it
    const invalid = (reason: string) => expect.objectContaining({ _tag: "InvalidOptions", reason: expect.stringContaining(reason) })
    expect(() => createScheduler({ namespace: env.SCHEDULER, instanceName })).toThrow(invalid("exactly one of originUrl and binding"))
    expect(() => createScheduler({ namespace: env.SCHEDULER, originUrl: "ftp://x" })).toThrow(invalid("http(s) URL"))
    expect(() => createWorkpool({ namespace: env.SCHEDULER, binding: "SELF_APP", name: "bad name!" })).toThrow(invalid("pool name"))
    expect(() => createCronTrigger({ crons: triggerCrons, namespace: env.SCHEDULER })).toThrow(invalid("exactly one of"))
  })

  it("a SchedulerDO without LUNORA_SCHEDULER_SECRET refuses work with SchedulerUnavailable, saying why", async () => {
    const { run } = fresh(env.NO_SECRET_SCHEDULER)
    const result = await run((s) => Effect.either(s.runAfter(0, Echo, { text: "x" })))
    expect(Either.isLeft(result) && result.left._tag).toBe("SchedulerUnavailable")
    expect(Either.isLeft(result) && result.left.message).toContain("LUNORA_SCHEDULER_SECRET")
  })

  it("layerConfig reads its options from Config", async () => {
    const instanceName = `test-${crypto.randomUUID()}`
    const SchedulerLive = Scheduler.layerConfig({
      namespace: Config.succeed(env.SCHEDULER),
      binding: Config.string("DISPATCH_BINDING"),
      instanceName: Config.string("TENANT")
    })
    const provider = ConfigProvider.fromMap(new Map([["DISPATCH_BINDING", "SELF_APP"], ["TENANT", instanceName]]))
    const id = await Effect.runPromise(
      Effect.flatMap(Scheduler.Scheduler, (s) => s.runAfter(0, Echo, { text: "configured" })).pipe(
        Effect.provide(SchedulerLive),
        Effect.withConfigProvider(provider)
      )
    )
    const direct = Effect.runSync(Scheduler.make({ namespace: env.SCHEDULER, binding: "SELF_APP", instanceName }))
    expect((await settled(direct, id)).result).toEqual(Option.some({ echoed: "configured", shardKey: null }))

    const missing = await Effect.runPromise(Effect.exit(
      Effect.provide(Scheduler.Scheduler, SchedulerLive).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map())))
    ))
    expect(String(missing)).toContain("DISPATCH_BINDING")
  })

  it("leases each job when a dispatch slot frees, so jobs queued behind slow ones get their whole lease", async () => {
    const { run, scheduler } = fresh(env.SINGLE_SCHEDULER)
    // 12 jobs of 600 ms, 6 at a time, on a 1 s lease: leasing all 12 up front would leave the last 6 only 400 ms
    const scheduled = await run((s) =>
      s.submit(Array.from({ length: 12 }, () => ({ job: Slow, payload: { ms: 600 }, options: { retry: { maxAttempts: 1 } } })))
    )
    const jobs = await Promise.all(scheduled.map((job) => settled(scheduler, job.id)))
    expect(jobs.map((job) => job.state)).toEqual(Array(12).fill("success"))
    const starts = jobs.map((job) => Option.getOrThrow(job.startedAt).epochMillis).sort((a, b) => a - b)
    expect(starts[6]! - starts[0]!).toBeGreaterThanOrEqual(500)
  })

  it("batched: leases a batch when a request slot frees (6 requests of 10 jobs), not before", async () => {
    const { run, scheduler } = fresh(env.LONG_LEASE_SCHEDULER)
    // 66 jobs of 600 ms: 60 go out in 6 batches at once, the last 6 when a batch has answered
    const scheduled = await run((s) =>
      s.submit(Array.from({ length: 66 }, () => ({ job: Slow, payload: { ms: 600 }, options: { retry: { maxAttempts: 1 } } })))
    )
    const jobs = await Promise.all(scheduled.map((job) => settled(scheduler, job.id)))
    expect(jobs.map((job) => job.state)).toEqual(Array(66).fill("success"))
    const starts = jobs.map((job) => Option.getOrThrow(job.startedAt).epochMillis).sort((a, b) => a - b)
    expect(starts[59]! - starts[0]!).toBeLessThan(300)
    expect(starts[60]! - starts[0]!).toBeGreaterThanOrEqual(500)
  })

  it("reconciles crons into the DO, fires them through the alarm, and adds nothing when declared again", async () => {
    const instanceName = `test-${crypto.randomUUID()}`
    const options = { namespace: env.SCHEDULER, binding: "SELF_APP", instanceName }
    const crons = CronSpec.cronJobs().interval("echo every second", { seconds: 1 }, Echo, { text: "tick" })
    const withRegistry = <A, E>(declared: CronSpec.CronJobs, f: (r: CronRegistry.CronRegistry["Type"]) => Effect.Effect<A, E>) =>
      Effect.runPromise(Effect.flatMap(CronRegistry.CronRegistry, f).pipe(
        Effect.provide(CronRegistry.layer({ ...options, crons: declared }))
      ))
    // a deploy builds the layer (reconciling); a second build with the same code changes nothing
    expect(await withRegistry(crons, (r) => r.list)).toHaveLength(1)
    expect(await withRegistry(crons, (r) => r.reconcile(crons))).toEqual({ added: [], changed: [], removed: [] })

    const scheduler = Effect.runSync(Scheduler.make(options))
    const deadline = Date.now() + 8_000
    let fired: Job.JobInfo | undefined
    while (fired === undefined && Date.now() < deadline) {
      const [cron] = await withRegistry(crons, (r) => r.list)
      const jobId = Option.getOrUndefined(cron!.lastJobId)
      if (jobId !== undefined) fired = await settled(scheduler, jobId)
      else await new Promise((resolve) => setTimeout(resolve, 50))
    }
    expect(fired?.state).toBe("success")
    expect(fired?.result).toEqual(Option.some({ echoed: "tick", shardKey: null }))

    // removing the cron from the code stops it
    const removed = await withRegistry(CronSpec.cronJobs(), (r) => r.list)
    expect(removed).toEqual([])
    const before = (await Effect.runPromise(scheduler.list())).jobs.length
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    expect((await Effect.runPromise(scheduler.list())).jobs.length).toBe(before)
  })

  it("Cron Triggers path: scheduled() turns the trigger into the matching crons' jobs, run through the DO", async () => {
    const scheduledTime = Date.now()
    await worker.scheduled(createScheduledController({ scheduledTime, cron: "*/5 * * * *" }), env)
    const scheduler = Effect.runSync(Scheduler.make({ namespace: env.SCHEDULER, binding: "SELF_APP", instanceName: "cron-triggers" }))
    const { jobs } = await Effect.runPromise(scheduler.list({ functionPath: "test:echo" }))
    const job = jobs.find((j) => Option.getOrNull(j.key) === "cron-trigger:echo every five minutes")
    expect(job?.scheduledFor.epochMillis).toBe(scheduledTime)
    const done = await settled(scheduler, job!.id)
    expect(done.result).toEqual(Option.some({ echoed: "from a trigger", shardKey: null }))
    expect(jobs.some((j) => Option.getOrNull(j.key) === "cron-trigger:daily echo")).toBe(false)

    expect(createCronTrigger({ crons: triggerCrons, namespace: env.SCHEDULER, binding: "SELF_APP" }).crons)
      .toEqual(["*/5 * * * *", "0 9 * * *"])
    expect(() =>
      createCronTrigger({
        crons: CronSpec.cronJobs().interval("too fast", { seconds: 30 }, Echo, { text: "x" }),
        namespace: env.SCHEDULER,
        binding: "SELF_APP"
      })
    ).toThrow("cannot be a Cron Trigger")
  })

  it("Cron Triggers path, one function per trigger: scheduled() schedules the triggers of controller.cron, by Job and by path", async () => {
    const scheduledTime = Date.now()
    await worker.scheduled(createScheduledController({ scheduledTime, cron: "0 3 * * *" }), env)
    const scheduler = Effect.runSync(Scheduler.make({ namespace: env.SCHEDULER, binding: "SELF_APP", instanceName: "function-triggers" }))
    const { jobs } = await Effect.runPromise(scheduler.list())
    // the two triggers of "0 3 * * *", not the one of "15 4 * * MON"
    expect(jobs.map((job) => [job.functionPath, job.scheduledFor.epochMillis])).toEqual([
      ["test:echo", scheduledTime],
      ["test:echo", scheduledTime]
    ])
    const keys = jobs.map((job) => Option.getOrThrow(job.key))
    expect(keys.every((key) => /^cron-trigger:test:echo#[0-9a-f]{8}$/.test(key))).toBe(true)
    expect(new Set(keys).size).toBe(2)
    const done = await Promise.all(jobs.map((job) => settled(scheduler, job.id)))
    expect(done.map((job) => job.state)).toEqual(["success", "success"])
    expect(done.map((job) => Option.getOrThrow(job.result))).toEqual(expect.arrayContaining([
      { echoed: "nightly, by its Job", shardKey: null },
      { echoed: "nightly, by its path", shardKey: null }
    ]))
    expect(functionTriggers.map((trigger) => trigger.crons)).toEqual([["0 3 * * *"], ["0 3 * * *"], ["15 4 * * MON"]])
  })

  it("Cron Triggers path, one function per trigger: a fire while the trigger's previous run is live is skipped, as Existing", async () => {
    const instanceName = `test-${crypto.randomUUID()}`
    const serve = serveCronTriggers(functionTriggers, { namespace: env.SCHEDULER, binding: "SELF_APP", instanceName })
    const later = Date.now() + 3_600_000
    const first = await serve({ cron: "15 4 * * MON", scheduledTime: later })
    expect(first.map(({ name, scheduled }) => [name, scheduled._tag])).toEqual([["test:echo on \"15 4 * * MON\"", "Created"]])
    const again = await serve({ cron: "15 4 * * MON", scheduledTime: later + 60_000 })
    expect(again.map(({ scheduled }) => [scheduled._tag, scheduled.id])).toEqual([["Existing", first[0]!.scheduled.id]])
    expect(await serve({ cron: "0 9 * * *", scheduledTime: later })).toEqual([])
    const scheduler = Effect.runSync(Scheduler.make({ namespace: env.SCHEDULER, binding: "SELF_APP", instanceName }))
    const [job] = (await Effect.runPromise(scheduler.list())).jobs
    expect([job?.state, job?.args, job?.maxAttempts]).toEqual(["pending", { text: "on mondays" }, 1])
  })

  it("keeps two instanceNames apart", async () => {
    const a = fresh()
    const b = fresh()
    const id = await a.run((s) => s.runAfter("1 hour", Echo, { text: "a's" }))
    const fromB = await b.run((s) => Effect.either(s.get(id)))
    expect(Either.isLeft(fromB) && fromB.left._tag).toBe("JobNotFound")
    expect((await b.run((s) => s.list())).jobs).toEqual([])
    expect((await a.run((s) => s.list())).jobs.map((j) => j.id)).toEqual([id])
    expect((await b.run((s) => Effect.either(s.cancel(id))))._tag).toBe("Left")
  })

  it("schedules a batch of 1,000 jobs in one call, deduping keys", async () => {
    const { run } = fresh()
    const submissions = Array.from({ length: 1_000 }, (_, i) => ({
      job: Echo,
      payload: { text: `n${i}` },
      after: "1 hour" as const,
      options: { key: `k${i % 500}` }
    }))
    const scheduled = await run((s) => s.submit(submissions))
    expect(scheduled.filter((r) => r._tag === "Created")).toHaveLength(500)
    expect(scheduled[500]!.id).toBe(scheduled[0]!.id)
  })
})
