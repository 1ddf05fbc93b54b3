/// <reference types="node" />
/**
 * The dispatch endpoint as a fetch handler in Node: what it refuses before it
 * runs anything. (Its round trips with a real `SchedulerDO` are in
 * test/workerd/.)
 */
import { describe, expect, it } from "@effect/vitest"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Effect, Layer, Logger, Redacted, Schema } from "effect"
import { CronSpec, Dispatch, Job, JobRegistry } from "@lunora/scheduler"
import { createCronTrigger } from "../src/cloudflare/createCronTrigger.js"
import { MAX_REQUEST_BYTES, REPLY_HEADER, sign, SIGNATURE_HEADER, verifyReply } from "../src/internal/runtime/wire.js"

const SECRET = "dispatch-test-secret"
const Echo = Job.make("test:echo", { payload: Schema.Struct({ text: Schema.String }), success: Schema.String })
let ran = 0
const endpoint = Dispatch.toFetchHandlerWith(
  Echo.toLayer(({ text }) => Effect.sync(() => (ran++, text))),
  { secret: SECRET }
)
const url = `https://app.example${Dispatch.path}`

const body = (id: string) =>
  JSON.stringify({ id, functionPath: "test:echo", args: { text: "hi" }, shardKey: null, scheduledFor: 0, attempt: 1, lease: id })

const signed = async (text: string, timestamp = Date.now()) => ({
  method: "POST",
  headers: { [SIGNATURE_HEADER]: await Effect.runPromise(sign(Redacted.make(SECRET), timestamp, text)) },
  body: text
})

describe("Dispatch endpoint", () => {
  it("stops reading a body that streams past the cap, and answers 413", async () => {
    let pulled = 0
    const total = 50 * 1024 * 1024
    const chunk = new Uint8Array(64 * 1024)
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulled >= total) return controller.close()
        pulled += chunk.byteLength
        controller.enqueue(chunk)
      }
    })
    const response = await endpoint(new Request(url, { method: "POST", body: stream, duplex: "half" } as RequestInit))
    expect(response.status).toBe(413)
    expect(pulled).toBeGreaterThan(MAX_REQUEST_BYTES)
    expect(pulled).toBeLessThan(MAX_REQUEST_BYTES + 1024 * 1024)
  })

  describe("on a server whose request is not the web's (Node's)", () => {
    /** The request as such a server hands it over: its source is not a `Request`; its body is read by the server. */
    const fromServer = (request: Request): HttpServerRequest.HttpServerRequest =>
      new Proxy(HttpServerRequest.fromWeb(request), {
        get: (target, key) => (key === "source" ? { server: "node" } : Reflect.get(target, key, target))
      })
    const handle = (request: Request) =>
      Dispatch.httpApp({ secret: SECRET }).pipe(
        Effect.provideService(HttpServerRequest.HttpServerRequest, fromServer(request)),
        Effect.provide(Echo.toLayer(({ text }) => Effect.succeed(text)).pipe(Layer.provideMerge(JobRegistry.layer))),
        Effect.map((response) => response.status),
        Effect.runPromise
      )

    it("runs a signed request read by the server", async () => {
      expect(await handle(new Request(url, await signed(body("job_0_dispatchnode00001"))))).toBe(200)
    })

    it("answers 413 to a body past the cap, however it was sent", async () => {
      const text = JSON.stringify({ blob: "é".repeat(MAX_REQUEST_BYTES / 2 + 1) })
      expect(await handle(new Request(url, await signed(text)))).toBe(413)
    })
  })

  it("runs a signed request once, with a signed answer; the same request again gets 409 and runs nothing", async () => {
    const text = body("job_0_dispatchonce00001")
    const init = await signed(text)
    const before = ran
    const first = await endpoint(new Request(url, init))
    expect(first.status).toBe(200)
    const answer = await first.text()
    expect(answer).toBe(JSON.stringify({ result: "\"hi\"" }))
    const mac = init.headers[SIGNATURE_HEADER].split("v1=")[1]!
    expect(await Effect.runPromise(verifyReply(Redacted.make(SECRET), mac, first.headers.get(REPLY_HEADER), 200, answer))).toBe(true)
    expect(await Effect.runPromise(verifyReply(Redacted.make("other"), mac, first.headers.get(REPLY_HEADER), 200, answer))).toBe(false)
    expect(await Effect.runPromise(verifyReply(Redacted.make(SECRET), mac, first.headers.get(REPLY_HEADER), 500, answer))).toBe(false)
    for (let i = 0; i < 3; i++) {
      const replay = await endpoint(new Request(url, init))
      expect(replay.status).toBe(409)
    }
    expect(ran - before).toBe(1)
  })

  it("refuses a signature more than 30 s ahead or 5 minutes old, and takes a little skew", async () => {
    const text = body("job_0_dispatchskew00001")
    expect((await endpoint(new Request(url, await signed(text, Date.now() + 60_000)))).status).toBe(401)
    expect((await endpoint(new Request(url, await signed(text, Date.now() - 5 * 60_000 - 1_000)))).status).toBe(401)
    expect((await endpoint(new Request(url, await signed(text, Date.now() + 10_000)))).status).toBe(200)
  })
})

describe("Dispatch endpoint with declared crons", () => {
  const Cleanup = Job.make("test:cleanup", { payload: Schema.Struct({ days: Schema.Number }) })
  const declared = [
    CronSpec.cronJobs().daily("nightly echo", { hourUTC: 2, minuteUTC: 0 }, "test:ecko", { text: "typo'd" }),
    createCronTrigger({ schedule: "0 3 * * *", fn: Cleanup, args: { days: 30 } }),
    createCronTrigger({ cron: "0 4 * * *", functionPath: "test:echo", args: { text: "known" } })
  ]
  const refusal = "no handler is registered for test:ecko (cron \"nightly echo\"), test:cleanup (trigger \"0 3 * * *\"): " +
    "the dispatch endpoint refuses every job until each declared cron has a handler"
  const echoes = Echo.toLayer(({ text }) => Effect.sync(() => (ran++, text)))

  it("answers every signed dispatch 500 naming each declared path without a handler, logs it once, and runs nothing", async () => {
    const logs: Array<string> = []
    const capture = Logger.replace(
      Logger.defaultLogger,
      Logger.make(({ logLevel, message }) => void logs.push(`${logLevel.label} ${[message].flat().join(" ")}`))
    )
    const handler = Dispatch.toFetchHandler(echoes.pipe(Layer.provideMerge(JobRegistry.layer), Layer.provideMerge(capture)), {
      secret: SECRET,
      crons: declared
    })
    const before = ran
    for (const id of ["job_0_dispatchcron00001", "job_0_dispatchcron00002"]) {
      const init = await signed(body(id))
      const response = await handler(new Request(url, init))
      expect(response.status).toBe(500)
      const answer = await response.text()
      expect(JSON.parse(answer)).toStrictEqual({ error: refusal })
      // the endpoint's own answer, so the SchedulerDO counts it as a failed attempt and retries it
      const mac = init.headers[SIGNATURE_HEADER].split("v1=")[1]!
      expect(await Effect.runPromise(verifyReply(Redacted.make(SECRET), mac, response.headers.get(REPLY_HEADER), 500, answer)))
        .toBe(true)
    }
    expect(ran - before).toBe(0)
    expect(logs.filter((line) => line.includes("no handler is registered"))).toStrictEqual([`ERROR ${refusal}`])
    // an unsigned request is still refused for its signature
    expect((await handler(new Request(url, { method: "POST", body: body("job_0_dispatchcron00003") }))).status).toBe(401)
  })

  it("answers as usual when every declared path has a handler", async () => {
    const handler = Dispatch.toFetchHandlerWith(
      Layer.mergeAll(echoes, Cleanup.toLayer(() => Effect.void), Job.make("test:ecko", { payload: Schema.Unknown }).toLayer(() => Effect.void)),
      { secret: SECRET, crons: declared }
    )
    const before = ran
    expect((await handler(new Request(url, await signed(body("job_0_dispatchcron00004"))))).status).toBe(200)
    expect(ran - before).toBe(1)
  })

  it("checks each handler layer it is given: one endpoint over a layer without the handler and one with it", async () => {
    const app = Dispatch.httpApp({ secret: SECRET, crons: [declared[1]!] })
    const status = (handlers: Layer.Layer<never, never, JobRegistry.JobRegistry>, id: string) =>
      Effect.promise(() => signed(body(id))).pipe(
        Effect.flatMap((init) =>
          app.pipe(Effect.provideService(HttpServerRequest.HttpServerRequest, HttpServerRequest.fromWeb(new Request(url, init))))
        ),
        Effect.provide(handlers.pipe(Layer.provideMerge(JobRegistry.layer))),
        Effect.provide(Logger.remove(Logger.defaultLogger)),
        Effect.map((response) => response.status),
        Effect.runPromise
      )
    expect(await status(echoes, "job_0_dispatchcron00005")).toBe(500)
    expect(await status(Layer.merge(echoes, Cleanup.toLayer(() => Effect.void)), "job_0_dispatchcron00006")).toBe(200)
  })

  it("refuses, when it is made, a crons option that holds neither crons nor triggers", () => {
    expect(() => Dispatch.httpApp({ secret: SECRET, crons: [{ crons: ["0 3 * * *"], dispatcher: () => {} }] as never }))
      .toThrow(TypeError)
  })
})
