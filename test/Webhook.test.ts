/// <reference types="node" />
/**
 * Webhook jobs in the test layer, delivered over real HTTP to a Node
 * receiver on loopback: the signed request, `Webhook.verify`, outcomes by
 * status (retried, dead-lettered at once, redirects not followed), the
 * response cap, and the refusals (URL, method, headers) before anything is
 * stored.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Option, Redacted, Schedule, Schema } from "effect"
import { createServer, type IncomingMessage, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { CronSpec, Scheduler, Webhook } from "@lunora/scheduler"
import * as TestScheduler from "@lunora/scheduler/testing"
import { webhookUrlProblem } from "../src/internal/domain/targets.js"
import { deliverWebhook } from "../src/internal/runtime/webhook.js"

const SECRET = "webhook-test-secret"

interface Received {
  readonly path: string
  readonly method: string
  readonly headers: IncomingMessage["headers"]
  readonly body: string
  readonly verified: Webhook.Delivery | string
}
const received: Array<Received> = []
const hits = new Map<string, number>()
let server: Server
let origin = ""

beforeAll(async () => {
  server = createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", async () => {
      const body = Buffer.concat(chunks).toString("utf8")
      const path = request.url ?? ""
      const hit = (hits.get(path) ?? 0) + 1
      hits.set(path, hit)
      const headers = new Headers(Object.entries(request.headers).map(([k, v]) => [k, String(v)]))
      const verified = await Webhook.verify({ headers, text: async () => body }, SECRET).catch((error) => String(error.message))
      received.push({ path, method: request.method ?? "", headers: request.headers, body, verified })
      if (path === "/ok") return response.writeHead(201, { "content-type": "application/json" }).end(`{"seen":${hit}}`)
      if (path === "/flaky") return hit < 3 ? response.writeHead(503).end("busy") : response.writeHead(200).end("ok")
      if (path === "/throttled") return hit < 2 ? response.writeHead(429).end("slow down") : response.writeHead(204).end()
      if (path === "/gone") return response.writeHead(404).end("no such hook")
      if (path === "/redirect") return response.writeHead(302, { location: `${origin}/landing` }).end()
      if (path === "/big") return response.writeHead(200).end("x".repeat(Webhook.maxResponseBytes + 5_000))
      response.writeHead(200).end("landed")
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

const Invoice = Schema.Struct({ invoiceId: Schema.String })
const hook = (path: string, options: { readonly method?: Webhook.Method } = {}) =>
  Webhook.make("billing:invoicePaid", {
    url: `${origin}${path}`,
    headers: { authorization: "Bearer receiver-token" },
    payload: Invoice,
    ...options
  })

const TestLayer = () => TestScheduler.layer({ webhooks: { secret: SECRET } })
const now = { retry: { maxAttempts: 4, backoff: "linear", baseMs: 0 } } as const

const deliveriesTo = (path: string) => received.filter((r) => r.path === path)

describe("webhook jobs in the test layer", () => {
  it.live("delivers the payload as a signed JSON request with its headers; the result is the status and body", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const id = yield* scheduler.runAfter(0, hook("/ok", { method: "PUT" }), { invoiceId: "in_1" })
      const job = yield* scheduler.await(id)
      expect(job.state).toBe("success")
      expect(job.result).toEqual(Option.some({ status: 201, body: "{\"seen\":1}", truncated: false }))
      const [delivery] = deliveriesTo("/ok")
      expect(delivery).toMatchObject({ method: "PUT", body: "{\"invoiceId\":\"in_1\"}" })
      expect(delivery!.headers).toMatchObject({
        "content-type": "application/json",
        authorization: "Bearer receiver-token",
        "x-lunora-job-id": id,
        "x-lunora-attempt": "1"
      })
      expect(delivery!.verified).toMatchObject({ jobId: id, attempt: 1, payload: { invoiceId: "in_1" } })
    }).pipe(Effect.provide(TestLayer())))

  it.live("retries 5xx and 429 until the receiver recovers, each attempt signed anew", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const flaky = yield* scheduler.runAfter(0, hook("/flaky"), { invoiceId: "in_2" }, now)
      const throttled = yield* scheduler.runAfter(0, hook("/throttled"), { invoiceId: "in_3" }, now)
      expect((yield* scheduler.await(flaky)).attempt).toBe(3)
      expect((yield* scheduler.await(throttled)).attempt).toBe(2)
      expect(deliveriesTo("/flaky").map((d) => (d.verified as Webhook.Delivery).attempt)).toEqual([1, 2, 3])
    }).pipe(Effect.provide(TestLayer())))

  it.live("dead-letters a 404 and a redirect at once, and never follows the redirect", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const gone = yield* scheduler.runAfter(0, hook("/gone"), { invoiceId: "in_4" }, now)
      const moved = yield* scheduler.runAfter(0, hook("/redirect"), { invoiceId: "in_5" }, now)
      for (const [id, error] of [[gone, "HTTP 404: no such hook"], [moved, `HTTP 302: a redirect to ${origin}/landing, not followed`]]) {
        const exit = yield* Effect.exit(scheduler.await(id!))
        expect(Exit.isFailure(exit)).toBe(true)
        const job = yield* scheduler.get(id!)
        expect({ state: job.state, attempt: job.attempt, lastError: job.lastError }).toEqual({
          state: "deadLettered",
          attempt: 1,
          lastError: Option.some(error)
        })
      }
      expect(hits.get("/landing")).toBeUndefined()
    }).pipe(Effect.provide(TestLayer())))

  it.live("keeps the first 16 KiB of an answer, marked truncated", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const job = yield* scheduler.await(yield* scheduler.runAfter(0, hook("/big"), { invoiceId: "in_6" }))
      const result = Option.getOrThrow(job.result) as Schema.Schema.Type<typeof Webhook.Response>
      expect({ length: result.body.length, truncated: result.truncated }).toEqual({ length: Webhook.maxResponseBytes, truncated: true })
    }).pipe(Effect.provide(TestLayer())))

  it.live("takes the URL per run for a webhook defined without one (the callback job), its headers merged", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const id = yield* scheduler.runAfter(0, Webhook.CallbackJob, { any: ["json"] }, {
        webhook: { url: `${origin}/ok?from=callback`, headers: { "x-tenant": "acme" } }
      })
      expect((yield* scheduler.await(id)).functionPath).toBe("webhook:callback")
      expect(deliveriesTo("/ok?from=callback")[0]).toMatchObject({ body: "{\"any\":[\"json\"]}", headers: { "x-tenant": "acme" } })
    }).pipe(Effect.provide(TestLayer())))
})

describe("a cron whose job is a webhook", () => {
  it.live("delivers each fire to the webhook's URL; a webhook without a URL cannot be a cron's job", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const fired = yield* Effect.retry(
        Effect.flatMap(scheduler.list({ functionPath: "billing:invoicePaid" }), ({ jobs }) =>
          jobs.length > 0 && jobs[0]!.state === "success" ? Effect.succeed(jobs[0]!) : Effect.fail("not yet")),
        { times: 100, schedule: Schedule.spaced("20 millis") }
      )
      expect(fired.key).toEqual(Option.some(expect.stringMatching(/^cron:invoice ping:/)))
      expect(deliveriesTo("/ok?from=cron")[0]).toMatchObject({ body: "{\"invoiceId\":\"cron\"}", verified: { jobId: fired.id } })
      expect(() => CronSpec.cronJobs().interval("no url", { hours: 1 }, Webhook.CallbackJob, {})).toThrow(/has no URL/)
    }).pipe(
      Effect.provide(TestScheduler.layer({
        webhooks: { secret: SECRET },
        crons: CronSpec.cronJobs().interval("invoice ping", { hours: 1 }, hook("/ok?from=cron"), { invoiceId: "cron" }, {
          firstRun: "immediately"
        })
      }))
    ))
})

describe("webhook refusals: a typed error, nothing stored", () => {
  it.each([
    ["http to a public host", "http://example.com/hook", /must be https/],
    ["a private address", "https://10.1.2.3/hook", /private or reserved/],
    ["a link-local address (cloud metadata)", "https://169.254.169.254/latest", /private or reserved/],
    ["a private address written in hex", "https://0xa9fea9fe/", /private or reserved/],
    ["an IPv6 unique-local address", "https://[fd00::1]/", /private or reserved/],
    ["an .internal name", "https://db.internal/", /not a public host name/],
    ["credentials in the URL", "https://user:pw@example.com/", /credentials/],
    ["not a URL", "hook", /is not a URL/]
  ])("Webhook.make refuses %s", (_, url, reason) => {
    expect(() => Webhook.make("hooks:bad", { url, payload: Schema.Unknown })).toThrow(reason)
  })

  it("Webhook.make refuses a header the delivery sets, and one with a line break", () => {
    expect(() => Webhook.make("hooks:bad", { url: "https://example.com", headers: { "X-Lunora-Job-Id": "x" }, payload: Schema.Unknown }))
      .toThrow(/set by the delivery itself/)
    expect(() => Webhook.make("hooks:bad", { url: "https://example.com", headers: { a: "b\r\nc: d" }, payload: Schema.Unknown }))
      .toThrow(/line break/)
    expect(() => Webhook.make("hooks:bad", { url: "https://example.com", method: "GET" as never, payload: Schema.Unknown }))
      .toThrow(/POST/)
  })

  it.effect("scheduling refuses a bad per-run URL, a callback without a URL, and the option on a plain job, storing nothing", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const refusals = [
        yield* Effect.flip(scheduler.runAfter(0, Webhook.CallbackJob, {}, { webhook: { url: "https://192.168.1.1/" } })),
        yield* Effect.flip(scheduler.runAfter(0, Webhook.CallbackJob, {})),
        yield* Effect.flip(scheduler.runAfter(0, "app:plain", {}, { webhook: { url: "https://example.com" } }))
      ]
      expect(refusals.map((error) => [error._tag, error.message])).toEqual([
        ["InvalidOptions", expect.stringMatching(/192\.168\.1\.1 is a private or reserved address/)],
        ["InvalidOptions", expect.stringMatching(/has no URL/)],
        ["InvalidOptions", expect.stringMatching(/for webhook jobs \(Webhook\.make\) only/)]
      ])
      expect((yield* scheduler.list()).jobs).toEqual([])
    }).pipe(Effect.provide(TestScheduler.layer())))

  it("a stored webhook whose URL the policy no longer allows fails without a retry, and nothing is sent", async () => {
    const before = received.length
    const target = { url: `${origin}/ok`, method: "POST", headers: {} } as const
    const delivery = { id: "job_0_00000000000000000000", attempt: 1, args: "{}" }
    expect(await deliverWebhook(Redacted.make(SECRET), { allowLoopback: false }, target, delivery, Date.now(), 5_000))
      .toEqual({ ok: false, retryable: false, error: expect.stringMatching(/^the webhook was not sent: 127\.0\.0\.1 is a loopback address/) })
    expect(await deliverWebhook(undefined, { allowLoopback: true }, target, delivery, Date.now(), 5_000))
      .toMatchObject({ ok: false, retryable: false, error: expect.stringMatching(/LUNORA_SCHEDULER_WEBHOOK_SECRET is not set/) })
    expect(received.length).toBe(before)
  })

  it("the scheduler's own policy: loopback only when allowed, and an allow-list of hosts", () => {
    expect(webhookUrlProblem("http://127.0.0.1:8787/hook", { allowLoopback: false })).toMatch(/loopback/)
    expect(webhookUrlProblem("https://localhost/hook", { allowLoopback: true })).toBeUndefined()
    const hosts = ["api.example.com", "*.partner.example"]
    expect(webhookUrlProblem("https://api.example.com/x", { allowLoopback: false, hosts })).toBeUndefined()
    expect(webhookUrlProblem("https://eu.partner.example/x", { allowLoopback: false, hosts })).toBeUndefined()
    expect(webhookUrlProblem("https://partner.example/x", { allowLoopback: false, hosts })).toMatch(/not among the allowed/)
    expect(webhookUrlProblem("https://evil.example.com/x", { allowLoopback: false, hosts })).toMatch(/not among the allowed/)
  })
})

describe("Webhook.verify", () => {
  const deliveryOf = async (body: string, at: number, secret = SECRET) => {
    // a delivery as the scheduler signs it, captured from the test layer's request
    const captured = await Effect.runPromise(
      Effect.gen(function*() {
        const scheduler = yield* Scheduler.Scheduler
        return yield* scheduler.await(yield* scheduler.runAfter(0, hook("/ok"), JSON.parse(body)))
      }).pipe(Effect.provide(TestScheduler.layer({ webhooks: { secret } })), Effect.scoped)
    )
    const delivery = received.find((r) => r.headers["x-lunora-job-id"] === captured.id)!
    return { headers: new Headers(Object.entries(delivery.headers).map(([k, v]) => [k, String(v)])), body: delivery.body, at }
  }

  it("refuses another secret, a changed body, a changed attempt and a stale signature", async () => {
    const { body, headers } = await deliveryOf("{\"invoiceId\":\"in_v\"}", Date.now())
    const request = (h: Headers, b: string) => ({ headers: h, text: async () => b })
    await expect(Webhook.verify(request(headers, body), SECRET)).resolves.toMatchObject({ attempt: 1 })
    await expect(Webhook.verify(request(headers, body), "another-secret")).rejects.toThrow(/does not match/)
    await expect(Webhook.verify(request(headers, "{\"invoiceId\":\"in_x\"}"), SECRET)).rejects.toThrow(/does not match/)
    const bumped = new Headers(headers)
    bumped.set("x-lunora-attempt", "2")
    await expect(Webhook.verify(request(bumped, body), SECRET)).rejects.toThrow(/does not match/)
    await expect(Webhook.verify(request(headers, body), SECRET, Date.now() + 6 * 60_000)).rejects.toThrow(/tolerance/)
    const unsigned = new Headers(headers)
    unsigned.delete("x-lunora-signature")
    await expect(Webhook.verify(request(unsigned, body), SECRET)).rejects.toBeInstanceOf(Webhook.InvalidDelivery)
  })
})
