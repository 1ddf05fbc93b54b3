import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { parse } from "jsonc-parser"
import { CronSpec, Job } from "@lunora/scheduler"
import * as Codegen from "../src/Codegen.js"

const Sweep = Job.make("maintenance:sweep", { payload: Schema.Struct({}) })

const expressionsOf = (declare: (crons: CronSpec.CronJobs) => void) => {
  const crons = CronSpec.cronJobs()
  declare(crons)
  return Codegen.triggerExpressions(crons)
}

const refusalOf = (declare: (crons: CronSpec.CronJobs) => void): Codegen.CodegenError => {
  const result = expressionsOf(declare)
  if (Either.isRight(result)) throw new Error(`expected a refusal, got ${JSON.stringify(result.right)}`)
  return result.left
}

describe("Codegen.triggerExpressions", () => {
  it("compiles interval, hourly, daily, weekly, monthly and cron entries to UTC 5-field expressions", () => {
    const result = expressionsOf((crons) =>
      crons
        .interval("every 15 minutes", { minutes: 15 }, Sweep, {})
        .interval("every 2 hours", { hours: 2 }, Sweep, {})
        .hourly("hourly", { minuteUTC: 30 }, Sweep, {})
        .daily("daily", { hourUTC: 9, minuteUTC: 5 }, Sweep, {})
        .weekly("weekly", { dayOfWeek: "monday", hourUTC: 8, minuteUTC: 0 }, Sweep, {})
        .monthly("monthly", { day: 1, hourUTC: 0, minuteUTC: 0 }, Sweep, {})
        .cron("weekdays", "0 9 * * 1-5", Sweep, {})
    )
    expect(result).toStrictEqual(Either.right([
      "*/15 * * * *",
      "0 */2 * * *",
      "0 0 1 * *",
      // weekdays by name: Cloudflare counts Sunday as 1, cron-parser as 0
      "0 8 * * MON",
      "0 9 * * MON,TUE,WED,THU,FRI",
      "30 * * * *",
      "5 9 * * *"
    ]))
  })

  it("deduplicates and sorts, so the order of declaration does not matter", () => {
    const forward = expressionsOf((crons) =>
      crons
        .interval("nightly", { hours: 24 }, Sweep, {})
        .daily("midnight", { hourUTC: 0, minuteUTC: 0 }, Sweep, {})
        .interval("often", { minutes: 1 }, Sweep, {})
    )
    const backward = expressionsOf((crons) =>
      crons
        .interval("often", { minutes: 1 }, Sweep, {})
        .daily("midnight", { hourUTC: 0, minuteUTC: 0 }, Sweep, {})
        .interval("nightly", { hours: 24 }, Sweep, {})
    )
    expect(forward).toStrictEqual(Either.right(["* * * * *", "0 0 * * *"]))
    expect(backward).toStrictEqual(forward)
  })

  it("refuses a 30-second interval, naming the cron", () => {
    const error = refusalOf((crons) =>
      crons.daily("digest", { hourUTC: 9, minuteUTC: 0 }, Sweep, {}).interval("presence", { seconds: 30 }, Sweep, {})
    )
    expect(error._tag).toBe("CodegenError")
    expect(error.refusals).toStrictEqual([{ name: "presence", reason: "an interval of 30000 ms is not whole minutes" }])
    expect(error.message).toBe("cron \"presence\" cannot be a Cron Trigger: an interval of 30000 ms is not whole minutes")
  })

  it("refuses a cron in another time zone and a 6-field expression, naming each", () => {
    const error = refusalOf((crons) =>
      crons
        .cron("standup", "0 9 * * 1-5", Sweep, {}, { timeZone: "Europe/London" })
        .cron("fine", "0 9 * * *", Sweep, {})
        .cron("every 10 seconds", "*/10 * * * * *", Sweep, {})
    )
    expect(error.refusals.map((refusal) => refusal.name)).toStrictEqual(["standup", "every 10 seconds"])
    expect(error.message).toBe(
      "cron \"standup\" cannot be a Cron Trigger: Cron Triggers run in UTC; this cron is in Europe/London; " +
        "cron \"every 10 seconds\" cannot be a Cron Trigger: Cron Triggers have no seconds field"
    )
  })
})

const WITH_TRIGGERS = `/**
 * The app's Worker. Docs: https://developers.cloudflare.com/workers/wrangler/configuration/
 */
{
  "$schema": "node_modules/wrangler/config-schema.json",
  "name": "app", // the Worker's name
  "main": "src/index.ts",
  "compatibility_date": "2026-03-01",
  /* Durable Objects */
  "durable_objects": {
    "bindings": [{ "name": "SCHEDULER", "class_name": "SchedulerDO" }],
  },
  "triggers": {
    // written by lunora-scheduler crons
    "crons": ["0 * * * *", "*/30 * * * *"], /* do not edit by hand */
  },
  "vars": {
    "LUNORA_SCHEDULER_LEASE": "30 seconds", // a lease per dispatch
  },
}
`

const WITHOUT_TRIGGERS = `// The app's Worker
{
  "name": "app",
  "main": "src/index.ts", // entry
  /* bindings */
  "vars": { "MODE": "production" }
  // "kv_namespaces": [],
}
`

describe("Codegen.updateWranglerJsonc", () => {
  it("replaces only the existing triggers.crons, keeping every comment and trailing comma", () => {
    const updated = Codegen.updateWranglerJsonc(WITH_TRIGGERS, ["*/5 * * * *", "0 9 * * *"])
    expect(updated).toBe(
      WITH_TRIGGERS.replace("[\"0 * * * *\", \"*/30 * * * *\"]", "[\"*/5 * * * *\", \"0 9 * * *\"]")
    )
    expect(parse(updated, [], { allowTrailingComma: true }).triggers).toStrictEqual({
      crons: ["*/5 * * * *", "0 9 * * *"]
    })
  })

  it("adds triggers after the last property when absent, leaving the other lines as they were", () => {
    const updated = Codegen.updateWranglerJsonc(WITHOUT_TRIGGERS, ["*/5 * * * *", "0 9 * * *"])
    expect(updated).toBe(`// The app's Worker
{
  "name": "app",
  "main": "src/index.ts", // entry
  /* bindings */
  "vars": { "MODE": "production" },
  "triggers": {
    "crons": ["*/5 * * * *", "0 9 * * *"]
  }
  // "kv_namespaces": [],
}
`)
  })

  it("is idempotent, and returns the text as is when the array already holds these expressions", () => {
    for (const text of [WITH_TRIGGERS, WITHOUT_TRIGGERS]) {
      const once = Codegen.updateWranglerJsonc(text, ["0 0 * * *"])
      expect(Codegen.updateWranglerJsonc(once, ["0 0 * * *"])).toBe(once)
    }
    expect(Codegen.updateWranglerJsonc(WITH_TRIGGERS, ["0 * * * *", "*/30 * * * *"])).toBe(WITH_TRIGGERS)
  })

  it("keeps the comments of the expressions that stay in a multi-line array, and drops those of removed ones", () => {
    const text = `{
  "triggers": {
    "crons": [ // generated
      // nightly cleanup
      "0 0 * * *", // midnight UTC
      "0 12 * * *" // removed below
    ]
  }
}`
    expect(Codegen.updateWranglerJsonc(text, ["*/5 * * * *", "0 0 * * *"])).toBe(`{
  "triggers": {
    "crons": [ // generated
      "*/5 * * * *",
      // nightly cleanup
      "0 0 * * *" // midnight UTC
    ]
  }
}`)
  })

  it("follows the file's indentation and line endings", () => {
    const tabs = "{\r\n\t\"name\": \"app\",\r\n\t\"triggers\": {\r\n\t\t\"crons\": [\r\n\t\t\t\"0 * * * *\"\r\n\t\t]\r\n\t}\r\n}\r\n"
    expect(Codegen.updateWranglerJsonc(tabs, ["*/5 * * * *", "0 * * * *"])).toBe(
      "{\r\n\t\"name\": \"app\",\r\n\t\"triggers\": {\r\n\t\t\"crons\": [\r\n\t\t\t\"*/5 * * * *\",\r\n\t\t\t\"0 * * * *\"\r\n\t\t]\r\n\t}\r\n}\r\n"
    )
    const fourSpaces = "{\n    \"name\": \"app\"\n}\n"
    expect(Codegen.updateWranglerJsonc(fourSpaces, ["0 * * * *"])).toBe(
      "{\n    \"name\": \"app\",\n    \"triggers\": {\n        \"crons\": [\"0 * * * *\"]\n    }\n}\n"
    )
  })

  it("refuses text that is not a JSONC object", () => {
    expect(() => Codegen.updateWranglerJsonc("{ \"name\": \"app\",, }", [])).toThrow(
      "invalid Wrangler config: PropertyNameExpected at line 1, column 17"
    )
    expect(() => Codegen.updateWranglerJsonc("[]", [])).toThrow(Codegen.InvalidConfig)
  })
})
