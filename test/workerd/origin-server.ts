/**
 * Global setup of the workerd tests: the app's dispatch endpoint served by
 * Node over real HTTP on loopback, so a `SchedulerDO` configured with an
 * `originUrl` dispatches over a real request. The handlers run here, in Node.
 *
 * Beside the endpoint, origins that are not it, for the wire's refusals; the
 * `SchedulerDO` posts to `${originUrl}/_lunora/scheduler/dispatch`, so each
 * is an origin path prefix:
 *   /html      answers 200 text/html (a misrouted origin)
 *   /r301 /r302 /r307   redirect to /landing, which answers 200 to anything
 *   /capture   keeps the signed request it gets (GET /captured), then lets the endpoint answer it
 *   /legacy    the endpoint as an app that does not serve the batch path (404 there)
 *   /cut       the endpoint, but a batch answer ends after its first line (a connection lost mid-answer)
 * and GET /hits (requests per path) and GET /runs (handler runs per job id).
 *
 * And a webhook receiver, verifying each delivery with `Webhook.verify` (secret "webhook-secret"):
 *   /hooks/ok         answers 200 {"received":true}
 *   /hooks/flaky      answers 500 to a job's first two attempts, then 200
 *   /hooks/gone       answers 404
 *   /hooks/redirect   answers 307 to /landing
 * with GET /deliveries (each delivery: path, method, headers, body and what verify said).
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import type { TestProject } from "vitest/node"
import { Effect, Schema } from "effect"
import * as Dispatch from "../../src/Dispatch.js"
import * as Job from "../../src/Job.js"
import * as Webhook from "../../src/Webhook.js"

declare module "vitest" {
  export interface ProvidedContext {
    /** The origin the Node dispatch endpoint listens on (a free loopback port). */
    readonly originUrl: string
  }
}

const Shout = Job.make("origin:shout", {
  payload: Schema.Struct({ text: Schema.String }),
  success: Schema.Struct({ shouted: Schema.String, from: Schema.String })
})

const runs = new Map<string, number>()
const hits = new Map<string, number>()
let captured: { readonly headers: Record<string, string>; readonly body: string } | undefined
const deliveries: Array<{ path: string; method: string; headers: Record<string, string>; body: string; verified: unknown }> = []

const dispatch = Dispatch.toFetchHandlerWith(
  Shout.toLayer((payload, { id }) =>
    Effect.sync(() => {
      runs.set(id, (runs.get(id) ?? 0) + 1)
      return { shouted: payload.text.toUpperCase(), from: "node" }
    })
  ),
  { secret: "test-secret" }
)

const REDIRECTS: Record<string, number> = { "/r301": 301, "/r302": 302, "/r307": 307 }
/** The origin prefixes in front of the endpoint itself. */
const PREFIXES = new Set(["/capture", "/legacy", "/cut"])

export default async function setup(project: TestProject) {
  const server = createServer(async (req, res) => {
    const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname
    hits.set(`${req.method} ${path}`, (hits.get(`${req.method} ${path}`) ?? 0) + 1)
    const chunks: Array<Buffer> = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const headers = Object.fromEntries(
      Object.entries(req.headers).flatMap(([name, value]) => (typeof value === "string" ? [[name, value]] : []))
    )
    const prefix = `/${path.split("/")[1] ?? ""}`
    if (path === "/deliveries") {
      res.writeHead(200, { "content-type": "application/json" })
      return res.end(JSON.stringify(deliveries))
    }
    if (prefix === "/hooks") {
      const body = Buffer.concat(chunks).toString("utf8")
      const verified = await Webhook.verify({ headers: new Headers(headers), text: async () => body }, "webhook-secret")
        .catch((error: Error) => error.message)
      deliveries.push({ path, method: req.method ?? "", headers, body, verified })
      const attempt = Number(headers["x-lunora-attempt"])
      if (path === "/hooks/flaky" && attempt < 3) return res.writeHead(500).end("down")
      if (path === "/hooks/gone") return res.writeHead(404).end("no such hook")
      if (path === "/hooks/redirect") return res.writeHead(307, { location: "/landing" }).end()
      res.writeHead(200, { "content-type": "application/json" })
      return res.end(JSON.stringify({ received: true }))
    }
    if (path === "/hits" || path === "/runs") {
      res.writeHead(200, { "content-type": "application/json" })
      return res.end(JSON.stringify(Object.fromEntries(path === "/hits" ? hits : runs)))
    }
    if (path === "/captured") {
      res.writeHead(200, { "content-type": "application/json" })
      return res.end(JSON.stringify(captured ?? null))
    }
    if (prefix === "/html") {
      res.writeHead(200, { "content-type": "text/html" })
      return res.end("<!doctype html><title>Welcome</title><p>Not the scheduler.</p>")
    }
    if (REDIRECTS[prefix] !== undefined) {
      res.writeHead(REDIRECTS[prefix]!, { location: "/landing" })
      return res.end()
    }
    if (prefix === "/landing") {
      res.writeHead(200, { "content-type": "application/json" })
      return res.end(JSON.stringify({ result: null }))
    }
    const body = Buffer.concat(chunks)
    if (prefix === "/capture") captured = { headers, body: body.toString("utf8") }
    if (prefix === "/legacy" && path.endsWith(Dispatch.batchPath)) {
      res.writeHead(404, { "content-type": "text/plain" })
      return res.end("not found")
    }
    const inner = PREFIXES.has(prefix) ? path.slice(prefix.length) : req.url
    const request = new Request(`http://127.0.0.1${inner}`, {
      method: req.method ?? "GET",
      headers: Object.entries(headers),
      ...(req.method === "POST" ? { body } : {})
    })
    const response = await dispatch(request)
    res.writeHead(response.status, Object.fromEntries(response.headers))
    if (prefix === "/cut" && response.headers.has("x-lunora-batch")) {
      const text = await response.text()
      return res.end(text.slice(0, text.indexOf("\n") + 1))
    }
    res.end(Buffer.from(await response.arrayBuffer()))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  project.provide("originUrl", `http://127.0.0.1:${port}`)
  return () => new Promise<void>((resolve) => server.close(() => resolve()))
}
