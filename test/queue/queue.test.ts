/// <reference types="@cloudflare/workers-types" />
/// <reference types="@cloudflare/vitest-pool-workers" />
/**
 * The Queues-backed pool end to end in Miniflare, with real queues: the
 * producer sends, the worker's `queue()` handler consumes through
 * `createQueueConsumer`, dispatching back to the worker's own dispatch
 * endpoint, and acks, retries with the policy's delay, or dead-letters.
 * The handlers' runs and the dead-letter queue's arrivals are read from the
 * worker over `SELF`.
 */
import { env, SELF } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { createQueueWorkpool } from "../../src/cloudflare/createQueueWorkpool.js"
import type * as QueueWorkpool from "../../src/QueueWorkpool.js"
import { type Arrival, Echo, Flaky, type Run } from "./worker.js"

const runs = async (): Promise<Record<string, ReadonlyArray<Run>>> => (await SELF.fetch("https://app/runs")).json()
const arrivals = async (): Promise<ReadonlyArray<Arrival>> => (await SELF.fetch("https://app/dead-letters")).json()

/** Polls `probe` on the real clock until it gives a value. */
const until = async <A>(what: string, probe: () => Promise<A | undefined>, timeoutMs = 10_000): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

const runsOf = (id: string, count: number) =>
  until(`${count} run(s) of ${id}`, async () => {
    const found = (await runs())[id]
    return found !== undefined && found.length >= count ? found : undefined
  })

const deadLetterOf = (matches: (body: Record<string, unknown>) => boolean) =>
  until("a dead letter", async () =>
    (await arrivals()).find((arrival) =>
      typeof arrival.body === "object" && arrival.body !== null && matches(arrival.body as Record<string, unknown>)
    ))

const gaps = (found: ReadonlyArray<Run>) => found.slice(1).map((run, i) => run.at - found[i]!.at)

/** Three attempts, one second apart: the queues' `max_retries` is 2. */
const oneSecond = { retry: { maxAttempts: 3, backoff: "linear", baseMs: 1_000, maxMs: 1_000 } } as const

describe("the Queues-backed pool in Miniflare", () => {
  it("runs a job a Worker enqueued once, and a delayed one after its delay; refuses a bad payload", async () => {
    const now = await SELF.fetch("https://app/enqueue", {
      method: "POST",
      body: JSON.stringify({ payload: { text: "now" }, shardKey: "tenant-1" })
    })
    const { id } = await now.json<{ id: string }>()
    const pool = createQueueWorkpool({ queue: env.WORK })
    const sentAt = Date.now()
    const later = await pool.enqueue(Echo, { text: "later" }, { after: "1 second" })

    const [run] = await runsOf(id, 1)
    expect(run).toMatchObject({ attempt: 1, shardKey: "tenant-1" })
    const [delayed] = await runsOf(later.id, 1)
    expect(delayed!.at - sentAt).toBeGreaterThanOrEqual(900)
    expect((await runs())[id]).toHaveLength(1)

    const refused = await SELF.fetch("https://app/enqueue", {
      method: "POST",
      body: JSON.stringify({ payload: { text: 5 } })
    })
    expect(refused.status).toBe(400)
    expect(await refused.json()).toMatchObject({ _tag: "InvalidPayload" })
  })

  it("sends a job 24 hours ahead, the longest delay Queues takes; refuses one a second later before sending", async () => {
    const pool = createQueueWorkpool({ queue: env.WORK })
    // the local Queues refuses a delaySeconds over its limit: this send is what the platform accepts
    expect((await pool.enqueue(Echo, { text: "tomorrow" }, { after: "24 hours" })).id).toMatch(/^job_/)
    await expect(pool.enqueue(Echo, { text: "x" }, { after: 86_401_000 })).rejects.toMatchObject({
      _tag: "InvalidTime",
      reason: expect.stringContaining("24 hours")
    })
  })

  it("retries a failed attempt after the delay of the job's policy, then acks it", async () => {
    const { id } = await createQueueWorkpool({ queue: env.WORK }).enqueue(Flaky, { succeedOn: 2 }, oneSecond)
    const found = await runsOf(id, 2)
    expect(found.map((run) => run.attempt)).toEqual([1, 2])
    expect(gaps(found)[0]).toBeGreaterThanOrEqual(900)
    expect(gaps(found)[0]).toBeLessThan(3_000)
  })

  it("a job that always fails reaches the queue's own dead-letter queue after max_retries + 1 attempts", async () => {
    const { id } = await createQueueWorkpool({ queue: env.WORK }).enqueue(Flaky, { succeedOn: 99 }, oneSecond)
    const arrival = await deadLetterOf((body) => body.id === id)
    const found = (await runs())[id]!
    expect(found.map((run) => run.attempt)).toEqual([1, 2, 3])
    expect(gaps(found).every((gap) => gap >= 900)).toBe(true)
    expect(arrival.body).toMatchObject({ version: 1, id, functionPath: "queue:flaky", args: { succeedOn: 99 } })
    expect(arrival.body).not.toHaveProperty("lastError")
  })

  it("a delivery past the job's last attempt is not dispatched again, only handed on to the dead-letter queue", async () => {
    const pool = createQueueWorkpool({ queue: env.WORK })
    const { id } = await pool.enqueue(Flaky, { succeedOn: 99 }, { retry: { maxAttempts: 1 } })
    const arrival = await deadLetterOf((body) => body.id === id)
    expect(arrival.body).toMatchObject({ id, retryDelaysMs: [] })
    expect((await runs())[id]!.map((run) => run.attempt)).toEqual([1])
  })

  it("without a deadLetterQueue binding, a rejected job reaches the queue's dead-letter queue too", async () => {
    const { id } = await createQueueWorkpool({ queue: env.WORK }).enqueue("queue:missing", {}, oneSecond)
    const arrival = await deadLetterOf((body) => body.id === id)
    expect(arrival.body).toMatchObject({ id, functionPath: "queue:missing" })
  })

  it("with a deadLetterQueue binding, the consumer sends the dead letter itself, with the last error", async () => {
    const pool = createQueueWorkpool({ queue: env.WORK_EXPLICIT })
    const { id } = await pool.enqueue(Flaky, { succeedOn: 99 }, oneSecond)
    const arrival = await deadLetterOf((body) => body.id === id)
    expect((await runs())[id]!.map((run) => run.attempt)).toEqual([1, 2, 3])
    const letter = arrival.body as QueueWorkpool.DeadLetter
    expect(letter).toMatchObject({ id, functionPath: "queue:flaky", lastError: "Error: attempt 3 failed", attempts: 3 })
  })

  it("a payload the app rejects dead-letters at its first attempt, without retries", async () => {
    const pool = createQueueWorkpool({ queue: env.WORK_EXPLICIT })
    const { id } = await pool.enqueue("queue:echo", { text: 5 }, oneSecond)
    const arrival = await deadLetterOf((body) => body.id === id)
    expect(arrival.body).toMatchObject({ id, attempts: 1 })
    expect((arrival.body as QueueWorkpool.DeadLetter).lastError).toContain("payload does not match the Schema of queue:echo")
    expect((await runs())[id]).toBeUndefined()
  })

  it("a message that is not a job is retried, never acked, until the queue's dead-letter queue takes it", async () => {
    const marker = crypto.randomUUID()
    await env.WORK.send({ marker }, { contentType: "json" })
    const arrival = await deadLetterOf((body) => body.marker === marker)
    expect(arrival.body).toEqual({ marker })
  })
})
