/// <reference types="@cloudflare/workers-types" />
/// <reference types="@cloudflare/vitest-pool-workers" />
/**
 * The admin API end to end: mounted by the test Worker (`Admin.toFetchHandler`
 * under `Admin.prefix`), over real `SchedulerDO`s, called over real requests,
 * raw and through the typed client (`Admin.client`) the CLI uses.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { env, SELF } from "cloudflare:test"
import { Effect, Layer, Option } from "effect"
import { describe, expect, it } from "vitest"
import * as Admin from "../../src/Admin.js"
import * as Alerts from "../../src/Alerts.js"
import * as CronRegistry from "../../src/CronRegistry.js"
import * as CronSpec from "../../src/CronSpec.js"
import * as Scheduler from "../../src/Scheduler.js"
import * as Workpool from "../../src/Workpool.js"
import { settled } from "./support.js"
import { AlertSink, Echo, Flaky, PoolWork } from "./worker.js"

const TOKEN = "test-admin-token"
const base = `https://app${Admin.prefix}`

/** The typed client over the test Worker. */
const ClientLive = FetchHttpClient.layer.pipe(
  Layer.provide(Layer.succeed(FetchHttpClient.Fetch, ((input, init) => SELF.fetch(input as never, init as never)) as typeof fetch))
)
const withClient = <A, E>(f: (client: Effect.Effect.Success<ReturnType<typeof Admin.client>>) => Effect.Effect<A, E>, token = TOKEN) =>
  Effect.runPromise(Effect.flatMap(Admin.client({ url: "https://app", token }), f).pipe(Effect.provide(ClientLive)))

const fresh = () => {
  const instance = `admin-${crypto.randomUUID()}`
  const options = { namespace: env.SCHEDULER, binding: "SELF_APP", instanceName: instance }
  return { instance, options, scheduler: Effect.runSync(Scheduler.make(options)) }
}
const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)

describe("the admin API", () => {
  it("answers 401 on every route without the token, or with a wrong one, and reads or changes nothing", async () => {
    const { instance, options, scheduler } = fresh()
    const id = await run(scheduler.runAfter("1 hour", Echo, { text: "kept" }))
    const pool = Effect.runSync(Workpool.make({ ...options, name: "guarded", maxConcurrency: 2 }))
    await run(pool.enqueue(PoolWork, { group: crypto.randomUUID(), ms: 1 }))
    const routes: ReadonlyArray<readonly [string, string, unknown?]> = [
      ["GET", `/instances/${instance}/jobs`],
      ["GET", `/instances/${instance}/jobs/${id}`],
      ["POST", `/instances/${instance}/jobs/${id}/cancel`],
      ["POST", `/instances/${instance}/jobs/${id}/replay`],
      ["POST", `/instances/${instance}/purge`, {}],
      ["GET", `/instances/${instance}/crons`],
      ["POST", `/instances/${instance}/crons/trigger`, { name: "x" }],
      ["GET", `/instances/${instance}/pools`],
      ["GET", `/instances/${instance}/pools/guarded`],
      ["POST", `/instances/${instance}/pools/guarded/pause`],
      ["POST", `/instances/${instance}/pools/guarded/resize`, { maxConcurrency: 9 }],
      ["POST", `/instances/${instance}/pools/guarded/cancel-queued`],
      ["GET", `/instances/${instance}/stats`],
      ["GET", "/openapi.json"],
      // malformed too: the token is checked first
      ["GET", `/instances/${instance}/jobs?limit=abc`],
      ["POST", `/instances/${instance}/pools/guarded/resize`, { maxConcurrency: "many" }]
    ]
    for (const authorization of [undefined, "Bearer wrong-token", `Basic ${btoa(`admin:${TOKEN}`)}`, `Bearer ${TOKEN}x`]) {
      for (const [method, path, body] of routes) {
        const response = await SELF.fetch(`${base}${path}`, {
          method,
          headers: {
            ...(authorization === undefined ? {} : { authorization }),
            ...(body === undefined ? {} : { "content-type": "application/json" })
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) })
        })
        expect([method, path, authorization, response.status]).toEqual([method, path, authorization, 401])
        expect(await response.json()).toMatchObject({ _tag: "Unauthorized" })
      }
    }
    expect((await run(scheduler.get(id))).state).toBe("pending")
    expect(await run(pool.status)).toMatchObject({ paused: false, maxConcurrency: 2 })
  })

  it("lists jobs with filters and a cursor, gets, cancels, replays and purges them, with typed errors", async () => {
    const { instance, scheduler } = fresh()
    const ids: Array<string> = []
    for (let n = 0; n < 5; n++) ids.push(await run(scheduler.runAfter("1 hour", Echo, { text: `n${n}` })))
    const dead = await run(scheduler.runAfter(0, Flaky, { succeedOn: 99 }, { retry: { maxAttempts: 1 } }))
    expect((await settled(scheduler, dead)).state).toBe("deadLettered")

    const result = await withClient((client) =>
      Effect.gen(function*() {
        const first = yield* client.jobs.list({ path: { instance }, urlParams: { state: "pending", limit: 3 } })
        const second = yield* client.jobs.list({
          path: { instance },
          urlParams: { cursor: Option.getOrThrow(first.cursor), limit: 3 }
        })
        const one = yield* client.jobs.get({ path: { instance, id: ids[0]! } })
        const canceled = yield* client.jobs.cancel({ path: { instance, id: ids[0]! } })
        const missing = yield* Effect.flip(client.jobs.get({ path: { instance, id: "job_0_000000000000000000" } }))
        const badCursor = yield* Effect.flip(client.jobs.list({ path: { instance }, urlParams: { cursor: "nope" } }))
        const notReplayable = yield* Effect.flip(client.jobs.replay({ path: { instance, id: ids[1]! } }))
        const replayed = yield* client.jobs.replay({ path: { instance, id: dead } })
        return { first, second, one, canceled, missing, badCursor, notReplayable, replayed }
      })
    )
    expect(result.first.jobs.map((job) => job.id)).toEqual(ids.slice(0, 3))
    expect(result.second.jobs.map((job) => job.id)).toEqual(ids.slice(3))
    expect(result.second.cursor).toEqual(Option.none())
    expect(result.one).toMatchObject({ id: ids[0], state: "pending", functionPath: "test:echo" })
    expect(result.canceled).toMatchObject({ _tag: "Canceled", id: ids[0] })
    expect(result.missing).toMatchObject({ _tag: "JobNotFound", jobId: "job_0_000000000000000000" })
    expect(result.badCursor).toMatchObject({ _tag: "InvalidOptions" })
    expect(result.notReplayable).toMatchObject({ _tag: "JobNotReplayable", jobId: ids[1] })
    expect(result.replayed).toMatchObject({ id: dead, state: "pending" })
    expect((await settled(scheduler, dead)).state).toBe("deadLettered")
    const purged = await withClient((client) => client.jobs.purge({ path: { instance }, payload: { ids: [dead] } }))
    expect(purged).toEqual({ purged: 1 })
    expect((await run(Effect.flip(scheduler.get(dead))))._tag).toBe("JobNotFound")

    // the raw answers are the library's errors on the wire, with their status
    const raw = await SELF.fetch(`${base}/instances/${instance}/jobs/job_0_000000000000000000`, {
      headers: { authorization: `Bearer ${TOKEN}` }
    })
    expect(raw.status).toBe(404)
    expect(await raw.json()).toMatchObject({ _tag: "JobNotFound" })
    const bad = await SELF.fetch(`${base}/instances/${instance}/jobs?limit=0`, { headers: { authorization: `Bearer ${TOKEN}` } })
    expect(bad.status).toBe(400)
  })

  it("lists and triggers crons", async () => {
    const { instance, options, scheduler } = fresh()
    const crons = CronSpec.cronJobs().interval("admin echo", { minutes: 30 }, Echo, { text: "cron" })
    await run(Effect.provide(CronRegistry.CronRegistry, CronRegistry.layer({ ...options, crons })))
    const { listed, triggered, again, unknown } = await withClient((client) =>
      Effect.gen(function*() {
        const listed = yield* client.crons.list({ path: { instance } })
        const triggered = yield* client.crons.trigger({ path: { instance }, payload: { name: "admin echo" } })
        const again = yield* Effect.flip(client.crons.trigger({ path: { instance }, payload: { name: "admin echo" } }))
        const unknown = yield* Effect.flip(client.crons.trigger({ path: { instance }, payload: { name: "nope" } }))
        return { listed, triggered, again, unknown }
      })
    )
    expect(listed.map((cron) => cron.name)).toEqual(["admin echo"])
    expect(listed[0]).toMatchObject({ functionPath: "test:echo", skipped: 0 })
    expect(again).toMatchObject({ _tag: "CronRunInProgress", name: "admin echo" })
    expect(unknown).toMatchObject({ _tag: "CronNotFound", name: "nope" })
    expect((await settled(scheduler, triggered.id)).state).toBe("success")
  })

  it("lists pools and shows, pauses, resumes, resizes and empties one", async () => {
    const { instance, options } = fresh()
    const pool = Effect.runSync(Workpool.make({ ...options, name: "exports", maxConcurrency: 1 }))
    const group = crypto.randomUUID()
    await run(pool.pause)
    for (let n = 0; n < 4; n++) await run(pool.enqueue(PoolWork, { group, ms: 1 }))
    const steps = await withClient((client) =>
      Effect.gen(function*() {
        const path = { instance, name: "exports" }
        const listed = yield* client.pools.list({ path: { instance } })
        const resized = yield* client.pools.resize({ path, payload: { maxConcurrency: 3 } })
        const refused = yield* Effect.flip(client.pools.resize({ path, payload: { maxConcurrency: 0 } }))
        const canceled = yield* client.pools.cancelQueued({ path })
        const resumed = yield* client.pools.resume({ path })
        const paused = yield* client.pools.pause({ path })
        const missing = yield* Effect.flip(client.pools.status({ path: { instance, name: "ghost" } }))
        return { listed, resized, refused, canceled, resumed, paused, missing }
      })
    )
    expect(steps.listed).toHaveLength(1)
    expect(steps.listed[0]).toMatchObject({ name: "exports", paused: true, queued: 4, inFlight: 0, maxConcurrency: 1 })
    expect(steps.resized).toMatchObject({ maxConcurrency: 3, paused: true })
    // the client checks what it sends; the server checks again
    expect(steps.refused._tag).toBe("ParseError")
    const raw = await SELF.fetch(`${base}/instances/${instance}/pools/exports/resize`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ maxConcurrency: 0 })
    })
    expect(raw.status).toBe(400)
    expect(await raw.json()).toMatchObject({ _tag: "HttpApiDecodeError" })
    expect(steps.canceled).toEqual({ canceled: 4 })
    expect(steps.resumed).toMatchObject({ paused: false, queued: 0 })
    expect(steps.paused).toMatchObject({ paused: true })
    expect(steps.missing).toMatchObject({ _tag: "PoolNotFound", pool: "ghost" })
    expect(await run(pool.status)).toMatchObject({ paused: true, maxConcurrency: 3, queued: 0 })
  })

  it("counts an instance's jobs by state, its crons and pools, and serves its OpenAPI document", async () => {
    const { instance, options, scheduler } = fresh()
    await run(scheduler.runAfter("1 hour", Echo, { text: "a" }))
    await run(scheduler.runAfter("1 hour", Echo, { text: "b" }))
    const done = await run(scheduler.runAfter(0, Echo, { text: "c" }))
    expect((await settled(scheduler, done)).state).toBe("success")
    await run(Workpool.make({ ...options, name: "counted", maxConcurrency: 1 }).pipe(Effect.flatMap((pool) => pool.status)))
    const stats = await withClient((client) => client.stats.get({ path: { instance } }))
    expect(stats).toMatchObject({
      instance,
      jobs: { pending: 2, inProgress: 0, success: 1, failed: 0, canceled: 0, deadLettered: 0 },
      crons: 0,
      pools: 1
    })
    const document = await (await SELF.fetch(`${base}/openapi.json`, { headers: { authorization: `Bearer ${TOKEN}` } })).json() as {
      readonly info: { readonly title: string }
      readonly paths: Record<string, unknown>
    }
    expect(document.info.title).toBe("@lunora/scheduler admin API")
    expect(Object.keys(document.paths)).toContain(`${Admin.prefix}/instances/{instance}/jobs`)
  })

  it("over a sharded scheduler, lists and counts every shard and gets each job from its own", async () => {
    const instance = `admin-shards-${crypto.randomUUID()}`
    const options = { namespace: env.SCHEDULER, binding: "SELF_APP", instanceName: instance, shards: 4 }
    const scheduler = Effect.runSync(Scheduler.make(options))
    const ids: Array<string> = []
    for (let n = 0; n < 12; n++) ids.push(await run(scheduler.runAfter("1 hour", Echo, { text: `s${n}` })))
    expect(new Set(ids.map((id) => id.split("_")[1])).size).toBeGreaterThan(1)
    const sharded = Admin.toFetchHandler({ namespace: env.SCHEDULER, binding: "SELF_APP", token: "shard-token", shards: 4 })
    const call = async (path: string) => {
      const response = await sharded(new Request(`${base}${path}`, { headers: { authorization: "Bearer shard-token" } }))
      expect(response.status).toBe(200)
      return response.json() as Promise<any>
    }
    const page = await call(`/instances/${instance}/jobs?limit=100`)
    expect(page.jobs.map((job: { id: string }) => job.id).sort()).toEqual([...ids].sort())
    expect((await call(`/instances/${instance}/stats`)).jobs).toMatchObject({ pending: 12 })
    for (const id of ids) expect((await call(`/instances/${instance}/jobs/${id}`)).id).toBe(id)
    // the single-shard mount of the same instance sees shard 0 only
    const single = await (await SELF.fetch(`${base}/instances/${instance}/stats`, { headers: { authorization: `Bearer ${TOKEN}` } }))
      .json() as { jobs: { pending: number } }
    expect(single.jobs.pending).toBe(ids.filter((id) => id.startsWith("job_0_")).length)
  })

  it("serves an instance's metrics as JSON and in the Prometheus text format, counted by its SchedulerDO", async () => {
    const { instance, scheduler } = fresh()
    const retry = { retry: { maxAttempts: 3, backoff: "linear", baseMs: 0 } } as const
    const ids = [
      ...await Promise.all([0, 1, 2].map((n) => run(scheduler.runAfter(0, Echo, { text: `m${n}` })))),
      await run(scheduler.runAfter(0, Flaky, { succeedOn: 2 }, retry)),
      await run(scheduler.runAfter(0, Flaky, { succeedOn: 99 }, { retry: { maxAttempts: 1 } }))
    ]
    for (const id of ids) await settled(scheduler, id)
    const report = await withClient((client) => client.metrics.json({ path: { instance } }))
    expect(report.instance).toBe(instance)
    expect(report.shards.map((shard) => shard.shard)).toEqual([0])
    const samples = report.shards[0]!.samples
    const value = (name: string, labels: Record<string, string> = {}) =>
      samples.find((sample) => sample.name === name && Object.entries(labels).every(([k, v]) => sample.labels[k] === v))
    expect(value("lunora_scheduler_outcomes_total", { function_path: "test:echo", result: "success" })?.value).toBe(3)
    expect(value("lunora_scheduler_outcomes_total", { function_path: "test:flaky", result: "retry" })?.value).toBe(1)
    expect(value("lunora_scheduler_outcomes_total", { function_path: "test:flaky", result: "success" })?.value).toBe(1)
    expect(value("lunora_scheduler_outcomes_total", { function_path: "test:flaky", result: "dead_lettered" })?.value).toBe(1)
    expect(value("lunora_scheduler_retries_total", { function_path: "test:flaky" })?.value).toBe(1)
    expect(value("lunora_scheduler_dead_letters_total", { function_path: "test:flaky" })?.value).toBe(1)
    expect(value("lunora_scheduler_start_drift_ms")).toMatchObject({ type: "histogram", count: 6 })
    expect(value("lunora_scheduler_alarm_passes_total")?.value).toBeGreaterThan(0)
    expect(value("lunora_scheduler_alarm_pass_ms")?.count).toBe(value("lunora_scheduler_alarm_passes_total")?.value)
    expect(value("lunora_scheduler_jobs", { state: "success" })?.value).toBe(4)
    expect(value("lunora_scheduler_jobs", { state: "deadLettered" })?.value).toBe(1)

    const response = await SELF.fetch(`${base}/instances/${instance}/metrics/prometheus`, {
      headers: { authorization: `Bearer ${TOKEN}` }
    })
    expect(response.status).toBe(200)
    expect(response.headers.get("content-type")).toContain("text/plain")
    const text = await response.text()
    expect(text).toContain("# TYPE lunora_scheduler_outcomes_total counter")
    expect(text).toContain(
      `lunora_scheduler_outcomes_total{instance="${instance}",shard="0",function_path="test:echo",result="success"} 3`
    )
    expect(text).toContain("# TYPE lunora_scheduler_start_drift_ms histogram")
    expect(text).toContain(`lunora_scheduler_start_drift_ms_bucket{instance="${instance}",shard="0",le="+Inf"} 6`)
    expect(text).toContain(`lunora_scheduler_start_drift_ms_count{instance="${instance}",shard="0"} 6`)
    expect(text).toContain(`lunora_scheduler_jobs{instance="${instance}",shard="0",state="pending"} 0`)
    // every line is a comment or a sample: name{labels} value
    for (const line of text.trim().split("\n")) expect(line).toMatch(/^(# (HELP|TYPE) \w+ .*|\w+(\{[^}]*\})? -?[\d.e+]+)$/)
  })

  it("fires an alert declared with Alerts.layer from the SchedulerDO: a dead letter schedules the alert's job", async () => {
    const { instance, options, scheduler } = fresh()
    const name = `dead letters ${instance}`
    await run(Effect.scoped(Layer.build(Alerts.layer({ ...options, alerts: Alerts.make().onDeadLetter(name, AlertSink) }))))
    const dead = await run(scheduler.runAfter(0, Flaky, { succeedOn: 99 }, { retry: { maxAttempts: 1 } }))
    expect((await settled(scheduler, dead)).state).toBe("deadLettered")
    let events: ReadonlyArray<Alerts.Event> = []
    for (let i = 0; i < 100 && events.length === 0; i++) {
      events = await (await SELF.fetch(`https://app/alerts/${encodeURIComponent(name)}`)).json()
      if (events.length === 0) await new Promise((resolve) => setTimeout(resolve, 50))
    }
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({ kind: "deadLetter", count: 1, jobs: [{ id: dead, functionPath: "test:flaky" }] })
    // the alert's job is a job like any other, listed with its key
    const alertJobs = (await run(scheduler.list({ functionPath: "test:alert" }))).jobs
    expect(alertJobs).toHaveLength(1)
    const settledAlert = await settled(scheduler, alertJobs[0]!.id, 3000)
    expect([settledAlert.state, settledAlert.attempt, Option.getOrNull(settledAlert.lastError)]).toEqual(["success", 1, null])
    expect(Option.getOrThrow(alertJobs[0]!.key)).toMatch(/^alert:/)
  })
})
