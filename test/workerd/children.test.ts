/// <reference types="@cloudflare/workers-types" />
/// <reference types="@cloudflare/vitest-pool-workers" />
/**
 * A cancel that stops a job's children, end to end: the handler runs in the
 * test worker through the real dispatch round trip, schedules into the real
 * `SchedulerDO` (SQLite, alarms), and the cancel arrives while it runs.
 */
import { env } from "cloudflare:test"
import { Effect, Option } from "effect"
import { describe, expect, it } from "vitest"
import { fresh, settled, sleep } from "./support.js"
import { Parent } from "./worker.js"

describe("cancel of a running job, in workerd", { timeout: 20_000 }, () => {
  it("cancels the child it had scheduled and the one it schedules after the cancel; the job ends, not retried", async () => {
    const { instanceName, run, scheduler } = fresh(env.LONG_LEASE_SCHEDULER, { binding: "SELF_APP" })
    const id = await run((s) => s.runAfter(0, Parent, { instance: instanceName, ms: 1_500 }, { retry: { maxAttempts: 3 } }))
    const echoes = () => run((s) => Effect.map(s.list({ functionPath: "test:echo" }), (page) => page.jobs))
    const deadline = Date.now() + 8_000
    while ((await echoes()).length === 0 && Date.now() < deadline) await sleep(25)
    expect((await run((s) => s.get(id))).state).toBe("inProgress")

    expect(await run((s) => s.cancel(id))).toEqual({ _tag: "TooLate", id, state: "inProgress", children: 1 })
    const parent = await settled(scheduler, id)
    expect([parent.state, parent.attempt]).toEqual(["success", 1])
    const children = await echoes()
    expect(children.map((job) => [job.args, job.state, Option.getOrNull(job.parentId)])).toEqual([
      [{ text: "first child" }, "canceled", id],
      [{ text: "second child" }, "canceled", id]
    ])
    expect(parent.parentId).toEqual(Option.none())
  })
})
