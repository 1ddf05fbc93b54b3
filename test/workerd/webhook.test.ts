/**
 * Webhook jobs through the real `SchedulerDO` (real SQLite and alarms),
 * delivered over real HTTP to the Node receiver of origin-server.ts on
 * loopback: signed and verified, retried on 500 until it recovers,
 * dead-lettered at once on 404 and on a redirect (never followed); and
 * refused, with nothing stored, by an object with no webhook secret, by one
 * whose allow-list the host is not on, and on a direct RPC call that
 * bypasses the client's checks.
 */
import { env, SELF } from "cloudflare:test"
import { Effect, Option, Schema } from "effect"
import { describe, expect, it } from "vitest"
import * as Admin from "../../src/Admin.js"
import { createScheduler } from "../../src/cloudflare/createScheduler.js"
import * as Scheduler from "../../src/Scheduler.js"
import * as Webhook from "../../src/Webhook.js"
import { fast, fresh, settled } from "./support.js"

const Ping = (path: string) =>
  Webhook.make("hooks:ping", {
    url: `${env.ORIGIN_URL}${path}`,
    headers: { authorization: "Bearer receiver" },
    payload: Schema.Struct({ n: Schema.Int })
  })

interface Delivery {
  readonly path: string
  readonly method: string
  readonly headers: Record<string, string>
  readonly body: string
  readonly verified: { readonly jobId: string; readonly attempt: number } | string
}
const deliveriesOf = async (id: string): Promise<ReadonlyArray<Delivery>> =>
  ((await (await fetch(`${env.ORIGIN_URL}/deliveries`)).json()) as Array<Delivery>).filter((d) =>
    d.headers["x-lunora-job-id"] === id
  )
const hits = async (): Promise<Record<string, number>> => (await fetch(`${env.ORIGIN_URL}/hits`)).json()

describe("webhook jobs in the SchedulerDO", { timeout: 20_000 }, () => {
  it("delivers a signed JSON request that the receiver verifies; the job's result is the answer", async () => {
    const { run, scheduler } = fresh(env.WEBHOOK_SCHEDULER)
    const id = await run((s) => s.runAfter("100 millis", Ping("/hooks/ok"), { n: 1 }))
    const job = await settled(scheduler, id)
    expect(job.state).toBe("success")
    expect(job.result).toEqual(Option.some({ status: 200, body: "{\"received\":true}", truncated: false }))
    const [delivery, ...more] = await deliveriesOf(id)
    expect(more).toEqual([])
    expect(delivery).toMatchObject({
      path: "/hooks/ok",
      method: "POST",
      body: "{\"n\":1}",
      headers: { authorization: "Bearer receiver", "content-type": "application/json", "x-lunora-attempt": "1" },
      verified: { jobId: id, attempt: 1 }
    })
  })

  it("is scheduled through the Promise facade too, with a per-run URL for the callback job", async () => {
    const instanceName = `webhook-facade-${crypto.randomUUID()}`
    const facade = createScheduler({ namespace: env.WEBHOOK_SCHEDULER, binding: "SELF_APP", instanceName })
    const { id } = await facade.runAfter(0, Webhook.CallbackJob, { via: "facade" }, {
      webhook: { url: `${env.ORIGIN_URL}/hooks/ok`, headers: { "x-from": "facade" } }
    })
    const { scheduler } = fresh(env.WEBHOOK_SCHEDULER, { binding: "SELF_APP" }, instanceName)
    expect(await settled(scheduler, id)).toMatchObject({ state: "success", functionPath: "webhook:callback" })
    expect(await deliveriesOf(id)).toEqual([
      expect.objectContaining({ body: "{\"via\":\"facade\"}", headers: expect.objectContaining({ "x-from": "facade" }) })
    ])
  })

  it("retries a receiver that answers 500 until it recovers, and dead-letters a 404 and a redirect at once", async () => {
    const { run, scheduler } = fresh(env.WEBHOOK_SCHEDULER)
    const flaky = await run((s) => s.runAfter(0, Ping("/hooks/flaky"), { n: 2 }, fast))
    const gone = await run((s) => s.runAfter(0, Ping("/hooks/gone"), { n: 3 }, fast))
    const moved = await run((s) => s.runAfter(0, Ping("/hooks/redirect"), { n: 4 }, fast))
    const before = (await hits())["POST /landing"] ?? 0
    expect(await settled(scheduler, flaky)).toMatchObject({ state: "success", attempt: 3 })
    expect((await deliveriesOf(flaky)).map((d) => typeof d.verified === "string" ? d.verified : d.verified.attempt))
      .toEqual([1, 2, 3])
    expect(await settled(scheduler, gone)).toMatchObject({
      state: "deadLettered",
      attempt: 1,
      lastError: Option.some("HTTP 404: no such hook")
    })
    expect(await settled(scheduler, moved)).toMatchObject({
      state: "deadLettered",
      attempt: 1,
      lastError: Option.some("HTTP 307: a redirect to /landing, not followed")
    })
    expect((await hits())["POST /landing"] ?? 0).toBe(before)
  })

  it("is refused by an object without a webhook secret, and by one whose allow-list does not hold the host", async () => {
    const unsigned = fresh(env.SCHEDULER)
    const refused = await unsigned.run((s) => Effect.flip(s.runAfter(0, Ping("/hooks/ok"), { n: 5 })))
    expect(refused._tag).toBe("InvalidOptions")
    expect(refused.message).toMatch(/no LUNORA_SCHEDULER_WEBHOOK_SECRET/)
    expect((await unsigned.run((s) => s.list())).jobs).toEqual([])

    const listed = fresh(env.ALLOW_LIST_WEBHOOK_SCHEDULER)
    const loopback = await listed.run((s) => Effect.flip(s.runAfter(0, Ping("/hooks/ok"), { n: 6 })))
    expect(loopback.message).toMatch(/loopback address: allowed only for local development/)
    const other = Webhook.make("hooks:other", { url: "https://other.example.com/x", payload: Schema.Unknown })
    expect((await listed.run((s) => Effect.flip(s.runAfter(0, other, {})))).message).toMatch(/not among the allowed webhook hosts/)
    expect((await listed.run((s) => s.list())).jobs).toEqual([])
    // a host of the list is taken (an hour ahead, then canceled: nothing is sent)
    const allowed = Webhook.make("hooks:partner", { url: "https://eu.partner.example/x", payload: Schema.Unknown })
    const id = await listed.run((s) => s.runAfter("1 hour", allowed, {}))
    expect(await listed.run((s) => s.cancel(id))).toMatchObject({ _tag: "Canceled" })
  })

  it("refuses a webhook target on a direct RPC call that skips the client's checks", async () => {
    const { run, stub } = fresh(env.WEBHOOK_SCHEDULER)
    const job = (webhook: unknown) => ({
      id: `job_0_${crypto.randomUUID().replaceAll("-", "").slice(0, 20)}`,
      functionPath: "hooks:ping",
      args: "{}",
      runAt: Date.now(),
      retryDelaysMs: [],
      deadLetter: true,
      key: null,
      shardKey: null,
      pool: null,
      own: { webhook }
    })
    const target = { binding: "SELF_APP" }
    const refusals = await Promise.all([
      { url: "https://10.0.0.1/", method: "POST", headers: {} },
      { url: "http://example.com/", method: "POST", headers: {} },
      { url: "https://example.com/", method: "GET", headers: {} },
      { url: "https://example.com/", method: "POST", headers: { "x-lunora-signature": "forged" } }
    ].map((webhook) => stub.schedule(target, [job(webhook)] as never).then(() => "accepted", (error: Error) => error.message)))
    expect(refusals).toEqual([
      expect.stringMatching(/^InvalidOptions: .*10\.0\.0\.1 is a private or reserved address/),
      expect.stringMatching(/^InvalidOptions: .*must be https/),
      expect.stringMatching(/^InvalidOptions: /),
      expect.stringMatching(/^InvalidOptions: .*set by the delivery itself/)
    ])
    expect((await run((s) => s.list())).jobs).toEqual([])
  })
})

describe("the admin API's webhook route", { timeout: 20_000 }, () => {
  const post = (instance: string, body: unknown, token = "test-admin-token") =>
    SELF.fetch(`https://app${Admin.prefix}/instances/${instance}/webhooks?scheduler=webhook`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(body)
    })

  it("schedules the documented shape, answers the job id, dedupes on the key, and delivers it", async () => {
    const instance = `webhook-route-${crypto.randomUUID()}`
    const request = {
      key: "invoice-42",
      // far enough ahead that the second post comes while the job is still pending (the key dedupes live jobs),
      // on a loaded machine too
      schedule: { oneOff: { executeAt: new Date(Date.now() + 1_500).toISOString() } },
      callback: { url: `${env.ORIGIN_URL}/hooks/ok`, method: "PUT" },
      payload: { invoiceId: "in_42" }
    }
    const created = await post(instance, request)
    expect(created.status).toBe(201)
    const first = (await created.json()) as { _tag: string; id: string }
    expect(first._tag).toBe("Created")
    const again = (await (await post(instance, request)).json()) as { _tag: string; id: string }
    expect(again).toMatchObject({ _tag: "Existing", id: first.id })

    const scheduler = Effect.runSync(Scheduler.make({ namespace: env.WEBHOOK_SCHEDULER, binding: "SELF_APP", instanceName: instance }))
    expect(await settled(scheduler, first.id)).toMatchObject({ state: "success", functionPath: "webhook:callback" })
    expect(await deliveriesOf(first.id)).toEqual([
      expect.objectContaining({ method: "PUT", body: "{\"invoiceId\":\"in_42\"}", verified: expect.objectContaining({ jobId: first.id }) })
    ])
  })

  it("answers 400 with the typed error for a URL it would not send to, and 401 without the token; nothing stored", async () => {
    const instance = `webhook-route-${crypto.randomUUID()}`
    const refused = await post(instance, {
      schedule: { oneOff: { executeAt: Date.now() } },
      callback: { url: "https://169.254.169.254/latest/meta-data" },
      payload: {}
    })
    expect(refused.status).toBe(400)
    expect(await refused.json()).toMatchObject({ _tag: "InvalidOptions", reason: expect.stringMatching(/private or reserved/) })
    const unauthorized = await post(instance, {
      schedule: { oneOff: { executeAt: Date.now() } },
      callback: { url: `${env.ORIGIN_URL}/hooks/ok` },
      payload: {}
    }, "wrong")
    expect(unauthorized.status).toBe(401)
    const scheduler = Effect.runSync(Scheduler.make({ namespace: env.WEBHOOK_SCHEDULER, binding: "SELF_APP", instanceName: instance }))
    expect((await Effect.runPromise(scheduler.list())).jobs).toEqual([])
  })
})
