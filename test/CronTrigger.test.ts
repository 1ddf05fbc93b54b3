/**
 * `createCronTrigger` for one function, in Node (the Cloudflare entry as Node
 * loads it): both shapes, what they refuse when declared, and what their
 * types refuse. Serving them from `scheduled()` is tested in workerd
 * (test/workerd/SchedulerDO.test.ts).
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { CronSpec, Job, SchedulerError } from "@lunora/scheduler"
import { createCronTrigger, type FunctionTrigger, serveCronTriggers } from "../src/cloudflare/node.js"
import * as Codegen from "../src/Codegen.js"

const Cleanup = Job.make("cleanup:cleanupOldMessages", {
  payload: Schema.Struct({ days: Schema.Number, before: Schema.optional(Schema.DateFromString) })
})
const Sweep = Job.make("presence:sweep", { payload: Schema.Struct({}) })

/** What `f` throws. */
const thrown = (f: () => unknown): unknown => {
  try {
    f()
  } catch (error) {
    return error
  }
  throw new Error("expected a throw")
}

/** A namespace the options decode with; nothing here calls it. */
const namespace = { idFromName: () => ({}), get: () => ({}) } as never

describe("createCronTrigger for one function", () => {
  it("by its Job: the expression, the wrangler.jsonc fragment, and the job's path with its payload as its Schema encodes it", () => {
    const before = new Date("2026-01-01T00:00:00.000Z")
    const trigger = createCronTrigger({ schedule: "0 3 * * *", fn: Cleanup, args: { days: 30, before } })
    expect(trigger).toStrictEqual({
      crons: ["0 3 * * *"],
      wranglerJsonc: "\"triggers\": { \"crons\": [\"0 3 * * *\"] }",
      dispatcher: { functionPath: "cleanup:cleanupOldMessages", args: { days: 30, before: "2026-01-01T00:00:00.000Z" } }
    })
    // the same encoding cronJobs() stores
    const [cron] = CronSpec.cronJobs().cron("cleanup", "0 3 * * *", Cleanup, { days: 30, before }).definitions
    expect(trigger.dispatcher.args).toStrictEqual(JSON.parse(cron!.args))
    // typed by the Job: the path and the encoded payload
    const typed: FunctionTrigger<"cleanup:cleanupOldMessages", { readonly days: number; readonly before?: string | undefined }> = trigger
    expect(typed.dispatcher.functionPath).toBe("cleanup:cleanupOldMessages")
  })

  it("by its function path, args JSON and {} by default; so is an empty payload left out", () => {
    expect(createCronTrigger({ cron: "0 3 * * *", functionPath: "cleanup:cleanupOldMessages" })).toStrictEqual({
      crons: ["0 3 * * *"],
      wranglerJsonc: "\"triggers\": { \"crons\": [\"0 3 * * *\"] }",
      dispatcher: { functionPath: "cleanup:cleanupOldMessages", args: {} }
    })
    expect(createCronTrigger({ cron: "*/10 * * * *", functionPath: "presence:sweep", args: { region: "eu" } }).dispatcher)
      .toStrictEqual({ functionPath: "presence:sweep", args: { region: "eu" } })
    expect(createCronTrigger({ schedule: "*/10 * * * *", fn: Sweep }).dispatcher).toStrictEqual({ functionPath: "presence:sweep", args: {} })
  })

  it("writes the expression as a Cron Trigger: single spaces, weekdays by name (Cloudflare counts Sunday as 1)", () => {
    expect(createCronTrigger({ schedule: " 0  8 * * 1-5 ", fn: Sweep }).crons).toStrictEqual(["0 8 * * MON,TUE,WED,THU,FRI"])
    expect(createCronTrigger({ cron: "30 6 * * 0", functionPath: "presence:sweep" }).crons).toStrictEqual(["30 6 * * SUN"])
  })

  it("refuses, when declared, an expression no Cron Trigger runs, with InvalidCron and the reason", () => {
    const refused = (text: string) => {
      const error = thrown(() => createCronTrigger({ schedule: text, fn: Sweep }))
      expect(error).toBeInstanceOf(CronSpec.InvalidCron)
      expect(thrown(() => createCronTrigger({ cron: text, functionPath: "presence:sweep" }))).toStrictEqual(error)
      return (error as CronSpec.InvalidCron).reason
    }
    expect(refused("0 3 * *")).toBe("\"0 3 * *\" has 4 fields; a cron expression has 5, or 6 with seconds first")
    expect(refused("61 3 * * *")).toContain("61")
    expect(refused("0 0 31 2 *")).toContain("0 0 31 2 *")
    expect(refused("0 0 3 * * *")).toBe("Cron Triggers have no seconds field")
    expect(refused("0 3 * * 5L")).toBe("an nth or last weekday (# or L) is not translated for Cron Triggers")
  })

  it("refuses a payload its job refuses, and a malformed function path", () => {
    const payload = thrown(() => createCronTrigger({ schedule: "0 3 * * *", fn: Cleanup, args: { days: "thirty" as never } }))
    expect(payload).toBeInstanceOf(SchedulerError.InvalidPayload)
    expect(payload).toMatchObject({ functionPath: "cleanup:cleanupOldMessages", problem: "schema" })
    expect(thrown(() => createCronTrigger({ cron: "0 3 * * *", functionPath: "p", args: { at: 1n } }))).toBeInstanceOf(
      SchedulerError.InvalidOptions
    )
    expect(thrown(() => createCronTrigger({ cron: "0 3 * * *", functionPath: "presence:sweep", args: { at: 1n } })))
      .toMatchObject({ _tag: "InvalidPayload", problem: "serialization" })
  })

  it("refuses a mix of the shapes, in its types and when called", () => {
    const mixed = (options: object) => {
      const error = thrown(() => (createCronTrigger as (options: object) => unknown)(options))
      expect(error).toBeInstanceOf(SchedulerError.InvalidOptions)
      return (error as SchedulerError.InvalidOptions).reason
    }
    const shapes =
      "createCronTrigger takes one of { crons, namespace, binding | originUrl }, { schedule, fn, args? } and { cron, functionPath, args? }"
    expect(mixed({ schedule: "0 3 * * *", functionPath: "presence:sweep" })).toBe(`${shapes}; got schedule, functionPath`)
    expect(mixed({ cron: "0 3 * * *", fn: Sweep })).toBe(`${shapes}; got fn, cron`)
    expect(mixed({ schedule: "0 3 * * *", cron: "0 3 * * *", fn: Sweep })).toBe(`${shapes}; got schedule, fn, cron`)
    expect(mixed({ crons: CronSpec.cronJobs(), namespace, binding: "SELF", schedule: "0 3 * * *" })).toBe(`${shapes}; got crons, schedule`)
    expect(mixed({ crons: CronSpec.cronJobs(), namespace, binding: "SELF", args: {} })).toBe(`${shapes}; got crons, args`)
    expect(mixed({ cron: "0 3 * * *" })).toBe(`${shapes}; got cron`)
    expect(mixed({})).toBe(`${shapes}; got none of their fields`)
    expect(mixed({ schedule: "0 3 * * *", fn: "presence:sweep" })).toContain("fn is a Job made with Job.make")

    // each is a type error too (checked by `tsc`, which `npm test` runs first)
    // @ts-expect-error a function path with the Job form's expression
    void (() => createCronTrigger({ schedule: "0 3 * * *", functionPath: "presence:sweep" }))
    // @ts-expect-error a Job with the path form's expression
    void (() => createCronTrigger({ cron: "0 3 * * *", fn: Sweep }))
    // @ts-expect-error both expressions
    void (() => createCronTrigger({ schedule: "0 3 * * *", cron: "0 3 * * *", fn: Sweep }))
    // @ts-expect-error a cronJobs() value with a one-function field
    void (() => createCronTrigger({ crons: CronSpec.cronJobs(), namespace, binding: "SELF", schedule: "0 3 * * *" }))
    // @ts-expect-error the payload of a job that takes one is required
    void (() => createCronTrigger({ schedule: "0 3 * * *", fn: Cleanup }))
    // @ts-expect-error and typed by its Schema
    void (() => createCronTrigger({ schedule: "0 3 * * *", fn: Cleanup, args: { days: "thirty" } }))
  })

  it("keeps the { crons, namespace, binding } form as it was", () => {
    const crons = CronSpec.cronJobs().daily("nightly", { hourUTC: 2, minuteUTC: 0 }, Sweep, {})
    const trigger = createCronTrigger({ crons, namespace, binding: "SELF" })
    expect(trigger.crons).toStrictEqual(["0 2 * * *"])
    expect(typeof trigger.dispatcher).toBe("function")
  })
})

describe("serveCronTriggers", () => {
  it("refuses an element that is not a one-function trigger, and options the scheduler refuses", () => {
    const triggers = [createCronTrigger({ schedule: "0 3 * * *", fn: Sweep })]
    expect(typeof serveCronTriggers(triggers, { namespace, binding: "SELF" })).toBe("function")
    const notOne = thrown(() =>
      serveCronTriggers(
        [...triggers, createCronTrigger({ crons: CronSpec.cronJobs(), namespace, binding: "SELF" }) as never],
        { namespace, binding: "SELF" }
      )
    )
    expect(notOne).toMatchObject({ _tag: "InvalidOptions", reason: expect.stringContaining("element 1 is not one") })
    expect(thrown(() => serveCronTriggers(triggers, { namespace }))).toMatchObject({
      _tag: "InvalidOptions",
      reason: "give exactly one of originUrl and binding"
    })
  })
})

describe("Codegen.triggerExpressions over triggers", () => {
  it("gives the expressions of triggers and cronJobs() values together, deduplicated and sorted", () => {
    const crons = CronSpec.cronJobs().daily("nightly", { hourUTC: 2, minuteUTC: 0 }, Sweep, {})
    expect(Codegen.triggerExpressions([
      createCronTrigger({ schedule: "0 3 * * 1", fn: Sweep }),
      crons,
      createCronTrigger({ cron: "0 2 * * *", functionPath: "presence:sweep" })
    ])).toStrictEqual(Either.right(["0 2 * * *", "0 3 * * MON"]))
  })

  it("refuses a trigger, made by hand, whose expression is not the one createCronTrigger writes", () => {
    const byHand: FunctionTrigger = { crons: ["0 3 * * 1"], wranglerJsonc: "", dispatcher: { functionPath: "presence:sweep", args: {} } }
    const result = Codegen.triggerExpressions([byHand])
    expect(Either.isLeft(result) && result.left.message).toBe(
      "trigger \"0 3 * * 1\" of presence:sweep: a Cron Trigger writes it \"0 3 * * MON\" (as createCronTrigger does)"
    )
  })
})
