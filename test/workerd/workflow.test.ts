/**
 * Workflow jobs through the real `SchedulerDO`, starting instances of a
 * real Workflow in Miniflare (test/workerd/worker.ts's `ReportWorkflow`,
 * bound as `REPORTS`): a job and a cron fire each create one instance, with
 * an id derived from the job, so a second delivery of the same key starts
 * none; params that fail their Schema and a binding the Worker does not
 * have are refused before anything is stored.
 */
import { env } from "cloudflare:test"
import { Effect, Option, Schema } from "effect"
import { describe, expect, it } from "vitest"
import * as CronRegistry from "../../src/CronRegistry.js"
import * as CronSpec from "../../src/CronSpec.js"
import * as Workflow from "../../src/Workflow.js"
import { fresh, settled, sleep } from "./support.js"

const Report = Workflow.make("reports:daily", { binding: "REPORTS", params: Schema.Struct({ day: Schema.String }) })

/** Waits until the instance has finished; its status. */
const finished = async (id: string, timeoutMs = 10_000) => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const status = await (await env.REPORTS.get(id)).status()
    if (status.status === "complete" || status.status === "errored" || Date.now() > deadline) return status
    await sleep(50)
  }
}

describe("workflow jobs in the SchedulerDO", { timeout: 20_000 }, () => {
  it("start one instance per job, named by its key, with the payload as params; a second delivery starts none", async () => {
    const { run, scheduler } = fresh()
    const day = `2026-12-${crypto.randomUUID().slice(0, 8)}`
    const id = await run((s) => s.runAfter(0, Report, { day }, { key: `report-${day}` }))
    const job = await settled(scheduler, id)
    expect(job.state).toBe("success")
    expect(job.result).toEqual(Option.some({ instanceId: `report-${day}`, created: true }))
    expect(await finished(`report-${day}`)).toMatchObject({ status: "complete", output: { reported: day } })

    // the same occurrence delivered again (a new job with the same key, once the first has finished)
    const again = await run((s) => s.runAfter(0, Report, { day }, { key: `report-${day}` }))
    expect(again).not.toBe(id)
    expect((await settled(scheduler, again)).result).toEqual(Option.some({ instanceId: `report-${day}`, created: false }))
  })

  it("names a job without a key by its id, and a key that is no instance id by its hash", async () => {
    const { run, scheduler } = fresh()
    const plain = await run((s) => s.runAfter(0, Report, { day: "plain" }))
    expect((await settled(scheduler, plain)).result).toEqual(Option.some({ instanceId: plain, created: true }))
    const keyed = await run((s) => s.runAfter(0, Report, { day: "keyed" }, { key: "report: with spaces" }))
    const result = Option.getOrThrow((await settled(scheduler, keyed)).result) as { instanceId: string }
    expect(result.instanceId).toMatch(/^k-[0-9a-f]{64}$/)
    expect(await finished(result.instanceId)).toMatchObject({ status: "complete", output: { reported: "keyed" } })
  })

  it("starts an instance from a cron fire, named by the occurrence", async () => {
    const { instanceName, run, scheduler } = fresh()
    const crons = CronSpec.cronJobs().interval("hourly report", { hours: 1 }, Report, { day: "cron" })
    const fired = await Effect.runPromise(
      Effect.flatMap(CronRegistry.CronRegistry, (registry) => registry.trigger("hourly report")).pipe(
        Effect.provide(CronRegistry.layer({ namespace: env.SCHEDULER, binding: "SELF_APP", instanceName, crons }))
      )
    )
    const job = await settled(scheduler, fired)
    expect(job.state).toBe("success")
    const { instanceId } = Option.getOrThrow(job.result) as { instanceId: string }
    expect(instanceId).toMatch(/^k-[0-9a-f]{64}$/)
    expect(await finished(instanceId)).toMatchObject({ status: "complete", output: { reported: "cron" } })
    expect((await run((s) => s.get(fired))).functionPath).toBe("reports:daily")
  })

  it("refuses params that fail the Schema, and a binding the Worker does not have, storing nothing", async () => {
    const { run } = fresh()
    const badParams = await run((s) => Effect.flip(s.runAfter(0, Report, { day: 42 } as never)))
    expect(badParams._tag).toBe("InvalidPayload")
    expect(() => CronSpec.cronJobs().interval("bad", { hours: 1 }, Report, { day: 42 } as never)).toThrow()
    const Missing = Workflow.make("reports:missing", { binding: "NO_SUCH_WORKFLOW", params: Schema.Struct({}) })
    const missing = await run((s) => Effect.flip(s.runAfter(0, Missing, {})))
    expect(missing).toMatchObject({ _tag: "InvalidOptions" })
    expect(missing.message).toMatch(/no Workflow binding NO_SUCH_WORKFLOW/)
    expect((await run((s) => s.list())).jobs).toEqual([])
  })
})
