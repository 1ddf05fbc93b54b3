/// <reference types="node" />
/**
 * The telemetry example (examples/telemetry/worker.ts) on local workerd,
 * exporting to an OTLP/HTTP receiver served here by Node on loopback: the
 * app's spans and the `SchedulerDO`'s spans and metrics arrive as OTLP JSON.
 * Run it with `npm test` (it is part of the suite).
 */
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { join } from "node:path"
import { afterAll, beforeAll, expect, it } from "vitest"
import { startSnapshotWorker } from "../test/support/adminWorker.js"

interface Received {
  readonly path: string
  readonly body: any
}
const received: Array<Received> = []
let receiver: Server
let worker: { readonly dispose: () => Promise<void> } | undefined
let origin: string

beforeAll(async () => {
  receiver = createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      received.push({ path: request.url ?? "", body: JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") })
      response.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve))
  const otlpUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`

  const started = await startSnapshotWorker(join("examples", "telemetry"), (config) => config.replace("http://127.0.0.1:4318", otlpUrl))
  worker = started
  origin = started.origin
}, 60_000)

afterAll(async () => {
  await worker?.dispose()
  await new Promise((resolve) => receiver.close(resolve))
})

/** The spans received, with the `service.name` of the resource that sent each. */
const spans = () =>
  received.filter((r) => r.path === "/v1/traces").flatMap((r) =>
    r.body.resourceSpans.flatMap((resource: any) => {
      const service = resource.resource.attributes.find((a: any) => a.key === "service.name")?.value.stringValue
      return resource.scopeSpans.flatMap((scope: any) => scope.spans.map((span: any) => ({ service, ...span })))
    })
  )

/** The metrics received, by name, each data point's attributes as a record. */
const metrics = () =>
  received.filter((r) => r.path === "/v1/metrics").flatMap((r) =>
    r.body.resourceMetrics.flatMap((resource: any) =>
      resource.scopeMetrics.flatMap((scope: any) =>
        scope.metrics.map((metric: any) => {
          const points = (metric.sum ?? metric.gauge ?? metric.histogram).dataPoints
          return {
            name: metric.name as string,
            points: points.map((point: any) => ({
              value: point.asDouble ?? point.asInt ?? point.count,
              attributes: Object.fromEntries(point.attributes.map((a: any) => [a.key, a.value.stringValue]))
            }))
          }
        })
      )
    )
  )

const eventually = async <A>(read: () => A | undefined | Promise<A | undefined>, what: string, ms = 20_000): Promise<A> => {
  const until = Date.now() + ms
  for (;;) {
    const value = await read()
    if (value !== undefined) return value
    if (Date.now() > until) throw new Error(`no ${what} within ${ms} ms; received ${received.map((r) => r.path).join(", ")}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

it("exports the app's spans when its request ends, and the object's dispatch spans and metrics", async () => {
  const response = await fetch(`${origin}/greetings`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "Ada" })
  })
  expect(response.status).toBe(201)
  const { id } = (await response.json()) as { id: string }

  const runAfter = spans().find((span) => span.name === "Scheduler.runAfter")
  expect(runAfter?.service).toBe("app")
  const schedule = spans().find((span) => span.name === "SchedulerDO.schedule")
  expect(schedule?.traceId).toBe(runAfter?.traceId)

  const dispatched = await eventually(
    () =>
      spans().find((span) =>
        span.name === "SchedulerDO.dispatch" &&
        span.attributes.some((a: any) => a.key === "jobIds" && JSON.stringify(a.value).includes(id))
      ),
    "SchedulerDO.dispatch span naming the job"
  )
  expect(dispatched.service).toBe("scheduler")
  expect(spans().some((span) => span.service === "scheduler" && span.name === "SchedulerDO.alarm")).toBe(true)

  const outcome = await eventually(
    () =>
      metrics().flatMap((metric) => metric.name === "lunora_scheduler_outcomes_total" ? metric.points : []).find((point: any) =>
        point.attributes.function_path === "greetings:send" && point.attributes.result === "success" && point.value >= 1
      ),
    "outcomes_total sample for the greeting"
  )
  expect(outcome.attributes.object).toMatch(/^[0-9a-f]{64}$/)
  const drift = metrics().find((metric) => metric.name === "lunora_scheduler_start_drift_ms")
  expect(drift?.points[0]?.value).toBeGreaterThanOrEqual(1)
}, 60_000)

it("keeps scheduling and running jobs while the receiver answers 500", async () => {
  receiver.removeAllListeners("request")
  let refused = 0
  receiver.on("request", (request, response) => {
    request.resume()
    request.on("end", () => {
      refused++
      response.writeHead(500).end("down")
    })
  })
  const response = await fetch(`${origin}/greetings`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "Grace", delayMs: 200 })
  })
  expect(response.status).toBe(201)
  const { id } = (await response.json()) as { id: string }
  await eventually(async () => {
    const job = (await (await fetch(`${origin}/jobs/${id}`)).json()) as { state: string }
    return job.state === "success" ? job : undefined
  }, "success")
  expect(refused).toBeGreaterThan(0)
}, 60_000)
