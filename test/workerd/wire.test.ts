/// <reference types="@cloudflare/workers-types" />
/// <reference types="@cloudflare/vitest-pool-workers" />
/**
 * The edges of the wire, over real requests: only the dispatch endpoint's
 * own answer decides an outcome, redirects are not followed, a replayed
 * request runs nothing, an oversized body is refused unread, and each job
 * goes where it was scheduled to go. The origins that are not the endpoint
 * are served by test/workerd/origin-server.ts.
 */
import { env, SELF } from "cloudflare:test"
import { Effect, Option, Redacted } from "effect"
import { describe, expect, it } from "vitest"
import { DISPATCH_PATH, MAX_REQUEST_BYTES, sign, SIGNATURE_HEADER } from "../../src/internal/runtime/wire.js"
import { fast, fresh, runs, settled } from "./support.js"
import { Echo } from "./worker.js"

const origin = (path: string) => fetch(`${env.ORIGIN_URL}${path}`).then((response) => response.json() as Promise<any>)
const secret = Redacted.make("test-secret")

const signedPost = async (body: string, timestamp = Date.now()) =>
  SELF.fetch(`https://app${DISPATCH_PATH}`, {
    method: "POST",
    headers: { [SIGNATURE_HEADER]: await Effect.runPromise(sign(secret, timestamp, body)), "content-type": "application/json" },
    body
  })

describe("the wire", { timeout: 20_000 }, () => {
  it("a 200 that is not the dispatch endpoint's answer (a text/html page) is a failed attempt, never a success", async () => {
    const { run, scheduler } = fresh(env.SCHEDULER, { originUrl: `${env.ORIGIN_URL}/html` })
    const id = await run((s) => s.runAfter(0, "origin:shout", { text: "misrouted" }, fast))
    const job = await settled(scheduler, id)
    expect(job.state).toBe("deadLettered")
    expect(job.attempt).toBe(3)
    expect(Option.getOrThrow(job.lastError)).toContain("HTTP 200 that is not the dispatch endpoint's answer")
    expect((await origin("/runs"))[id]).toBeUndefined()
  })

  for (const status of [301, 302, 307] as const) {
    it(`a ${status} is not followed: a failed attempt that names the redirect, and nothing reaches its target`, async () => {
      const { run, scheduler } = fresh(env.SCHEDULER, { originUrl: `${env.ORIGIN_URL}/r${status}` })
      const before = await origin("/hits")
      const id = await run((s) => s.runAfter(0, "origin:shout", { text: "redirected" }, fast))
      const job = await settled(scheduler, id)
      expect(job.state).toBe("deadLettered")
      expect(Option.getOrThrow(job.lastError)).toContain(`HTTP ${status}: a redirect to /landing, not followed`)
      const after = await origin("/hits")
      expect(after[`POST /r${status}${DISPATCH_PATH}`] - (before[`POST /r${status}${DISPATCH_PATH}`] ?? 0)).toBe(3)
      expect([after["GET /landing"], after["POST /landing"]]).toEqual([before["GET /landing"], before["POST /landing"]])
    })
  }

  it("a replayed request runs nothing: in the isolate that ran it, and anywhere, once the SchedulerDO does not confirm it", async () => {
    const { run, scheduler } = fresh(env.SCHEDULER, { originUrl: `${env.ORIGIN_URL}/capture` })
    const id = await run((s) => s.runAfter(0, "origin:shout", { text: "once" }))
    expect((await settled(scheduler, id)).state).toBe("success")
    const captured: { headers: Record<string, string>; body: string } = await origin("/captured")
    expect(JSON.parse(captured.body)).toMatchObject({ id, attempt: 1, lease: expect.any(String), scheduler: expect.any(String) })
    const replay = (to: string) =>
      fetch(to, {
        method: "POST",
        headers: { [SIGNATURE_HEADER]: captured.headers[SIGNATURE_HEADER]!, "content-type": "application/json" },
        body: captured.body
      })
    // the Node endpoint ran it: it knows the request
    for (let i = 0; i < 5; i++) {
      const response = await replay(`${env.ORIGIN_URL}${DISPATCH_PATH}`)
      expect(response.status).toBe(409)
      expect(await response.json()).toEqual({ error: "a replayed request: nothing ran" })
    }
    expect((await origin("/runs"))[id]).toBe(1)
    // the Worker's endpoint never saw it, and asks the SchedulerDO, whose attempt is over
    const elsewhere = await SELF.fetch(`https://app${DISPATCH_PATH}`, {
      method: "POST",
      headers: { [SIGNATURE_HEADER]: captured.headers[SIGNATURE_HEADER]!, "content-type": "application/json" },
      body: captured.body
    })
    expect(elsewhere.status).toBe(409)
    expect((await elsewhere.json() as { error: string }).error).toContain("did not confirm")
  })

  it("a request signed more than 30 s ahead of the endpoint's clock is refused; a little skew is not", async () => {
    const body = JSON.stringify({ id: "job_0_skewedclock001", functionPath: "test:nobody", args: {}, shardKey: null, scheduledFor: 0, attempt: 1 })
    expect((await signedPost(body, Date.now() + 240_000)).status).toBe(401)
    expect((await signedPost(body, Date.now() - 6 * 60_000)).status).toBe(401)
    const skewed = await signedPost(body, Date.now() + 5_000)
    expect(skewed.status).toBe(422)
    expect(skewed.headers.get("x-lunora-reply")).toMatch(/^v1=[0-9a-f]{64}$/)
  })

  // (a body that streams past the cap is cut off as it arrives: tested in Node, test/Dispatch.test.ts, since an
  // abandoned request stream surfaces in workerd as an unhandled rejection in the test's isolate)
  it("a body over the cap is refused with 413 on its Content-Length, before it is read or its signature checked", async () => {
    const response = await SELF.fetch(`https://app${DISPATCH_PATH}`, { method: "POST", body: "x".repeat(50 * 1024 * 1024) })
    expect(response.status).toBe(413)
    expect(await response.json()).toEqual({ error: `the request is over ${MAX_REQUEST_BYTES} bytes` })
  })

  it("each job goes where it was scheduled to go, whatever a later call on the instance names", async () => {
    const instanceName = `test-${crypto.randomUUID()}`
    const viaBinding = fresh(env.SCHEDULER, { binding: "SELF_APP" }, instanceName)
    const viaOrigin = fresh(env.SCHEDULER, { originUrl: env.ORIGIN_URL }, instanceName)
    const echo = await viaBinding.run((s) => s.runAfter("1 second", Echo, { text: "to the binding" }))
    const shout = await viaOrigin.run((s) => s.runAfter(0, "origin:shout", { text: "to the origin" }))
    expect((await settled(viaOrigin.scheduler, shout)).result).toEqual(Option.some({ shouted: "TO THE ORIGIN", from: "node" }))
    expect((await settled(viaBinding.scheduler, echo)).result).toEqual(Option.some({ echoed: "to the binding", shardKey: null }))
    expect((await runs())[echo]).toBe(1)
  })
})
