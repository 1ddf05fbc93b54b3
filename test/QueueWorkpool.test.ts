import { describe, expect, it } from "@effect/vitest"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { Duration, Effect, Either, Layer, Schedule, Schema } from "effect"
import {
  consumeBatch,
  createQueueConsumer,
  httpDispatcher,
  type MessageBatchLike,
  type QueueConsumerOptions
} from "../src/cloudflare/createQueueConsumer.js"
import { createQueueWorkpool } from "../src/cloudflare/createQueueWorkpool.js"
import * as Dispatch from "../src/Dispatch.js"
import * as Job from "../src/Job.js"
import * as QueueWorkpool from "../src/QueueWorkpool.js"

const SECRET = "queue-test-secret"

const Echo = Job.make("test:echo", { payload: Schema.Struct({ text: Schema.String }) })
const Dated = Job.make("test:dated", { payload: Schema.Struct({ when: Schema.DateFromString }) })
const Flaky = Job.make("test:flaky", { payload: Schema.Struct({ succeedOn: Schema.Int }) })
const Slow = Job.make("test:slow", { payload: Schema.Struct({ ms: Schema.Int }) })

/** Handler runs by job id, and the most slow handlers seen running at once. */
const runs = new Map<string, Array<number>>()
let running = 0
let mostRunning = 0
const ran = (id: string, attempt: number) => Effect.sync(() => void runs.set(id, [...(runs.get(id) ?? []), attempt]))

const handlers = Layer.mergeAll(
  Echo.toLayer((_, { attempt, id }) => ran(id, attempt)),
  Dated.toLayer((_, { attempt, id }) => ran(id, attempt)),
  Flaky.toLayer((payload, { attempt, id }) =>
    Effect.zipRight(
      ran(id, attempt),
      attempt >= payload.succeedOn ? Effect.void : Effect.fail(new Error(`attempt ${attempt} failed`))
    )
  ),
  Slow.toLayer((payload, { attempt, id }) =>
    Effect.acquireUseRelease(
      Effect.sync(() => {
        running++
        mostRunning = Math.max(mostRunning, running)
      }),
      () => Effect.zipRight(Effect.sleep(payload.ms), ran(id, attempt)),
      () => Effect.sync(() => void running--)
    )
  )
)

const app = Dispatch.toFetchHandlerWith(handlers, { secret: SECRET })
const fetcher = { fetch: (input: URL | string, init?: RequestInit) => app(new Request(input, init)) }
const dispatch = httpDispatcher({ fetcher, secret: SECRET })

interface Sent {
  readonly body: unknown
  readonly contentType?: string | undefined
  readonly delaySeconds?: number | undefined
}

/** A Queue producer that records what it is sent, and fails when told to. */
const fakeQueue = (failOn?: (call: number) => boolean) => {
  const sent: Array<Sent> = []
  const batches: Array<ReadonlyArray<Sent>> = []
  let calls = 0
  const queue: QueueWorkpool.QueueProducer = {
    send: async (body, options) => {
      if (failOn?.(++calls)) throw new Error("Queue send failed: Too Many Requests")
      sent.push({ body, ...options })
    },
    sendBatch: async (messages) => {
      if (failOn?.(++calls)) throw new Error("Queue sendBatch failed: Too Many Requests")
      const batch = [...messages]
      batches.push(batch)
      sent.push(...batch)
    }
  }
  return { queue, sent, batches }
}

type Settlement = "ack" | { readonly retry: { delaySeconds?: number } | undefined }

/** A delivered message that records how it was settled. */
const delivered = (body: unknown, attempts = 1, options: { readonly ackThrows?: boolean } = {}) => {
  const settled: Array<Settlement> = []
  return {
    id: `msg-${Math.random().toString(36).slice(2)}`,
    body,
    attempts,
    settled,
    ack: () => {
      if (options.ackThrows) throw new Error("ack refused")
      settled.push("ack")
    },
    retry: (retry?: { delaySeconds?: number }) => void settled.push({ retry })
  }
}

const batchOf = (...messages: ReadonlyArray<ReturnType<typeof delivered>>): MessageBatchLike => ({
  queue: "jobs",
  messages
})

/** The body `enqueue` sends for a job. */
const messageFor = <R extends Job.Ref>(job: R, payload: Job.Payload<R>, options?: QueueWorkpool.EnqueueOptions) =>
  Effect.gen(function*() {
    const { queue, sent } = fakeQueue()
    const pool = yield* QueueWorkpool.make({ queue })
    const { id } = yield* pool.enqueue(job, payload, options)
    return { id, message: sent[0]!.body as QueueWorkpool.QueueMessage }
  })

const fast = { retry: { maxAttempts: 3, backoff: "linear", baseMs: 1_500 } } as const

describe("QueueWorkpool.enqueue", () => {
  it.effect("sends one JSON message with the job, its encoded payload, its retry plan and its delay", () =>
    Effect.gen(function*() {
      const { queue, sent } = fakeQueue()
      const pool = yield* QueueWorkpool.make({ queue })
      const { id } = yield* pool.enqueue(Dated, { when: new Date("2026-03-01T00:00:00.000Z") }, {
        after: "1500 millis",
        key: "dated:1",
        shardKey: "tenant-1",
        retry: { maxAttempts: 3, backoff: "exponential", baseMs: 1_000 }
      })
      expect(sent).toHaveLength(1)
      expect(sent[0]).toEqual({
        body: {
          version: 1,
          id,
          functionPath: "test:dated",
          args: { when: "2026-03-01T00:00:00.000Z" },
          scheduledFor: 1_500,
          retryDelaysMs: [1_000, 2_000],
          deadLetter: true,
          key: "dated:1",
          shardKey: "tenant-1"
        },
        contentType: "json",
        delaySeconds: 2
      })
      expect(Schema.decodeUnknownEither(QueueWorkpool.QueueMessage)(sent[0]!.body)._tag).toBe("Right")
    }))

  it.effect("takes a Schedule as the retry policy, and the default policy when none is given", () =>
    Effect.gen(function*() {
      const scheduled = yield* messageFor(Echo, { text: "a" }, {
        retry: Schedule.spaced("2 seconds").pipe(Schedule.intersect(Schedule.recurs(2)))
      })
      expect(scheduled.message.retryDelaysMs).toEqual([2_000, 2_000])
      const byDefault = yield* messageFor(Echo, { text: "b" })
      expect(byDefault.message.retryDelaysMs).toEqual([30_000, 60_000, 120_000, 240_000])
      expect(byDefault.message.deadLetter).toBe(true)
    }))

  it.effect("refuses bad input with a typed error, and sends nothing", () =>
    Effect.gen(function*() {
      const { queue, sent } = fakeQueue()
      const pool = yield* QueueWorkpool.make({ queue })
      const refusal = <A, E extends { readonly _tag: string }>(effect: Effect.Effect<A, E>) =>
        Effect.map(Effect.flip(effect), (error) => error as E & Record<string, unknown>)

      const schema = yield* refusal(pool.enqueue(Echo, { text: 42 } as never))
      expect(schema).toMatchObject({ _tag: "InvalidPayload", functionPath: "test:echo", problem: "schema" })
      const serialization = yield* refusal(pool.enqueue("test:untyped", { at: new Map() }))
      expect(serialization).toMatchObject({ _tag: "InvalidPayload", problem: "serialization" })
      const size = yield* refusal(pool.enqueue(Echo, { text: "x".repeat(QueueWorkpool.MAX_MESSAGE_BYTES) }))
      expect(size).toMatchObject({ _tag: "InvalidPayload", problem: "size" })
      expect(size.reason).toContain(`over the limit of ${QueueWorkpool.MAX_MESSAGE_BYTES}`)

      expect(yield* refusal(pool.enqueue(Echo, { text: "a" }, { after: Duration.seconds(86_401) }))).toMatchObject({
        _tag: "InvalidTime",
        reason: "more than 24 hours ahead, the longest delay of a Queues message"
      })
      expect(yield* refusal(pool.enqueue(Echo, { text: "a" }, { after: -1 }))).toMatchObject({ _tag: "InvalidTime" })
      expect(yield* refusal(pool.enqueue(Echo, { text: "a" }, { at: Number.NaN }))).toMatchObject({
        _tag: "InvalidTime"
      })
      expect(yield* refusal(pool.enqueue(Echo, { text: "a" }, { after: 0, at: 0 }))).toMatchObject({
        _tag: "InvalidOptions",
        reason: "give `after` or `at`, not both"
      })
      expect(yield* refusal(pool.enqueue(Echo, { text: "a" }, { key: "" }))).toMatchObject({ _tag: "InvalidOptions" })
      expect(yield* refusal(pool.enqueue(Echo, { text: "a" }, { retry: { maxAttempts: 0 } }))).toMatchObject({
        _tag: "InvalidOptions"
      })
      expect(yield* refusal(pool.enqueue("no function path", {}))).toMatchObject({ _tag: "InvalidOptions" })

      const many = yield* refusal(pool.enqueueMany([
        { job: Echo, payload: { text: "fine" } },
        { job: Echo, payload: { text: 1 } as never }
      ]))
      expect(many).toMatchObject({ _tag: "InvalidPayload", problem: "schema" })
      expect(sent).toEqual([])
    }))

  it.effect("refuses a queue that is not a producer binding", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(QueueWorkpool.make({ queue: {} as never }))
      expect(error._tag).toBe("InvalidOptions")
      expect(() => createQueueWorkpool({ queue: undefined as never })).toThrow(
        expect.objectContaining({ _tag: "InvalidOptions" })
      )
    }))

  it.effect("reports a failing send as SchedulerUnavailable", () =>
    Effect.gen(function*() {
      const pool = yield* QueueWorkpool.make(fakeQueue(() => true))
      const error = yield* Effect.flip(pool.enqueue(Echo, { text: "a" }))
      expect(error).toMatchObject({
        _tag: "SchedulerUnavailable",
        operation: "QueueWorkpool.enqueue",
        reason: "queue.send failed: Queue send failed: Too Many Requests"
      })
    }))

  it.effect("enqueueMany sends batches of at most 100 messages and 256 KB, each message with its own delay", () =>
    Effect.gen(function*() {
      const { batches, queue } = fakeQueue()
      const pool = yield* QueueWorkpool.make({ queue })
      const enqueued = yield* pool.enqueueMany(
        Array.from({ length: 250 }, (_, i) => ({ job: Echo, payload: { text: `m${i}` }, after: i * 1_000 }))
      )
      expect(enqueued).toHaveLength(250)
      expect(new Set(enqueued.map((e) => e.id)).size).toBe(250)
      expect(batches.map((b) => b.length)).toEqual([100, 100, 50])
      expect(batches[2]![49]).toMatchObject({ contentType: "json", delaySeconds: 249 })

      const big = fakeQueue()
      const bigPool = yield* QueueWorkpool.make({ queue: big.queue })
      yield* bigPool.enqueueMany(
        Array.from({ length: 5 }, () => ({ job: Echo, payload: { text: "x".repeat(100_000) } }))
      )
      expect(big.batches.map((b) => b.length)).toEqual([2, 2, 1])
      expect(yield* bigPool.enqueueMany([])).toEqual([])
      expect(big.batches).toHaveLength(3)
    }))

  it.effect("enqueueMany says how many messages were sent before a batch failed", () =>
    Effect.gen(function*() {
      const pool = yield* QueueWorkpool.make(fakeQueue((call) => call === 2))
      const error = yield* Effect.flip(
        pool.enqueueMany(Array.from({ length: 150 }, (_, i) => ({ job: Echo, payload: { text: `m${i}` } })))
      )
      expect(error).toMatchObject({ _tag: "SchedulerUnavailable", operation: "QueueWorkpool.enqueueMany" })
      expect(error.message).toContain("after 100 of 150 messages were sent")
    }))

  it("the Promise pool resolves with the id, and rejects with the typed error itself", async () => {
    const { queue, sent } = fakeQueue()
    const pool = createQueueWorkpool({ queue })
    const { id } = await pool.enqueue(Echo, { text: "promise" })
    expect(Schema.is(Job.JobId)(id)).toBe(true)
    expect(sent).toHaveLength(1)
    await expect(pool.enqueue(Echo, { text: 1 } as never)).rejects.toMatchObject({ _tag: "InvalidPayload" })
    expect(sent).toHaveLength(1)
  })
})

describe("QueueWorkpool delays and decisions", () => {
  it("rounds delays up to whole seconds and caps them at 24 hours", () => {
    expect([0, 1, 999, 1_000, 1_001, 90_500].map(QueueWorkpool.delaySeconds)).toEqual([0, 1, 1, 1, 2, 91])
    expect(QueueWorkpool.delaySeconds(Duration.toMillis("25 hours"))).toBe(QueueWorkpool.MAX_DELAY_SECONDS)
    expect(QueueWorkpool.delaySeconds(-5)).toBe(0)
    expect(QueueWorkpool.delaySeconds(Number.POSITIVE_INFINITY)).toBe(QueueWorkpool.MAX_DELAY_SECONDS)
  })

  const message: QueueWorkpool.QueueMessage = {
    version: 1,
    id: "job_0_000000000abcdefabcdef" as Job.JobId,
    functionPath: "test:echo",
    args: {},
    scheduledFor: 0,
    retryDelaysMs: [1_000, 2_500, Duration.toMillis("2 days")],
    deadLetter: true,
    key: null,
    shardKey: null
  }

  it("takes the delay after attempt n from the job's policy", () => {
    expect(QueueWorkpool.maxAttempts(message)).toBe(4)
    expect([1, 2, 3].map((n) => QueueWorkpool.retryDelaySeconds(message, n))).toEqual([1, 3, 86_400])
  })

  it("acks a success, retries a retryable failure with attempts left, and ends the rest", () => {
    const failed = { ok: false, retryable: true, error: "HTTP 500" } as const
    expect(QueueWorkpool.decide(message, 1, { ok: true, result: null })).toEqual(QueueWorkpool.Decision.Ack())
    expect(QueueWorkpool.decide(message, 2, failed)).toEqual(
      QueueWorkpool.Decision.Retry({ delaySeconds: 3, error: "HTTP 500" })
    )
    expect(QueueWorkpool.decide(message, 4, failed)).toEqual(QueueWorkpool.Decision.DeadLetter({ lastError: "HTTP 500" }))
    expect(QueueWorkpool.decide(message, 1, { ok: false, retryable: false, error: "unknown function" })).toEqual(
      QueueWorkpool.Decision.DeadLetter({ lastError: "unknown function" })
    )
    expect(QueueWorkpool.decide({ ...message, deadLetter: false }, 4, failed)).toEqual(
      QueueWorkpool.Decision.Fail({ lastError: "HTTP 500" })
    )
  })

  it("builds the wire contract's dispatch body, with the delivery's attempt", () => {
    expect(QueueWorkpool.toDispatchBody({ ...message, key: "k", shardKey: "s" }, 3)).toEqual({
      id: message.id,
      functionPath: "test:echo",
      args: {},
      shardKey: "s",
      key: "k",
      scheduledFor: 0,
      attempt: 3,
      pool: null,
      lease: null,
      scheduler: null
    })
  })
})

describe("the queue consumer (in process, through the dispatch endpoint)", () => {
  const consume = (batch: MessageBatchLike, options: Partial<QueueConsumerOptions> = {}) =>
    consumeBatch(batch, { dispatch, ...options })

  it.live("acks a success, and retries a failed attempt after its policy's delay", () =>
    Effect.gen(function*() {
      const ok = yield* messageFor(Echo, { text: "hello" }, { shardKey: "s" })
      const flaky = yield* messageFor(Flaky, { succeedOn: 2 }, fast)
      const first = delivered(ok.message)
      const failing = delivered(flaky.message)
      expect(yield* consume(batchOf(first, failing))).toBe(0)
      expect(first.settled).toEqual(["ack"])
      expect(failing.settled).toEqual([{ retry: { delaySeconds: 2 } }])
      const second = delivered(flaky.message, 2)
      yield* consume(batchOf(second))
      expect(second.settled).toEqual(["ack"])
      expect(runs.get(ok.id)).toEqual([1])
      expect(runs.get(flaky.id)).toEqual([1, 2])
    }))

  it.live("sends an exhausted job to the deadLetterQueue binding with its last error, then acks it", () =>
    Effect.gen(function*() {
      const dlq = fakeQueue()
      const flaky = yield* messageFor(Flaky, { succeedOn: 99 }, fast)
      const last = delivered(flaky.message, 3)
      yield* consume(batchOf(last), { deadLetterQueue: dlq.queue })
      expect(last.settled).toEqual(["ack"])
      expect(dlq.sent).toEqual([{
        body: { ...flaky.message, lastError: "Error: attempt 3 failed", attempts: 3 },
        contentType: "json"
      }])
      expect(Schema.decodeUnknownEither(QueueWorkpool.DeadLetter)(dlq.sent[0]!.body)._tag).toBe("Right")
    }))

  it.live("without a deadLetterQueue binding, retries an exhausted job at once for the queue's own dead-letter queue", () =>
    Effect.gen(function*() {
      const flaky = yield* messageFor(Flaky, { succeedOn: 99 }, fast)
      const last = delivered(flaky.message, 3)
      yield* consume(batchOf(last))
      expect(last.settled).toEqual([{ retry: { delaySeconds: 0 } }])
    }))

  it.live("dead-letters a rejection (unknown function) at its first attempt", () =>
    Effect.gen(function*() {
      const dlq = fakeQueue()
      const unknown = yield* messageFor("test:missing", { any: "thing" }, fast)
      const first = delivered(unknown.message)
      yield* consume(batchOf(first), { deadLetterQueue: dlq.queue })
      expect(first.settled).toEqual(["ack"])
      expect(dlq.sent[0]!.body).toMatchObject({
        id: unknown.id,
        lastError: "no handler is registered for test:missing",
        attempts: 1
      })
    }))

  it.live("acks an exhausted job enqueued with deadLetter: false, without a dead letter", () =>
    Effect.gen(function*() {
      const dlq = fakeQueue()
      const flaky = yield* messageFor(Flaky, { succeedOn: 99 }, { ...fast, deadLetter: false })
      const last = delivered(flaky.message, 3)
      yield* consume(batchOf(last), { deadLetterQueue: dlq.queue })
      expect(last.settled).toEqual(["ack"])
      expect(dlq.sent).toEqual([])
    }))

  it.live("retries a malformed message (never acks it) and does not dispatch a delivery past the last attempt", () =>
    Effect.gen(function*() {
      const echo = yield* messageFor(Echo, { text: "late" }, fast)
      const malformed = delivered({ not: "a job" })
      const late = delivered(echo.message, 4)
      yield* consume(batchOf(malformed, late))
      expect(malformed.settled).toEqual([{ retry: undefined }])
      expect(late.settled).toEqual([{ retry: { delaySeconds: 0 } }])
      expect(runs.get(echo.id)).toBeUndefined()
    }))

  it.live("retries the message when the dead letter cannot be sent", () =>
    Effect.gen(function*() {
      const flaky = yield* messageFor(Flaky, { succeedOn: 99 }, fast)
      const last = delivered(flaky.message, 3)
      yield* consume(batchOf(last), { deadLetterQueue: fakeQueue(() => true).queue })
      expect(last.settled).toEqual([{ retry: { delaySeconds: 0 } }])
    }))

  it.live("dispatches a batch concurrently, bounded by `concurrency`", () =>
    Effect.gen(function*() {
      mostRunning = 0
      const messages = yield* Effect.forEach(
        Array.from({ length: 6 }),
        () => Effect.map(messageFor(Slow, { ms: 100 }), ({ message }) => delivered(message))
      )
      const started = Date.now()
      yield* consume(batchOf(...messages), { concurrency: 3 })
      expect(Date.now() - started).toBeLessThan(550)
      expect(mostRunning).toBe(3)
      expect(messages.every((m) => m.settled[0] === "ack")).toBe(true)
    }))

  it.live("a timed-out attempt is a retryable failure", () =>
    Effect.gen(function*() {
      const slow = yield* messageFor(Slow, { ms: 300 }, fast)
      const first = delivered(slow.message)
      yield* consume(batchOf(first), { dispatch: httpDispatcher({ fetcher, secret: SECRET, timeout: "50 millis" }) })
      expect(first.settled).toEqual([{ retry: { delaySeconds: 2 } }])
    }))

  it.live("a wrong secret is a retryable failure (401), not a dead letter", () =>
    Effect.gen(function*() {
      const echo = yield* messageFor(Echo, { text: "x" }, fast)
      const first = delivered(echo.message)
      yield* consume(batchOf(first), { dispatch: httpDispatcher({ fetcher, secret: "wrong" }) })
      expect(first.settled).toEqual([{ retry: { delaySeconds: 2 } }])
      expect(runs.get(echo.id)).toBeUndefined()
    }))

  it.live("adminToken is another name for secret: its requests are signed and run", () =>
    Effect.gen(function*() {
      const echo = yield* messageFor(Echo, { text: "token" }, fast)
      const first = delivered(echo.message)
      yield* consume(batchOf(first), { dispatch: httpDispatcher({ fetcher, adminToken: SECRET }) })
      expect(first.settled).toEqual(["ack"])
      expect(runs.get(echo.id)).toHaveLength(1)
      const refused = delivered(echo.message)
      yield* consume(batchOf(refused), { dispatch: httpDispatcher({ fetcher, adminToken: "wrong" }) })
      expect(refused.settled).toEqual([{ retry: { delaySeconds: 2 } }])
    }))

  it("createQueueConsumer: one message that cannot be settled fails the invocation, without touching the others", async () => {
    const echo = await Effect.runPromise(messageFor(Echo, { text: "a" }))
    const good = delivered(echo.message)
    const stuck = delivered(echo.message, 1, { ackThrows: true })
    const consumer = createQueueConsumer({ dispatch })
    await expect(consumer(batchOf(good, stuck), {})).rejects.toThrow(
      "1 of 2 messages could be neither acked nor retried"
    )
    expect(good.settled).toEqual(["ack"])
  })

  it("createQueueConsumer: options may be a function of env, called once per env", async () => {
    let calls = 0
    const env = { SECRET }
    const consumer = createQueueConsumer((e: typeof env) => {
      calls++
      return { dispatch: httpDispatcher({ fetcher, secret: e.SECRET }) }
    })
    const echo = await Effect.runPromise(messageFor(Echo, { text: "a" }))
    const first = delivered(echo.message)
    const second = delivered(echo.message)
    await consumer(batchOf(first), env)
    await consumer(batchOf(second), env)
    expect([first.settled, second.settled]).toEqual([["ack"], ["ack"]])
    expect(calls).toBe(1)
  })

  it("refuses malformed consumer and dispatcher options with InvalidOptions", () => {
    const invalid = expect.objectContaining({ _tag: "InvalidOptions" })
    expect(() => httpDispatcher({ secret: SECRET })).toThrow(invalid)
    expect(() => httpDispatcher({ originUrl: "https://a.example", fetcher, secret: SECRET })).toThrow(invalid)
    expect(() => httpDispatcher({ originUrl: "ftp://a.example", secret: SECRET })).toThrow(invalid)
    expect(() => httpDispatcher({ originUrl: "https://a.example", secret: "" })).toThrow(invalid)
    expect(() => httpDispatcher({ fetcher, secret: SECRET, timeout: "forever" as never })).toThrow(invalid)
    expect(() => httpDispatcher({ fetcher, secret: SECRET, adminToken: SECRET } as never)).toThrow(invalid)
    expect(() => httpDispatcher({ fetcher, adminToken: "" })).toThrow(invalid)
    expect(() => createQueueConsumer({ dispatch: {} as never })).toThrow(invalid)
    expect(() => createQueueConsumer({ dispatch, concurrency: 0 })).toThrow(invalid)
    expect(() => createQueueConsumer({ dispatch, deadLetterQueue: {} as never })).toThrow(invalid)
    expect(Either.isLeft(Effect.runSync(Effect.either(consumeBatch(batchOf(), { dispatch: null as never }))))).toBe(true)
  })

  it("posts to an originUrl over real HTTP", async () => {
    const server = createServer(async (req, res) => {
      const chunks: Array<Buffer> = []
      for await (const chunk of req) chunks.push(chunk as Buffer)
      const response = await app(
        new Request(`http://127.0.0.1${req.url}`, {
          method: req.method ?? "GET",
          headers: Object.entries(req.headers).flatMap(([name, value]) =>
            typeof value === "string" ? [[name, value] as [string, string]] : []
          ),
          ...(req.method === "POST" ? { body: Buffer.concat(chunks) } : {})
        })
      )
      res.writeHead(response.status, Object.fromEntries(response.headers))
      res.end(Buffer.from(await response.arrayBuffer()))
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    try {
      const { port } = server.address() as AddressInfo
      const consumer = createQueueConsumer({
        dispatch: httpDispatcher({ originUrl: `http://127.0.0.1:${port}/`, secret: SECRET })
      })
      const echo = await Effect.runPromise(messageFor(Echo, { text: "over http" }))
      const message = delivered(echo.message)
      await consumer(batchOf(message), {})
      expect(message.settled).toEqual(["ack"])
      expect(runs.get(echo.id)).toEqual([1])
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  })
})
