/// <reference types="node" />
/**
 * The dispatch endpoint as a fetch handler in Node: what it refuses before it
 * runs anything. (Its round trips with a real `SchedulerDO` are in
 * test/workerd/.)
 */
import { describe, expect, it } from "@effect/vitest"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Effect, Layer, Redacted, Schema } from "effect"
import { Dispatch, Job, JobRegistry } from "@lunora/scheduler"
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
