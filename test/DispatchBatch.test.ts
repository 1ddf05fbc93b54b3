/// <reference types="node" />
/**
 * Batched dispatch (wire version 2) at the endpoint, as a fetch handler in
 * Node: what it refuses as a whole, and the signed line per job it streams.
 */
import { describe, expect, it } from "@effect/vitest"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Deferred, Effect, HashMap, Layer, Logger, Option, Redacted, Schema, Tracer } from "effect"
import { CronSpec, Dispatch, Job, JobRegistry } from "@lunora/scheduler"
import {
  BATCH_HEADER,
  MAX_BATCH_REQUEST_BYTES,
  MAX_REQUEST_BYTES,
  outcomeVerified,
  parseOutcomeLine,
  REPLY_HEADER,
  sign,
  SIGNATURE_HEADER,
  verifyReply
} from "../src/internal/runtime/wire.js"

const SECRET = "dispatch-batch-test-secret"
const secret = Redacted.make(SECRET)

const Echo = Job.make("test:echo", { payload: Schema.Struct({ text: Schema.String }), success: Schema.String })
const Fail = Job.make("test:fail", { payload: Schema.Struct({ why: Schema.String }) })
const Die = Job.make("test:die", { payload: Schema.Unknown })
const Throw = Job.make("test:throw", { payload: Schema.Unknown })
const Slow = Job.make("test:slow", { payload: Schema.Struct({ gate: Schema.String }), success: Schema.String })

/** Every handler run, by function path and job id. */
const runs: Array<string> = []
/** The gates `test:slow` waits on, by name, and the ones it is blocked on now. */
const gates = new Map<string, Deferred.Deferred<void>>()
const blocked = new Set<string>()
const interrupted = new Set<string>()

const handlers = Layer.mergeAll(
  Echo.toLayer(({ text }, { id }) => Effect.sync(() => (runs.push(`test:echo ${id}`), text))),
  Fail.toLayer(({ why }, { id }) => Effect.suspend(() => (runs.push(`test:fail ${id}`), Effect.fail(new Error(why))))),
  Die.toLayer((_, { id }) => Effect.suspend(() => (runs.push(`test:die ${id}`), Effect.dieMessage("kaboom")))),
  Throw.toLayer((_, { id }): Effect.Effect<void> => {
    runs.push(`test:throw ${id}`)
    throw new Error("thrown outside an Effect")
  }),
  Slow.toLayer(({ gate }, { id }) =>
    Effect.gen(function*() {
      runs.push(`test:slow ${id}`)
      blocked.add(gate)
      yield* Deferred.await(gates.get(gate)!)
      blocked.delete(gate)
      return gate
    }).pipe(Effect.onInterrupt(() => Effect.sync(() => interrupted.add(gate)))))
)
const quiet = Logger.remove(Logger.defaultLogger)
const endpoint = Dispatch.toFetchHandlerWith(Layer.merge(handlers, quiet), { secret: SECRET })
const url = `https://app.example${Dispatch.batchPath}`

let leases = 0

const job = (id: string, functionPath = "test:echo", args: unknown = { text: "hi" }) => ({
  id,
  functionPath,
  args,
  shardKey: null,
  key: null,
  pool: null,
  scheduledFor: 0,
  attempt: 1
})

const batch = (jobs: ReadonlyArray<unknown>, fields: Record<string, unknown> = {}) =>
  JSON.stringify({ v: 2, lease: `lease-${++leases}`, scheduler: null, jobs, ...fields })

const signed = async (text: string, timestamp = Date.now()) => ({
  method: "POST",
  headers: { [SIGNATURE_HEADER]: await Effect.runPromise(sign(secret, timestamp, text)) },
  body: text
})

const macOf = (init: { readonly headers: Record<string, string> }) => init.headers[SIGNATURE_HEADER]!.split("v1=")[1]!

/** The answer's lines, each parsed and checked against the request's MAC. */
const linesOf = async (response: Response, mac: string) => {
  const text = await response.text()
  expect(text.endsWith("\n")).toBe(true)
  return Promise.all(text.slice(0, -1).split("\n").map(async (raw) => {
    const line = parseOutcomeLine(raw)
    expect(line, raw).toBeDefined()
    return { ...line!, verified: await outcomeVerified(secret, mac, line!), answer: JSON.parse(line!.body) }
  }))
}

/** A whole-request answer, in the single dispatch's form: its status, and its body once its signature is checked. */
const refusal = async (response: Response, mac: string) => {
  const text = await response.text()
  expect(await Effect.runPromise(verifyReply(secret, mac, response.headers.get(REPLY_HEADER), response.status, text))).toBe(true)
  expect(response.headers.get(BATCH_HEADER)).toBeNull()
  return { status: response.status, error: (JSON.parse(text) as { error: string }).error }
}

const ranFor = (ids: ReadonlyArray<string>) => runs.filter((run) => ids.some((id) => run.endsWith(` ${id}`)))

/** Fails, rather than hangs, when `promise` has not settled within `ms`. */
const within = <A>(promise: Promise<A>, ms: number, what: string): Promise<A> =>
  Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms))])

describe("Dispatch batch endpoint", () => {
  it("runs every job and answers one signed line per job with the status a single dispatch gets", async () => {
    const ids = ["job_0_batchmixed000001", "job_0_batchmixed000002", "job_0_batchmixed000003", "job_0_batchmixed000004", "job_0_batchmixed000005", "job_0_batchmixed000006"]
    const jobs = [
      job(ids[0]!, "test:echo", { text: "first" }),
      job(ids[1]!, "test:echo", { text: 42 }),
      job(ids[2]!, "test:nowhere", {}),
      job(ids[3]!, "test:fail", { why: "upstream down" }),
      job(ids[4]!, "test:die", null),
      job(ids[5]!, "test:throw", null)
    ]
    const init = await signed(batch(jobs))
    const response = await endpoint(new Request(url, init))
    expect(response.status).toBe(200)
    expect(response.headers.get(BATCH_HEADER)).toBe("2")
    expect(response.headers.get("content-type")).toBe("text/plain; charset=utf-8")
    const lines = await linesOf(response, macOf(init))
    expect(lines.map((line) => line.index).sort()).toStrictEqual([0, 1, 2, 3, 4, 5])
    expect(lines.every((line) => line.verified)).toBe(true)
    const byIndex = new Map(lines.map((line) => [line.index, line]))
    expect(byIndex.get(0)!.status).toBe(200)
    expect(byIndex.get(0)!.answer).toStrictEqual({ result: "\"first\"" })
    expect(byIndex.get(1)!.status).toBe(422)
    expect(byIndex.get(1)!.answer.error).toContain("payload does not match the Schema of test:echo")
    expect(byIndex.get(2)!.status).toBe(422)
    expect(byIndex.get(2)!.answer).toStrictEqual({ error: "no handler is registered for test:nowhere" })
    expect(byIndex.get(3)!.status).toBe(500)
    expect(byIndex.get(3)!.answer.error).toContain("upstream down")
    expect(byIndex.get(4)!.status).toBe(500)
    expect(byIndex.get(4)!.answer.error).toContain("kaboom")
    expect(byIndex.get(5)!.status).toBe(500)
    expect(byIndex.get(5)!.answer.error).toContain("thrown outside an Effect")
    // the handlers that exist ran, once each; the payload that failed its Schema ran nothing
    expect(ranFor(ids).sort()).toStrictEqual([
      `test:die ${ids[4]}`,
      `test:echo ${ids[0]}`,
      `test:fail ${ids[3]}`,
      `test:throw ${ids[5]}`
    ])

    // a line counts only for its own job, status, body and request
    const first = byIndex.get(0)!
    const tampered = [
      { ...first, body: JSON.stringify({ result: "\"forged\"" }) },
      { ...first, status: 500 },
      { ...first, index: 1 }
    ]
    for (const line of tampered) expect(await outcomeVerified(secret, macOf(init), line)).toBe(false)
    expect(await outcomeVerified(secret, "0".repeat(64), first)).toBe(false)
    expect(await outcomeVerified(Redacted.make("other"), macOf(init), first)).toBe(false)
  })

  it("streams each line as its job ends: a slow handler holds no other job's line", async () => {
    const gate = "stream-gate"
    gates.set(gate, Effect.runSync(Deferred.make<void>()))
    const ids = ["job_0_batchstream00001", "job_0_batchstream00002", "job_0_batchstream00003"]
    const init = await signed(batch([
      job(ids[0]!, "test:slow", { gate }),
      job(ids[1]!, "test:echo", { text: "fast" }),
      job(ids[2]!, "test:nowhere", {})
    ]))
    const response = await within(endpoint(new Request(url, init)), 2_000, "the answer's head")
    expect(response.status).toBe(200)
    const reader = response.body!.getReader()
    const decoder = new TextDecoder()
    let text = ""
    while (text.split("\n").length - 1 < 2) {
      const { done, value } = await within(reader.read(), 2_000, "the fast jobs' lines")
      expect(done).toBe(false)
      text += decoder.decode(value, { stream: true })
    }
    // both fast lines are here while the slow handler is still blocked
    expect(blocked.has(gate)).toBe(true)
    const early = text.slice(0, -1).split("\n").map((raw) => parseOutcomeLine(raw)!)
    expect(early.map((line) => [line.index, line.status]).sort()).toStrictEqual([[1, 200], [2, 422]])
    for (const line of early) expect(await outcomeVerified(secret, macOf(init), line)).toBe(true)

    await Effect.runPromise(Deferred.succeed(gates.get(gate)!, undefined))
    for (;;) {
      const { done, value } = await within(reader.read(), 2_000, "the slow job's line")
      if (done) break
      text += decoder.decode(value, { stream: true })
    }
    const all = text.slice(0, -1).split("\n").map((raw) => parseOutcomeLine(raw)!)
    expect(all.map((line) => line.index)).toStrictEqual([...early.map((line) => line.index), 0])
    expect(all[2]!.status).toBe(200)
    expect(JSON.parse(all[2]!.body)).toStrictEqual({ result: JSON.stringify(gate) })
    expect(await outcomeVerified(secret, macOf(init), all[2]!)).toBe(true)
  })

  it("runs a job to its end when the answer is dropped, as a single dispatch does", async () => {
    const gate = "dropped-gate"
    gates.set(gate, Effect.runSync(Deferred.make<void>()))
    const init = await signed(batch([job("job_0_batchdropped0001", "test:slow", { gate }), job("job_0_batchdropped0002")]))
    const response = await within(endpoint(new Request(url, init)), 2_000, "the answer's head")
    const reader = response.body!.getReader()
    await within(reader.read(), 2_000, "the fast job's line")
    expect(blocked.has(gate)).toBe(true)
    let cancelled = false
    const cancelling = reader.cancel().then(() => void (cancelled = true))
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(blocked.has(gate)).toBe(true)
    expect(interrupted.has(gate)).toBe(false)
    await Effect.runPromise(Deferred.succeed(gates.get(gate)!, undefined))
    await within(cancelling, 2_000, "the cancellation")
    expect(cancelled).toBe(true)
    expect(blocked.has(gate)).toBe(false)
    expect(interrupted.has(gate)).toBe(false)
  })

  it("refuses an unsigned or stale batch with 401 and runs nothing", async () => {
    const id = "job_0_batchunsigned001"
    const text = batch([job(id)])
    const unsignedResponse = await endpoint(new Request(url, { method: "POST", body: text }))
    expect(unsignedResponse.status).toBe(401)
    expect(unsignedResponse.headers.get(REPLY_HEADER)).toBeNull()
    const wrongKey = await Effect.runPromise(sign(Redacted.make("other"), Date.now(), text))
    expect((await endpoint(new Request(url, { method: "POST", headers: { [SIGNATURE_HEADER]: wrongKey }, body: text }))).status)
      .toBe(401)
    expect((await endpoint(new Request(url, await signed(text, Date.now() - 6 * 60_000)))).status).toBe(401)
    // signed over another body
    const other = await signed(batch([job(id)]))
    expect((await endpoint(new Request(url, { ...other, body: text }))).status).toBe(401)
    expect(ranFor([id])).toStrictEqual([])
  })

  it("answers a replayed batch 409, signed, and runs its jobs once", async () => {
    const ids = ["job_0_batchreplay00001", "job_0_batchreplay00002"]
    const init = await signed(batch(ids.map((id) => job(id))))
    const first = await endpoint(new Request(url, init))
    expect(first.status).toBe(200)
    expect((await linesOf(first, macOf(init))).map((line) => line.status)).toStrictEqual([200, 200])
    for (let i = 0; i < 2; i++) {
      expect(await refusal(await endpoint(new Request(url, init)), macOf(init))).toStrictEqual({
        status: 409,
        error: "a replayed request: nothing ran"
      })
    }
    expect(ranFor(ids).sort()).toStrictEqual(ids.map((id) => `test:echo ${id}`))
  })

  it("answers a malformed batch 400, signed, and runs nothing", async () => {
    const id = "job_0_batchmalformed01"
    const many = Array.from({ length: Dispatch.maxBatchJobs + 1 }, (_, i) => job(`job_0_batchmany${String(i).padStart(6, "0")}`))
    const bodies = [
      batch([job(id)], { v: 3 }),
      batch([job(id)], { v: 1 }),
      batch([]),
      batch(many),
      batch([{ ...job(id), attempt: 0 }]),
      batch([job(id)], { lease: null }),
      JSON.stringify({ id, functionPath: "test:echo", args: { text: "hi" }, shardKey: null, scheduledFor: 0, attempt: 1 }),
      "not json"
    ]
    for (const text of bodies) {
      const init = await signed(text)
      const answer = await refusal(await endpoint(new Request(url, init)), macOf(init))
      expect(answer.status, text.slice(0, 80)).toBe(400)
      expect(answer.error.startsWith("malformed batch body: ")).toBe(true)
    }
    expect(ranFor([id, ...many.map((job) => job.id)])).toStrictEqual([])
  })

  it("takes a batch over the single-dispatch cap, and answers 413 past the batch cap, unread", async () => {
    const big = "x".repeat(MAX_REQUEST_BYTES / 2)
    const ids = ["job_0_batchbig00000001", "job_0_batchbig00000002", "job_0_batchbig00000003"]
    const text = batch(ids.map((id) => job(id, "test:echo", { text: big })))
    expect(text.length).toBeGreaterThan(MAX_REQUEST_BYTES)
    const init = await signed(text)
    const response = await endpoint(new Request(url, init))
    expect(response.status).toBe(200)
    expect((await linesOf(response, macOf(init))).map((line) => line.status)).toStrictEqual([200, 200, 200])

    const over = await signed(JSON.stringify({ blob: "y".repeat(MAX_BATCH_REQUEST_BYTES) }))
    expect((await endpoint(new Request(url, over))).status).toBe(413)

    let pulled = 0
    const chunk = new Uint8Array(64 * 1024)
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulled >= 50 * 1024 * 1024) return controller.close()
        pulled += chunk.byteLength
        controller.enqueue(chunk)
      }
    })
    const streamed = await endpoint(new Request(url, { method: "POST", body: stream, duplex: "half" } as RequestInit))
    expect(streamed.status).toBe(413)
    expect(pulled).toBeGreaterThan(MAX_BATCH_REQUEST_BYTES)
    expect(pulled).toBeLessThan(MAX_BATCH_REQUEST_BYTES + 1024 * 1024)
  })

  it("answers 405 to a method other than POST, unsigned", async () => {
    const response = await endpoint(new Request(url, { method: "GET" }))
    expect(response.status).toBe(405)
    expect(response.headers.get(REPLY_HEADER)).toBeNull()
  })

  describe("with the SchedulerDO namespace", () => {
    const calls: Array<readonly [string, ReadonlyArray<readonly [string, number]>]> = []
    let confirm: () => Promise<boolean> = () => Promise.resolve(true)
    const namespace: Dispatch.ConfirmingNamespace = {
      idFromString: (id) => {
        if (!id.startsWith("do-")) throw new TypeError("Invalid Durable Object ID")
        return id
      },
      get: () => ({
        confirmDispatch: () => Promise.reject(new Error("a batch confirms once, with confirmDispatches")),
        confirmDispatches: (lease: string, jobs: ReadonlyArray<readonly [string, number]>) => (calls.push([lease, jobs]), confirm())
      })
    }
    const confirming = Dispatch.toFetchHandlerWith(Layer.merge(handlers, quiet), { secret: SECRET, namespace })

    it("confirms the batch once with its lease and [id, attempt] pairs, then runs it", async () => {
      calls.length = 0
      confirm = () => Promise.resolve(true)
      const ids = ["job_0_batchconfirm0001", "job_0_batchconfirm0002"]
      const text = batch([job(ids[0]!), { ...job(ids[1]!), attempt: 3 }], { scheduler: "do-1", lease: "lease-confirm-1" })
      const init = await signed(text)
      const response = await confirming(new Request(url, init))
      expect(response.status).toBe(200)
      expect((await linesOf(response, macOf(init))).map((line) => line.status)).toStrictEqual([200, 200])
      expect(calls).toStrictEqual([["lease-confirm-1", [[ids[0], 1], [ids[1], 3]]]])
      expect(ranFor(ids).sort()).toStrictEqual(ids.map((id) => `test:echo ${id}`))
    })

    it("finds each sender's namespace once: a later request asks only that namespace", async () => {
      const refused: Array<string> = []
      const other: Dispatch.ConfirmingNamespace = {
        idFromString: (id) => {
          refused.push(id)
          throw new TypeError("Invalid Durable Object ID")
        },
        get: () => {
          throw new Error("not this namespace")
        }
      }
      const twoNamespaces = Dispatch.toFetchHandlerWith(Layer.merge(handlers, quiet), {
        secret: SECRET,
        namespace: [other, namespace]
      })
      calls.length = 0
      confirm = () => Promise.resolve(true)
      for (const n of [1, 2, 3]) {
        const init = await signed(batch([job(`job_0_batchmemo000${n}`)], { scheduler: "do-memo", lease: `lease-memo-${n}` }))
        const response = await twoNamespaces(new Request(url, init))
        expect(response.status).toBe(200)
        await response.text()
      }
      expect(calls.map(([lease]) => lease)).toStrictEqual(["lease-memo-1", "lease-memo-2", "lease-memo-3"])
      expect(refused).toStrictEqual(["do-memo"])
    })

    it("answers 409 and runs nothing when the SchedulerDO does not confirm", async () => {
      calls.length = 0
      confirm = () => Promise.resolve(false)
      const id = "job_0_batchunconfirm01"
      const init = await signed(batch([job(id)], { scheduler: "do-1" }))
      const answer = await refusal(await confirming(new Request(url, init)), macOf(init))
      expect(answer.status).toBe(409)
      expect(answer.error).toContain("did not confirm this batch")
      expect(calls).toHaveLength(1)
      expect(ranFor([id])).toStrictEqual([])
    })

    it("answers 503 and runs nothing when the confirmation fails or the sender is in no namespace", async () => {
      calls.length = 0
      confirm = () => Promise.reject(new Error("the Durable Object is overloaded"))
      const id = "job_0_batchconfirmfail"
      const init = await signed(batch([job(id)], { scheduler: "do-1" }))
      const answer = await refusal(await confirming(new Request(url, init)), macOf(init))
      expect(answer).toStrictEqual({
        status: 503,
        error: "the SchedulerDO could not confirm the batch: the Durable Object is overloaded"
      })
      const stranger = await signed(batch([job(id)], { scheduler: "elsewhere" }))
      expect((await refusal(await confirming(new Request(url, stranger)), macOf(stranger))).status).toBe(503)
      expect(calls).toHaveLength(1)
      expect(ranFor([id])).toStrictEqual([])
    })

    it("runs a batch without a sender (from the Queues consumer) unconfirmed", async () => {
      calls.length = 0
      const id = "job_0_batchnosender001"
      const init = await signed(batch([job(id)]))
      const response = await confirming(new Request(url, init))
      expect((await linesOf(response, macOf(init))).map((line) => line.status)).toStrictEqual([200])
      expect(calls).toStrictEqual([])
    })
  })

  it("answers every signed batch 500 while a declared cron has no handler, and runs nothing", async () => {
    const handler = Dispatch.toFetchHandlerWith(Layer.merge(handlers, quiet), {
      secret: SECRET,
      crons: CronSpec.cronJobs().daily("nightly", { hourUTC: 2, minuteUTC: 0 }, "test:ecko", {})
    })
    const id = "job_0_batchmisconfig01"
    const init = await signed(batch([job(id)]))
    const answer = await refusal(await handler(new Request(url, init)), macOf(init))
    expect(answer.status).toBe(500)
    expect(answer.error).toContain("test:ecko")
    expect(ranFor([id])).toStrictEqual([])
  })

  it("serves both paths from one fetch handler, and 404 elsewhere", async () => {
    const single = JSON.stringify({ ...job("job_0_batchsingle00001"), lease: "single-lease" })
    const init = await signed(single)
    const response = await endpoint(new Request(`https://app.example${Dispatch.path}`, init))
    expect(response.status).toBe(200)
    expect(response.headers.get(BATCH_HEADER)).toBeNull()
    expect(await response.text()).toBe(JSON.stringify({ result: "\"hi\"" }))
    // a single body at the batch path is a malformed batch, and a batch body at the single path a malformed dispatch
    const crossed = await signed(JSON.stringify({ ...job("job_0_batchsingle00002"), lease: "single-lease-2" }))
    expect((await refusal(await endpoint(new Request(url, crossed)), macOf(crossed))).error).toMatch(/^malformed batch body/)
    const crossedBack = await signed(batch([job("job_0_batchsingle00003")]))
    expect((await refusal(await endpoint(new Request(`https://app.example${Dispatch.path}`, crossedBack)), macOf(crossedBack))).error)
      .toMatch(/^malformed dispatch body/)
    const elsewhere = await endpoint(new Request(`https://app.example${Dispatch.batchPath}/more`, await signed(batch([]))))
    expect(elsewhere.status).toBe(404)
    expect(ranFor(["job_0_batchsingle00001", "job_0_batchsingle00002", "job_0_batchsingle00003"])).toStrictEqual([
      "test:echo job_0_batchsingle00001"
    ])
  })

  it("runs a batch under one span, the parent of each job's, ended with the answer; a single dispatch under its own", async () => {
    const native = Effect.runSync(Effect.tracer)
    const spans: Array<Tracer.Span> = []
    const recording = Tracer.make({
      span: (...args) => {
        const span = native.span(...args)
        spans.push(span)
        return span
      },
      context: native.context
    })
    const Traced = Job.make("test:traced", { payload: Schema.Struct({ n: Schema.Number }) })
    const traced = Dispatch.toFetchHandlerWith(
      Layer.mergeAll(Traced.toLayer(({ n }) => Effect.withSpan(Effect.void, `inner ${n}`)), quiet, Layer.setTracer(recording)),
      { secret: SECRET }
    )
    const ids = ["job_0_batchspans000001", "job_0_batchspans000002"]
    const init = await signed(batch(ids.map((id, n) => job(id, "test:traced", { n }))))
    const lines = await linesOf(await traced(new Request(url, init)), macOf(init))
    expect(lines.map((line) => line.status)).toStrictEqual([200, 200])
    const named = (name: string) => spans.filter((span) => span.name === name)
    const [outer] = named("Dispatch.batch")
    expect(named("Dispatch.batch")).toHaveLength(1)
    expect(outer!.attributes.get("jobs")).toBe(2)
    expect(outer!.attributes.get("jobIds")).toStrictEqual(ids)
    expect(outer!.status._tag).toBe("Ended")
    for (const n of [0, 1]) {
      const [inner] = named(`inner ${n}`)
      expect(Option.getOrThrow(inner!.parent)).toBe(outer)
      expect(inner!.status._tag).toBe("Ended")
    }
    const single = await signed(JSON.stringify({ ...job("job_0_singlespans00001", "test:traced", { n: 2 }), lease: "spans" }))
    expect((await traced(new Request(`https://app.example${Dispatch.path}`, single))).status).toBe(200)
    const [handle] = named("Dispatch.handle")
    expect(handle!.attributes.get("jobId")).toBe("job_0_singlespans00001")
    expect(handle!.status._tag).toBe("Ended")
    expect(Option.getOrThrow(named("inner 2")[0]!.parent)).toBe(handle)
  })

  describe("as an HttpApp", () => {
    it("routes by path, and runs the jobs under the request's logger and annotations", async () => {
      const logs: Array<{ readonly message: string; readonly jobId: unknown; readonly request: unknown }> = []
      const capture = Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ annotations, message }) =>
          void logs.push({
            message: [message].flat().join(" "),
            jobId: HashMap.get(annotations, "jobId").pipe((option) => option._tag === "Some" ? option.value : undefined),
            request: HashMap.get(annotations, "request").pipe((option) => option._tag === "Some" ? option.value : undefined)
          })
        )
      )
      const app = Dispatch.httpApp({ secret: SECRET })
      const ids = ["job_0_batchhttpapp0001", "job_0_batchhttpapp0002"]
      const init = await signed(batch([job(ids[0]!, "test:fail", { why: "logged" }), job(ids[1]!)]))
      const response = await app.pipe(
        Effect.map((response) => HttpServerResponse.toWeb(response)),
        Effect.annotateLogs({ request: "r-1" }),
        Effect.provideService(HttpServerRequest.HttpServerRequest, HttpServerRequest.fromWeb(new Request(url, init))),
        Effect.provide(handlers.pipe(Layer.provideMerge(JobRegistry.layer))),
        Effect.provide(capture),
        Effect.runPromise
      )
      expect(response.status).toBe(200)
      expect((await linesOf(response, macOf(init))).map((line) => [line.index, line.status]).sort()).toStrictEqual([[0, 500], [1, 200]])
      expect(logs.filter((log) => log.message.includes("attempt 1 failed"))).toStrictEqual([
        { message: expect.stringContaining("logged"), jobId: ids[0], request: "r-1" }
      ])
    })

    it("reads a batch on a server whose request is not the web's, under the batch cap", async () => {
      const fromServer = (request: Request): HttpServerRequest.HttpServerRequest =>
        new Proxy(HttpServerRequest.fromWeb(request), {
          get: (target, key) => (key === "source" ? { server: "node" } : Reflect.get(target, key, target))
        })
      const status = (request: Request) =>
        Dispatch.httpApp({ secret: SECRET }).pipe(
          Effect.provideService(HttpServerRequest.HttpServerRequest, fromServer(request)),
          Effect.provide(handlers.pipe(Layer.provideMerge(JobRegistry.layer))),
          Effect.provide(quiet),
          Effect.map((response) => response.status),
          Effect.runPromise
        )
      const big = "é".repeat(MAX_REQUEST_BYTES / 2)
      expect(await status(new Request(url, await signed(batch([job("job_0_batchnode0000001", "test:echo", { text: big })]))))).toBe(200)
      const over = JSON.stringify({ blob: "é".repeat(MAX_BATCH_REQUEST_BYTES / 2 + 1) })
      expect(await status(new Request(url, await signed(over)))).toBe(413)
    })
  })
})
