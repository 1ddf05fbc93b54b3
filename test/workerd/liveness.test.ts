/// <reference types="@cloudflare/workers-types" />
/// <reference types="@cloudflare/vitest-pool-workers" />
/**
 * The liveness rule inside workerd, on real SQLite and real alarms: no time,
 * alarm state, failing step, damaged row or malformed call leaves an instance
 * asleep with due work, or spinning. (Restarts of workerd itself are in
 * test/restart/.)
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test"
import { DateTime, Effect, Either, Option } from "effect"
import { describe, expect, it } from "vitest"
import * as SqliteStore from "../../src/cloudflare/internal/sqliteStore.js"
import * as CronRegistry from "../../src/CronRegistry.js"
import * as CronSpec from "../../src/CronSpec.js"
import { MAX_PAYLOAD_DEPTH } from "../../src/internal/domain/payload.js"
import type { JobRecord } from "../../src/internal/engine/store.js"
import { fresh, runs, settled, sleep } from "./support.js"
import { Echo, type SchedulerDO, Slow } from "./worker.js"

type Stub = ReturnType<typeof fresh>["stub"]

const alarmOf = (stub: Stub) => runInDurableObject(stub, (_, state) => state.storage.getAlarm())

/** A new stub of the instance (one used when its object restarted is broken). */
const again = (instanceName: string): Stub => env.SCHEDULER.get(env.SCHEDULER.idFromName(instanceName))

const restart = (stub: Stub) =>
  expect(runInDurableObject(stub, (_, state) => state.abort("injected restart"))).rejects.toThrow("injected restart")

/** The time finished jobs are kept: what the alarm waits for once nothing else is left. */
const RETENTION_MS = 7 * 86_400_000

/** A stored job as the engine would write it, due now, dispatched through SELF_APP. */
const storedJob = (id: string, overrides: Partial<Omit<JobRecord, "seq">> = {}): Omit<JobRecord, "seq"> => ({
  id,
  functionPath: "test:echo",
  args: "{\"text\":\"stored\"}",
  state: "pending",
  runAt: Date.now(),
  scheduledFor: Date.now(),
  createdAt: Date.now(),
  startedAt: null,
  completedAt: null,
  attempt: 0,
  retryDelaysMs: [],
  deadLetter: true,
  key: null,
  shardKey: null,
  pool: null,
  target: JSON.stringify({ binding: "SELF_APP" }),
  parentId: null,
  cancelRequested: false,
  lastError: null,
  result: null,
  ...overrides
})

describe("liveness: an instance with due work always wakes", { timeout: 20_000 }, () => {
  it("scheduling moves the alarm earlier when a job is due sooner, and leaves it when the alarm is already sooner", async () => {
    const { run, stub } = fresh()
    const at = (job: Promise<string>) => job.then((id) => run((s) => s.get(id))).then((info) => info.scheduledFor.epochMillis)
    const first = await at(run((s) => s.runAfter("1 minute", Echo, { text: "a minute" })))
    expect(await alarmOf(stub)).toBe(first)
    await at(run((s) => s.runAfter("2 minutes", Echo, { text: "later" })))
    expect(await alarmOf(stub)).toBe(first)
    const sooner = await at(run((s) => s.runAfter("30 seconds", Echo, { text: "sooner" })))
    expect(await alarmOf(stub)).toBe(sooner)
    // a batch with one job due sooner still
    const [soonest] = await run((s) =>
      s.submit([
        { job: Echo, payload: { text: "b" }, after: "3 minutes" },
        { job: Echo, payload: { text: "c" }, after: "10 seconds" }
      ]))
    expect(await alarmOf(stub)).toBeLessThan(sooner)
    expect(soonest?._tag).toBe("Created")
  })

  it("runAt(0), new Date(0) and a Date before 1970 run as soon as possible, and the instance keeps answering", async () => {
    const { run, scheduler } = fresh()
    const zero = await run((s) => s.runAt(0, Echo, { text: "epoch" }))
    const date = await run((s) => s.runAt(new Date(0), Echo, { text: "date" }))
    const before = await run((s) => s.runAt(new Date(-86_400_000), Echo, { text: "1969" }))
    const jobs = await Promise.all([zero, date, before].map((id) => settled(scheduler, id)))
    expect(jobs.map((job) => job.state)).toEqual(["success", "success", "success"])
    expect(jobs[2]!.scheduledFor.epochMillis).toBe(-86_400_000)
    // the calls after it still work
    const later = await run((s) => s.runAfter("1 hour", Echo, { text: "later" }))
    expect((await run((s) => s.list())).jobs).toHaveLength(4)
    expect(await run((s) => s.cancel(later))).toMatchObject({ _tag: "Canceled" })
  })

  it("an alarm deleted while work is due is set again by the next call, and the work runs", async () => {
    const { run, scheduler, stub } = fresh()
    const id = await run((s) => s.runAfter("1 second", Echo, { text: "deleted alarm" }))
    await runInDurableObject(stub, (_, state) => state.storage.deleteAlarm())
    expect(await alarmOf(stub)).toBeNull()
    await run((s) => s.get(id))
    expect(await alarmOf(stub)).toBe((await run((s) => s.get(id))).scheduledFor.epochMillis)
    expect((await settled(scheduler, id)).state).toBe("success")
  })

  it("an alarm moved a day ahead while work is due is moved back by the next call", async () => {
    const { run, scheduler, stub } = fresh()
    const id = await run((s) => s.runAfter("1 second", Echo, { text: "moved alarm" }))
    const due = (await run((s) => s.get(id))).scheduledFor.epochMillis
    await runInDurableObject(stub, (_, state) => state.storage.setAlarm(Date.now() + 86_400_000))
    await run((s) => s.list())
    expect(await alarmOf(stub)).toBe(due)
    expect((await settled(scheduler, id)).state).toBe("success")
  })

  it("the first call after the object restarts sets the alarm again, whatever was stored", async () => {
    const { instanceName, run, scheduler, stub } = fresh()
    const id = await run((s) => s.runAfter("1 second", Echo, { text: "after a restart" }))
    await runInDurableObject(stub, (_, state) => state.storage.deleteAlarm())
    await restart(stub)
    // the constructor re-arms: no call of the service is needed, only one that reaches the object
    expect(await alarmOf(again(instanceName))).toBe((await run((s) => s.get(id))).scheduledFor.epochMillis)
    expect((await settled(scheduler, id)).state).toBe("success")
  })

  it.each([
    ["throws when made", "THROWING_TELEMETRY_SCHEDULER"],
    ["fails when built", "FAILING_TELEMETRY_SCHEDULER"]
  ] as const)("a telemetry layer that %s is left out: the object schedules and runs jobs", async (_, binding) => {
    const { run, scheduler } = fresh(env[binding])
    const id = await run((s) => s.runAfter("100 millis", Echo, { text: "without telemetry" }))
    expect((await settled(scheduler, id)).state).toBe("success")
  })

  it("a failing alarm pass backs off (1 s, 2 s, 4 s) instead of re-arming into the past, and still dispatches", async () => {
    const { run, scheduler, stub } = fresh()
    await run((s) => s.list())
    // a step of every pass fails: its crons table is gone
    await runInDurableObject(stub, (_, state) => state.storage.sql.exec("ALTER TABLE _lunora_crons RENAME TO _lunora_crons_away"))
    const id = await run((s) => s.runAfter(0, Echo, { text: "despite the failure" }))
    for (const backoff of [1_000, 2_000, 4_000]) {
      // the pass re-arms at its own `now`, somewhere between these two readings, whatever the load
      const before = Date.now()
      expect(await runDurableObjectAlarm(stub)).toBe(true)
      const after = Date.now()
      const alarm = await alarmOf(stub)
      expect(alarm!).toBeGreaterThanOrEqual(before + backoff)
      expect(alarm!).toBeLessThanOrEqual(after + backoff)
    }
    expect((await settled(scheduler, id, 2_000)).state).toBe("success")
    expect((await runs())[id]).toBe(1)
    // calls keep working meanwhile
    expect((await run((s) => s.list())).jobs.map((job) => job.id)).toEqual([id])
    // mended, the next pass succeeds and the backoff resets: the alarm waits for the finished job's sweep
    await runInDurableObject(stub, (_, state) => state.storage.sql.exec("ALTER TABLE _lunora_crons_away RENAME TO _lunora_crons"))
    expect(await runDurableObjectAlarm(stub)).toBe(true)
    expect(await alarmOf(stub)).toBeGreaterThan(Date.now() + RETENTION_MS - 60_000)
  })

  it("a job whose stored record cannot be sent is dead-lettered with the reason; the jobs around it run", async () => {
    const { run, scheduler, stub } = fresh()
    await runInDurableObject(stub, (_, state) => {
      const store = SqliteStore.make(state.storage)
      store.insert(storedJob("job_0_brokenpayload01", { args: "{not json" }))
      store.insert(storedJob("job_0_brokentarget01", { target: "{\"binding\":" }))
      store.insert(storedJob("job_0_damagedretries", { retryDelaysMs: [] }))
      state.storage.sql.exec("UPDATE _lunora_jobs SET retry_delays_ms = 'abc' WHERE id = 'job_0_damagedretries'")
    })
    const healthy = await run((s) => s.runAfter(0, Echo, { text: "healthy" }))
    expect((await settled(scheduler, healthy)).state).toBe("success")
    const payload = await settled(scheduler, "job_0_brokenpayload01")
    expect(payload.state).toBe("deadLettered")
    expect(Option.getOrThrow(payload.lastError)).toContain("the stored job cannot be dispatched")
    expect(payload.args).toBe("{not json")
    const target = await settled(scheduler, "job_0_brokentarget01")
    expect(target.state).toBe("deadLettered")
    expect(Option.getOrThrow(target.lastError)).toContain("cannot be dispatched")
    expect((await settled(scheduler, "job_0_damagedretries")).state).toBe("success")
  })

  it("a cron whose record is damaged is marked failing and retried a minute later; the other crons and jobs run", async () => {
    const instanceName = `test-${crypto.randomUUID()}`
    const { run, scheduler, stub } = fresh(env.SCHEDULER, { binding: "SELF_APP" }, instanceName)
    const crons = CronSpec.cronJobs().interval("healthy", { seconds: 1 }, Echo, { text: "tick" })
    const registry = CronRegistry.layer({ namespace: env.SCHEDULER, binding: "SELF_APP", instanceName, crons })
    const list = () => Effect.runPromise(Effect.flatMap(CronRegistry.CronRegistry, (r) => r.list).pipe(Effect.provide(registry)))
    await list()
    const now = Date.now()
    await runInDurableObject(stub, (_, state) =>
      SqliteStore.make(state.storage).putCron({
        name: "damaged",
        schedule: "{\"_tag\":\"Expression\"",
        functionPath: "test:echo",
        args: "{\"text\":\"never\"}",
        nextRunAt: now,
        lastRunAt: null,
        lastJobId: null,
        lastOutcome: null,
        skipped: 0,
        target: null
      }))
    const job = await run((s) => s.runAfter(0, Echo, { text: "beside the crons" }))
    expect((await settled(scheduler, job)).state).toBe("success")
    await sleep(1_500)
    const seen = await runInDurableObject(stub, (_, state) => SqliteStore.make(state.storage).listCrons())
    const damaged = seen.find((cron) => cron.name === "damaged")!
    expect(damaged.lastOutcome).toMatch(/^error: /)
    expect(damaged.nextRunAt).toBeGreaterThan(now + 50_000)
    const healthy = seen.find((cron) => cron.name === "healthy")!
    expect(healthy.lastOutcome).toBe("fired")
    expect(healthy.lastRunAt).toBeGreaterThanOrEqual(now)
  })

  it("a stored run time that is not a time is dead-lettered when the object starts; nothing waits on it", async () => {
    const { instanceName, run, scheduler, stub } = fresh()
    await run((s) => s.list())
    await runInDurableObject(stub, (_, state) => {
      SqliteStore.make(state.storage).insert(storedJob("job_0_runsoonish0001"))
      state.storage.sql.exec("UPDATE _lunora_jobs SET run_at = 'soon' WHERE id = 'job_0_runsoonish0001'")
    })
    await restart(stub)
    const damaged = await run((s) => s.get("job_0_runsoonish0001"))
    expect(damaged.state).toBe("deadLettered")
    expect(Option.getOrThrow(damaged.lastError)).toContain("not a time")
    const id = await run((s) => s.runAfter(0, Echo, { text: "after the repair" }))
    expect((await settled(scheduler, id)).state).toBe("success")
    // nothing is left due: the alarm waits for the sweep of the finished jobs
    expect(await alarmOf(again(instanceName))).toBeGreaterThan(Date.now() + RETENTION_MS - 60_000)
  })
})

/**
 * What a call on the object answers: "accepted", or the message it rejects
 * with. Made on the object itself, inside it: vitest-pool-workers reports
 * every rejected RPC through a stub as an unhandled error, even one the test
 * handles (cloudflare/workers-sdk#14736), and the RPC system carries nothing
 * of an error but its message, which is what this returns.
 */
const answerOf = (stub: Stub, call: (instance: SchedulerDO) => Promise<unknown>) =>
  runInDurableObject(stub, async (instance) => {
    try {
      await call(instance)
      return "accepted"
    } catch (error) {
      return error instanceof Error ? error.message : String(error)
    }
  })

describe("the SchedulerDO refuses a malformed call with a typed error, and stores nothing", () => {
  const target = { binding: "SELF_APP" }
  const job = (overrides: Record<string, unknown> = {}) => ({
    id: `job_0_${crypto.randomUUID().replaceAll("-", "").slice(0, 20)}`,
    functionPath: "test:echo",
    args: "{\"text\":\"x\"}",
    runAt: Date.now() + 60_000,
    retryDelaysMs: [],
    deadLetter: true,
    key: null,
    shardKey: null,
    pool: null,
    ...overrides
  })
  const deep = `${"[".repeat(MAX_PAYLOAD_DEPTH + 1)}${"]".repeat(MAX_PAYLOAD_DEPTH + 1)}`
  const cron = (schedule: unknown) => ({ name: "c", schedule, functionPath: "test:echo", args: "{}" })
  const hourly = CronSpec.expression("0 * * * *")

  const cases: ReadonlyArray<readonly [string, (stub: SchedulerDO) => Promise<unknown>, RegExp]> = [
    ["a run time of \"soon\"", (stub) => stub.schedule(target, [job({ runAt: "soon" })] as never), /^InvalidTime: /],
    ["a run time of 1e300", (stub) => stub.schedule(target, [job({ runAt: 1e300 })] as never), /^InvalidTime: /],
    ["a run time of NaN", (stub) => stub.schedule(target, [job({ runAt: Number.NaN })] as never), /^InvalidTime: /],
    ["a run time 6 years ahead", (stub) => stub.schedule(target, [job({ runAt: Date.now() + 6 * 366 * 86_400_000 })] as never), /^InvalidTime: .*5 calendar years/],
    ["args that are not JSON text", (stub) => stub.schedule(target, [job({ args: "{nope" })] as never), /^InvalidPayload: .*not JSON/],
    ["args that are not text", (stub) => stub.schedule(target, [job({ args: { text: "x" } })] as never), /^InvalidPayload: /],
    ["args nested too deep", (stub) => stub.schedule(target, [job({ args: deep })] as never), /^InvalidPayload: .*levels deep/],
    ["an empty id", (stub) => stub.schedule(target, [job({ id: "" })] as never), /^InvalidOptions: /],
    ["one id twice", (stub) => {
      const twice = job()
      return stub.schedule(target, [twice, twice] as never)
    }, /^InvalidOptions: .*twice/],
    ["retryDelaysMs null", (stub) => stub.schedule(target, [job({ retryDelaysMs: null })] as never), /^InvalidOptions: /],
    ["retryDelaysMs \"abc\"", (stub) => stub.schedule(target, [job({ retryDelaysMs: "abc" })] as never), /^InvalidOptions: /],
    ["a scheduled job in a pool", (stub) => stub.schedule(target, [job({ pool: "ghost" })] as never), /^InvalidOptions: .*pool/],
    ["a target that is not one", (stub) => stub.schedule({ binding: "not a binding!" } as never, [job()] as never), /^InvalidOptions: /],
    ["jobs that are not a list", (stub) => stub.schedule(target, "jobs" as never), /^InvalidOptions: /],
    ["a pool cap of -1", (stub) => stub.definePool("p", -1), /^InvalidOptions: .*maxConcurrency/],
    ["a pool change to a cap of 0", (stub) => stub.updatePool("p", { maxConcurrency: 0 }), /^InvalidOptions: /],
    ["a cron interval of 0", (stub) => stub.reconcileCrons(target, [cron({ _tag: "Interval", ms: 0 })] as never), /^InvalidOptions: /],
    ["a cron interval of -1000", (stub) => stub.reconcileCrons(target, [cron({ _tag: "Interval", ms: -1000 })] as never), /^InvalidOptions: /],
    ["a cron firstRun of \"sometimes\"", (stub) =>
      stub.reconcileCrons(target, [cron({ _tag: "Interval", ms: 60_000, firstRun: "sometimes" })] as never), /^InvalidOptions: /],
    ["a cron interval of \"x\"", (stub) => stub.reconcileCrons(target, [cron({ _tag: "Interval", ms: "x" })] as never), /^InvalidOptions: /],
    ["a cron expression without its fields", (stub) =>
      stub.reconcileCrons(target, [cron({ _tag: "Expression", expression: "0 * * * *", timeZone: "UTC" })] as never), /^InvalidOptions: /],
    ["a cron minute of 61", (stub) =>
      stub.reconcileCrons(target, [cron({ ...hourly, expression: "61 * * * *", fields: { ...hourly.fields, minute: [61] } })] as never), /^InvalidOptions: /],
    ["a cron with no minute", (stub) =>
      stub.reconcileCrons(target, [cron({ ...hourly, fields: { ...hourly.fields, minute: [] } })] as never), /^InvalidOptions: .*no date matches/],
    ["a cron on the 30th of February", (stub) =>
      stub.reconcileCrons(target, [cron({ ...hourly, expression: "0 0 30 2 *", fields: { ...CronSpec.expression("0 0 30 1 *").fields, month: [2] } })] as never), /^InvalidOptions: .*no date matches/],
    ["a cron in an unknown time zone", (stub) =>
      stub.reconcileCrons(target, [cron({ ...hourly, timeZone: "Mars/Olympus_Mons" })] as never), /^InvalidOptions: .*time zone/],
    ["a list limit of \"x\"", (stub) => stub.list({ limit: "x" } as never), /^InvalidOptions: /],
    ["a cancelQueued limit of 10^6", (stub) => stub.cancelQueued("p", 1_000_000), /^InvalidOptions: /],
    ["a shard count of 0", (stub) => stub.shards(0, false), /^InvalidOptions: .*shards must be an integer from 1 to 1024/],
    ["a shard count of 1025", (stub) => stub.shards(1025, false), /^InvalidOptions: .*shards must be/],
    ["a shard count of 2.5", (stub) => stub.shards(2.5, false), /^InvalidOptions: .*shards must be/],
    ["a shard count as text", (stub) => stub.shards("2" as never, false), /^InvalidOptions: /],
    ["a shrink flag as text", (stub) => stub.shards(2, "yes" as never), /^InvalidOptions: /],
    ["a cron reconcile for shard -1", (stub) => stub.reconcileCrons(target, [cron(hourly)] as never, -1), /^InvalidOptions: /]
  ]

  it("accepts the well-formed job the refusals below are variations of", async () => {
    const { stub } = fresh()
    const [result] = await stub.schedule(target, [job()] as never)
    expect(result?._tag).toBe("Created")
    expect(await answerOf(stub, (instance) => instance.schedule(target, [job()] as never))).toBe("accepted")
    expect(await answerOf(stub, (instance) => instance.reconcileCrons(target, [cron(hourly)] as never))).toBe("accepted")
    const immediately = cron({ _tag: "Interval", ms: 60_000, firstRun: "immediately" })
    expect(await answerOf(stub, (instance) => instance.reconcileCrons(target, [immediately] as never))).toBe("accepted")
  })

  for (const [what, call, refusal] of cases) {
    it(what, async () => {
      const { run, stub } = fresh()
      expect(await answerOf(stub, call)).toMatch(refusal)
      // nothing stored, and the instance still answers, with nothing to wake for
      expect((await run((s) => s.list())).jobs).toEqual([])
      expect(await stub.listCrons()).toEqual([])
      expect(await stub.poolStatus("p")).toBeUndefined()
      expect(await alarmOf(stub)).toBeNull()
    })
  }

  it("the service refuses first, with the typed error: a payload nested 5,000 deep", async () => {
    const { run } = fresh()
    let nested: unknown = { text: "bottom" }
    for (let i = 0; i < 5_000; i++) nested = [nested]
    const refused = await run((s) => Effect.either(s.runAfter(0, "test:echo", nested)))
    expect(Either.isLeft(refused) && refused.left).toMatchObject({ _tag: "InvalidPayload", problem: "size" })
  })
})

describe("cron trigger while a run is live", () => {
  it("trigger refuses with CronRunInProgress while the last run is pending or in progress, then runs", async () => {
    const instanceName = `test-${crypto.randomUUID()}`
    const { scheduler } = fresh(env.SCHEDULER, { binding: "SELF_APP" }, instanceName)
    const crons = CronSpec.cronJobs().daily("slow daily", { hourUTC: 3, minuteUTC: 0 }, Slow, { ms: 600 })
    const withRegistry = <A, E>(f: (r: CronRegistry.CronRegistry["Type"]) => Effect.Effect<A, E>) =>
      Effect.runPromise(Effect.flatMap(CronRegistry.CronRegistry, f).pipe(
        Effect.provide(CronRegistry.layer({ namespace: env.SCHEDULER, binding: "SELF_APP", instanceName, crons }))
      ))
    const first = await withRegistry((r) => r.trigger("slow daily"))
    const second = await withRegistry((r) => Effect.either(r.trigger("slow daily")))
    expect(Either.isLeft(second) && second.left).toMatchObject({ _tag: "CronRunInProgress", name: "slow daily", jobId: first })
    expect((await settled(scheduler, first)).state).toBe("success")
    const third = await withRegistry((r) => r.trigger("slow daily"))
    expect(third).not.toBe(first)
    expect(DateTime.toEpochMillis((await settled(scheduler, third)).scheduledFor)).toBeGreaterThan(0)
  })
})
