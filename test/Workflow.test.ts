/**
 * Workflow jobs in the test layer, against a binding of the test's own
 * (anything with `create` and `get`): the instance id derived from the job,
 * the params checked, a second delivery creating nothing, and a binding the
 * layer was not given failing the job without a retry.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Option, Schema } from "effect"
import { Scheduler, Workflow } from "@lunora/scheduler"
import * as TestScheduler from "@lunora/scheduler/testing"

const Report = Workflow.make("reports:daily", { binding: "REPORTS", params: Schema.Struct({ day: Schema.String }) })

/** A Workflow binding in memory: what was created, by id; `create` refuses an existing id, as Cloudflare's does. */
const memoryBinding = () => {
  const instances = new Map<string, unknown>()
  return {
    instances,
    create: async ({ id, params }: { readonly id: string; readonly params: unknown }) => {
      if (instances.has(id)) throw new Error("instance.already_exists")
      instances.set(id, params)
      return { id }
    }
  }
}

describe("workflow jobs in the test layer", () => {
  it.live("create one instance per key with the payload as params; the same key again creates none", () => {
    const reports = memoryBinding()
    return Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const first = yield* scheduler.await(yield* scheduler.runAfter(0, Report, { day: "d1" }, { key: "report-d1" }))
      expect(first.result).toEqual(Option.some({ instanceId: "report-d1", created: true }))
      const again = yield* scheduler.await(yield* scheduler.runAfter(0, Report, { day: "d1" }, { key: "report-d1" }))
      expect(again.result).toEqual(Option.some({ instanceId: "report-d1", created: false }))
      expect([...reports.instances]).toEqual([["report-d1", { day: "d1" }]])
    }).pipe(Effect.provide(TestScheduler.layer({ workflows: { REPORTS: reports } })))
  })

  it.effect("refuses params that fail their Schema before anything is stored", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const error = yield* Effect.flip(scheduler.runAfter(0, Report, { day: 1 } as never))
      expect(error._tag).toBe("InvalidPayload")
      expect((yield* scheduler.list()).jobs).toEqual([])
    }).pipe(Effect.provide(TestScheduler.layer())))

  it.live("fails a job whose binding the layer was not given, without a retry", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.Scheduler
      const id = yield* scheduler.runAfter(0, Report, { day: "d2" }, { deadLetter: false })
      expect(Exit.isFailure(yield* Effect.exit(scheduler.await(id)))).toBe(true)
      const job = yield* scheduler.get(id)
      expect({ state: job.state, attempt: job.attempt }).toEqual({ state: "failed", attempt: 1 })
      expect(Option.getOrThrow(job.lastError)).toMatch(/no Workflow binding REPORTS/)
    }).pipe(Effect.provide(TestScheduler.layer())))

  it("Workflow.make refuses a name that is no function path and a binding that is no name", () => {
    expect(() => Workflow.make("daily", { binding: "REPORTS", params: Schema.Struct({}) })).toThrow(/function path/)
    expect(() => Workflow.make("reports:daily", { binding: "not a binding", params: Schema.Struct({}) })).toThrow(/binding/)
  })
})
