/**
 * Global setup of the workerd tests: the app's dispatch endpoint served by
 * Node over real HTTP on loopback, so a `SchedulerDO` configured with an
 * `originUrl` dispatches over a real request. The handlers run here, in Node.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import type { TestProject } from "vitest/node"
import { Effect, Schema } from "effect"
import * as Dispatch from "../../src/Dispatch.js"
import * as Job from "../../src/Job.js"

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

const dispatch = Dispatch.toFetchHandlerWith(
  Shout.toLayer((payload) => Effect.succeed({ shouted: payload.text.toUpperCase(), from: "node" })),
  { secret: "test-secret" }
)

export default async function setup(project: TestProject) {
  const server = createServer(async (req, res) => {
    const chunks: Array<Buffer> = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const request = new Request(`http://127.0.0.1${req.url}`, {
      method: req.method ?? "GET",
      headers: Object.entries(req.headers).flatMap(([name, value]) =>
        typeof value === "string" ? [[name, value] as [string, string]] : []
      ),
      ...(req.method === "POST" ? { body: Buffer.concat(chunks) } : {})
    })
    const response = await dispatch(request)
    res.writeHead(response.status, Object.fromEntries(response.headers))
    res.end(Buffer.from(await response.arrayBuffer()))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  project.provide("originUrl", `http://127.0.0.1:${port}`)
  return () => new Promise<void>((resolve) => server.close(() => resolve()))
}
