import { describe, expect, it } from "@effect/vitest"
import { CronSpec, Job } from "@lunora/scheduler"
import { Effect, Schema } from "effect"
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Cli from "../src/bin/cli.js"
import { runCli } from "./support/cli.js"

const NODE_MODULES = fileURLToPath(new URL("../node_modules", import.meta.url))

const CONFIG = `// The app's Worker
{
  "name": "app",
  "main": "src/index.ts", // entry
  /* bindings */
  "vars": { "MODE": "production" }
}
`

const WRITTEN = `// The app's Worker
{
  "name": "app",
  "main": "src/index.ts", // entry
  /* bindings */
  "vars": { "MODE": "production" },
  "triggers": {
    "crons": ["*/5 * * * *", "0 9 * * *"]
  }
}
`

/** A crons module as a user writes it; `@lunora/scheduler` is not in the project's node_modules. */
const USER_MODULE = `import { CronSpec, Job } from "@lunora/scheduler"
import { Schema } from "effect"

const Sweep = Job.make("maintenance:sweep", { payload: Schema.Struct({}) })

export default CronSpec.cronJobs()
  .interval("sweep", { minutes: 5 }, Sweep, {})
  .daily("digest", { hourUTC: 9, minuteUTC: 0 }, Sweep, {})
`

const Sweep = Job.make("maintenance:sweep", { payload: Schema.Struct({}) })

/** A module exporting as `crons` what a `cronJobs()` value holds: quick to bundle, no imports. */
const definitionsModule = (every: CronSpec.IntervalSpec) => {
  const crons = CronSpec.cronJobs()
    .interval("sweep", every, Sweep, {})
    .daily("digest", { hourUTC: 9, minuteUTC: 0 }, Sweep, {})
  return `export const crons = ${JSON.stringify({ definitions: crons.definitions })}\n`
}

/** `CONFIG` with `triggers.crons` written as the command writes it. */
const writtenWith = (...expressions: ReadonlyArray<string>) =>
  CONFIG.replace(
    "\"vars\": { \"MODE\": \"production\" }\n",
    `"vars": { "MODE": "production" },\n  "triggers": {\n    "crons": [${expressions.map((e) => JSON.stringify(e)).join(", ")}]\n  }\n`
  )

/** A module of one-function triggers as a user writes it: one by its `Job`, one by its function path. */
const TRIGGERS_MODULE = `import { Job } from "@lunora/scheduler"
import { createCronTrigger } from "@lunora/scheduler/cloudflare"
import * as Schema from "effect/Schema"

const Cleanup = Job.make("cleanup:cleanupOldMessages", { payload: Schema.Struct({ days: Schema.Number }) })

export const triggers = [
  createCronTrigger({ schedule: "0 3 * * 1", fn: Cleanup, args: { days: 30 } }),
  createCronTrigger({ cron: "*/10 * * * *", functionPath: "presence:sweep" })
]
`

/** One-function triggers as data, as `createCronTrigger` gives them: quick to bundle, no imports. */
const triggersData = (...triggers: ReadonlyArray<readonly [cron: string, functionPath: string]>) =>
  JSON.stringify(triggers.map(([cron, functionPath]) => ({
    crons: [cron],
    wranglerJsonc: `"triggers": { "crons": ${JSON.stringify([cron])} }`,
    dispatcher: { functionPath, args: {} }
  })))

/** The app's handlers, as a user writes them: a Layer of `Job.toLayer` handlers, the export named `handlers`. */
const HANDLERS_MODULE = `import { Job } from "@lunora/scheduler"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"

const Sweep = Job.make("maintenance:sweep", { payload: Schema.Struct({}) })
const Cleanup = Job.make("cleanup:cleanupOldMessages", { payload: Schema.Struct({ days: Schema.Number }) })

export const handlers = Layer.mergeAll(Sweep.toLayer(() => Effect.void), Cleanup.toLayer(() => Effect.void))
`

/** `definitionsModule`'s crons, with their function path as given, and the triggers of `triggersData`. */
const declaringModule = (
  functionPath: string,
  ...triggers: ReadonlyArray<readonly [cron: string, functionPath: string]>
) => {
  const crons = CronSpec.cronJobs()
    .interval("sweep", { minutes: 5 }, functionPath, {})
    .daily("digest", { hourUTC: 9, minuteUTC: 0 }, functionPath, {})
  return `export const crons = ${JSON.stringify({ definitions: crons.definitions })}\n` +
    `export const triggers = ${triggersData(...triggers)}\n`
}

interface Project {
  readonly directory: string
  readonly write: (file: string, text: string) => Effect.Effect<void>
  readonly read: (file: string) => Effect.Effect<string>
  /** Runs `lunora-scheduler ...args` in the project: its exit code and what it printed. */
  readonly run: (...args: ReadonlyArray<string>) => Effect.Effect<{
    readonly code: number
    readonly stdout: string
    readonly stderr: string
  }>
}

const project = Effect.acquireRelease(
  Effect.promise(async () => {
    const directory = await mkdtemp(path.join(tmpdir(), "lunora-cli-"))
    await symlink(NODE_MODULES, path.join(directory, "node_modules"), "dir")
    return directory
  }),
  (directory) => Effect.promise(() => rm(directory, { recursive: true, force: true }))
).pipe(Effect.map((directory): Project => ({
  directory,
  write: (file, text) =>
    Effect.promise(async () => {
      await mkdir(path.dirname(path.join(directory, file)), { recursive: true })
      await writeFile(path.join(directory, file), text)
    }),
  read: (file) => Effect.promise(() => readFile(path.join(directory, file), "utf8")),
  run: (...args) => runCli(args, directory)
})))

describe("lunora-scheduler crons", () => {
  it.scoped("bundles a TypeScript crons module importing @lunora/scheduler and writes its triggers, keeping comments", () =>
    Effect.gen(function*() {
      const { read, run, write } = yield* project
      yield* write("src/crons.ts", USER_MODULE)
      yield* write("wrangler.jsonc", CONFIG)

      expect(yield* run("crons", "--module", "src/crons.ts")).toStrictEqual({
        code: 0,
        stdout: "wrangler.jsonc: wrote triggers.crons [\"*/5 * * * *\", \"0 9 * * *\"]\n",
        stderr: ""
      })
      expect(yield* read("wrangler.jsonc")).toBe(WRITTEN)
    }), 20_000)

  it.scoped("bundles a crons module importing the package's modules by path, as a Worker does", () =>
    Effect.gen(function*() {
      const { read, run, write } = yield* project
      yield* write("src/crons.ts", USER_MODULE
        .replace(`import { CronSpec, Job } from "@lunora/scheduler"`, `import * as CronSpec from "@lunora/scheduler/CronSpec"\nimport * as Job from "@lunora/scheduler/Job"`)
        .replace(`import { Schema } from "effect"`, `import * as Schema from "effect/Schema"`))
      yield* write("wrangler.jsonc", CONFIG)
      expect((yield* run("crons", "--module", "src/crons.ts")).code).toBe(0)
      expect(yield* read("wrangler.jsonc")).toBe(WRITTEN)
    }), 20_000)

  it("resolves every entry package.json exports", async () => {
    const manifest = JSON.parse(await readFile(fileURLToPath(new URL("../package.json", import.meta.url)), "utf8")) as {
      readonly exports: Record<string, unknown>
    }
    const entries = Object.keys(manifest.exports).filter((key) => key !== "./package.json")
      .map((key) => key === "." ? "@lunora/scheduler" : `@lunora/scheduler/${key.slice(2)}`)
    expect(Object.keys(Cli.ENTRIES).sort()).toEqual(entries.sort())
  })

  it.scoped("exits 0 and changes nothing when triggers.crons is up to date, with or without --check", () =>
    Effect.gen(function*() {
      const { read, run, write } = yield* project
      yield* write("crons.mjs", definitionsModule({ minutes: 5 }))
      yield* write("wrangler.jsonc", WRITTEN)
      const upToDate = {
        code: 0,
        stdout: "wrangler.jsonc: triggers.crons is up to date [\"*/5 * * * *\", \"0 9 * * *\"]\n",
        stderr: ""
      }

      expect(yield* run("crons", "-m", "crons.mjs", "--config", "wrangler.jsonc", "--check")).toStrictEqual(upToDate)
      expect(yield* run("crons", "-m", "crons.mjs")).toStrictEqual(upToDate)
      expect(yield* read("wrangler.jsonc")).toBe(WRITTEN)
    }))

  it.scoped("--check exits 1 when triggers.crons is out of date, leaving the file as it was", () =>
    Effect.gen(function*() {
      const { read, run, write } = yield* project
      yield* write("crons.mjs", definitionsModule({ minutes: 10 }))
      yield* write("config/wrangler.jsonc", WRITTEN)

      expect(yield* run("crons", "--module", "crons.mjs", "-c", "config/wrangler.jsonc", "--check")).toStrictEqual({
        code: 1,
        stdout: "",
        stderr: "config/wrangler.jsonc: triggers.crons is out of date; expected [\"*/10 * * * *\", \"0 9 * * *\"]" +
          " (run lunora-scheduler crons to update it)\n"
      })
      expect(yield* read("config/wrangler.jsonc")).toBe(WRITTEN)
    }))

  it.scoped("exits 2 naming every cron no Cron Trigger can express, leaving the file as it was", () =>
    Effect.gen(function*() {
      const { read, run, write } = yield* project
      yield* write("crons.mjs", definitionsModule({ seconds: 30 }))
      yield* write("wrangler.jsonc", CONFIG)

      expect(yield* run("crons", "--module", "crons.mjs")).toStrictEqual({
        code: 2,
        stdout: "",
        stderr:
          "lunora-scheduler: cron \"sweep\" cannot be a Cron Trigger: an interval of 30000 ms is not whole minutes\n"
      })
      expect(yield* read("wrangler.jsonc")).toBe(CONFIG)
    }))

  it.scoped("exits 2 when the crons module or the Wrangler config is missing", () =>
    Effect.gen(function*() {
      const { directory, run, write } = yield* project
      yield* write("src/crons.ts", "export default {}")
      yield* write("wrangler.toml", "name = \"app\"\n")

      expect(yield* run("crons", "--module", "src/nope.ts")).toStrictEqual({
        code: 2,
        stdout: "",
        stderr: `lunora-scheduler: crons module not found: ${path.join(directory, "src", "nope.ts")}\n`
      })
      expect(yield* run("crons", "--module", "src/crons.ts")).toStrictEqual({
        code: 2,
        stdout: "",
        stderr: `lunora-scheduler: Wrangler config not found: ${path.join(directory, "wrangler.jsonc")}\n`
      })
      expect(yield* run("crons", "--module", "src/crons.ts", "--config", "wrangler.toml")).toStrictEqual({
        code: 2,
        stdout: "",
        stderr: "lunora-scheduler: wrangler.toml: only wrangler.jsonc or wrangler.json can be updated\n"
      })
    }))

  it.scoped("exits 2 when the module has no cronJobs() export or does not bundle", () =>
    Effect.gen(function*() {
      const { directory, run, write } = yield* project
      yield* write("wrangler.jsonc", CONFIG)
      yield* write("src/plain.ts", "export const crons = { every: \"5 minutes\" }\nexport default 42\n")
      yield* write("src/broken.ts", "import { nothing } from \"./missing.js\"\nexport default nothing\n")

      expect(yield* run("crons", "--module", "src/plain.ts")).toStrictEqual({
        code: 2,
        stdout: "",
        stderr: "lunora-scheduler: src/plain.ts has no default export (or export named crons) made with cronJobs(), " +
          "nor an array of createCronTrigger({ schedule, fn }) triggers (as default or as triggers)\n"
      })
      expect(yield* run("crons", "--module", "src/broken.ts")).toStrictEqual({
        code: 2,
        stdout: "",
        stderr: `lunora-scheduler: cannot bundle ${path.join(directory, "src", "broken.ts")}: ` +
          `src/broken.ts:1: Could not resolve "./missing.js"\n`
      })
    }))

  it.scoped("exits 2 when the Wrangler config is not a JSONC object, leaving it as it was", () =>
    Effect.gen(function*() {
      const { read, run, write } = yield* project
      yield* write("crons.mjs", "export const crons = { definitions: [] }\n")
      yield* write("wrangler.jsonc", "{ \"name\": \"app\",, }")

      expect(yield* run("crons", "--module", "crons.mjs")).toStrictEqual({
        code: 2,
        stdout: "",
        stderr: "lunora-scheduler: wrangler.jsonc: invalid Wrangler config: PropertyNameExpected at line 1, column 17\n"
      })
      expect(yield* read("wrangler.jsonc")).toBe("{ \"name\": \"app\",, }")
    }))

  it.scoped("exits 2 on a missing option or command, after @effect/cli printed why", () =>
    Effect.gen(function*() {
      const { run } = yield* project
      const missingModule = yield* run("crons")
      expect(missingModule.code).toBe(2)
      expect(missingModule.stderr).toContain("--module")

      expect(yield* run()).toStrictEqual({
        code: 2,
        stdout: "",
        stderr:
          "lunora-scheduler: usage: lunora-scheduler crons --module <crons module> [--config wrangler.jsonc] " +
          "[--handlers <handlers module>] [--check]\n"
      })
      expect((yield* run("crons", "--help")).code).toBe(0)
    }))
})

describe("lunora-scheduler crons, with one-function triggers", () => {
  it.scoped("bundles a module of createCronTrigger({ schedule, fn }) and ({ cron, functionPath }) triggers and writes their expressions", () =>
    Effect.gen(function*() {
      const { read, run, write } = yield* project
      yield* write("src/triggers.ts", TRIGGERS_MODULE)
      yield* write("wrangler.jsonc", CONFIG)
      const expressions = "[\"*/10 * * * *\", \"0 3 * * MON\"]"

      expect(yield* run("crons", "--module", "src/triggers.ts")).toStrictEqual({
        code: 0,
        stdout: `wrangler.jsonc: wrote triggers.crons ${expressions}\n`,
        stderr: ""
      })
      expect(yield* read("wrangler.jsonc")).toBe(writtenWith("*/10 * * * *", "0 3 * * MON"))
      expect(yield* run("crons", "--module", "src/triggers.ts", "--check")).toStrictEqual({
        code: 0,
        stdout: `wrangler.jsonc: triggers.crons is up to date ${expressions}\n`,
        stderr: ""
      })
    }), 20_000)

  it.scoped("takes a default export that is an array of triggers, and checks it like a cronJobs() module", () =>
    Effect.gen(function*() {
      const { read, run, write } = yield* project
      yield* write("triggers.mjs", `export default ${triggersData(["0 3 * * *", "cleanup:a"], ["0 3 * * *", "cleanup:b"])}\n`)
      yield* write("wrangler.jsonc", CONFIG)

      expect(yield* run("crons", "-m", "triggers.mjs", "--check")).toStrictEqual({
        code: 1,
        stdout: "",
        stderr: "wrangler.jsonc: triggers.crons is out of date; expected [\"0 3 * * *\"] (run lunora-scheduler crons to update it)\n"
      })
      expect(yield* read("wrangler.jsonc")).toBe(CONFIG)
      expect((yield* run("crons", "-m", "triggers.mjs")).code).toBe(0)
      expect(yield* read("wrangler.jsonc")).toBe(writtenWith("0 3 * * *"))
    }))

  it.scoped("writes the expressions of a cronJobs() export and a triggers export together, deduplicated and sorted", () =>
    Effect.gen(function*() {
      const { read, run, write } = yield* project
      yield* write("crons.mjs", declaringModule("maintenance:sweep", ["0 9 * * *", "cleanup:a"], ["0 3 * * *", "cleanup:b"]))
      yield* write("wrangler.jsonc", CONFIG)

      expect((yield* run("crons", "-m", "crons.mjs")).code).toBe(0)
      expect(yield* read("wrangler.jsonc")).toBe(writtenWith("*/5 * * * *", "0 3 * * *", "0 9 * * *"))
    }))

  it.scoped("exits 2 naming every trigger whose expression is not a Cron Trigger's, leaving the file as it was", () =>
    Effect.gen(function*() {
      const { read, run, write } = yield* project
      yield* write("triggers.mjs", `export const triggers = ${triggersData(["0 3 * * 1", "cleanup:a"], ["0 0 3 * * *", "cleanup:b"])}\n`)
      yield* write("wrangler.jsonc", CONFIG)

      expect(yield* run("crons", "-m", "triggers.mjs")).toStrictEqual({
        code: 2,
        stdout: "",
        stderr: "lunora-scheduler: trigger \"0 3 * * 1\" of cleanup:a: a Cron Trigger writes it \"0 3 * * MON\" " +
          "(as createCronTrigger does); trigger \"0 0 3 * * *\" of cleanup:b: Cron Triggers have no seconds field\n"
      })
      expect(yield* read("wrangler.jsonc")).toBe(CONFIG)
    }))

  it.scoped("exits 2 when createCronTrigger refuses an expression as the module loads, or triggers is not an array of triggers", () =>
    Effect.gen(function*() {
      const { directory, run, write } = yield* project
      yield* write("wrangler.jsonc", CONFIG)
      yield* write("src/bad.ts", TRIGGERS_MODULE.replace("\"0 3 * * 1\"", "\"0 3 * *\""))
      yield* write("odd.mjs", "export const triggers = [{ crons: [\"0 3 * * *\"], dispatcher: () => {} }]\n")

      expect(yield* run("crons", "-m", "src/bad.ts")).toStrictEqual({
        code: 2,
        stdout: "",
        stderr: `lunora-scheduler: cannot load ${path.join(directory, "src", "bad.ts")}: invalid cron "0 3 * *": ` +
          "\"0 3 * *\" has 4 fields; a cron expression has 5, or 6 with seconds first\n"
      })
      expect(yield* run("crons", "-m", "odd.mjs")).toStrictEqual({
        code: 2,
        stdout: "",
        stderr: "lunora-scheduler: odd.mjs: its export named triggers is not an array of createCronTrigger({ schedule, fn }) " +
          "or createCronTrigger({ cron, functionPath }) triggers\n"
      })
    }), 20_000)
})

describe("lunora-scheduler crons --handlers", () => {
  it.scoped("builds the handlers layer and passes when every cron and trigger has a handler, with or without --check", () =>
    Effect.gen(function*() {
      const { read, run, write } = yield* project
      yield* write("crons.mjs", declaringModule("maintenance:sweep", ["0 3 * * *", "cleanup:cleanupOldMessages"]))
      yield* write("src/handlers.ts", HANDLERS_MODULE)
      yield* write("wrangler.jsonc", CONFIG)

      expect(yield* run("crons", "-m", "crons.mjs", "--handlers", "src/handlers.ts")).toStrictEqual({
        code: 0,
        stdout: "wrangler.jsonc: wrote triggers.crons [\"*/5 * * * *\", \"0 3 * * *\", \"0 9 * * *\"]\n",
        stderr: ""
      })
      expect(yield* read("wrangler.jsonc")).toBe(writtenWith("*/5 * * * *", "0 3 * * *", "0 9 * * *"))
      expect((yield* run("crons", "-m", "crons.mjs", "--handlers", "src/handlers.ts", "--check")).code).toBe(0)
    }), 20_000)

  it.scoped("exits 2 naming every function path without a handler and its cron or trigger, changing nothing, even with --check", () =>
    Effect.gen(function*() {
      const { read, run, write } = yield* project
      yield* write("crons.mjs", declaringModule("maintenance:swep", ["0 3 * * *", "cleanup:cleanupOldMessages"], ["*/10 * * * *", "presence:sweep"]))
      // the default export, this time
      yield* write("src/handlers.ts", HANDLERS_MODULE.replace("export const handlers =", "export default"))
      yield* write("wrangler.jsonc", CONFIG)
      const refused = {
        code: 2,
        stdout: "",
        stderr: "lunora-scheduler: no handler is registered for maintenance:swep (cron \"sweep\"), maintenance:swep (cron \"digest\"), " +
          "presence:sweep (trigger \"*/10 * * * *\") in the handlers of src/handlers.ts\n"
      }

      expect(yield* run("crons", "-m", "crons.mjs", "--handlers", "src/handlers.ts")).toStrictEqual(refused)
      expect(yield* read("wrangler.jsonc")).toBe(CONFIG)
      // out of date as well: the unknown paths are the error, not the stale config
      expect(yield* run("crons", "-m", "crons.mjs", "--handlers", "src/handlers.ts", "--check")).toStrictEqual(refused)
      // without --handlers the same module is written
      expect((yield* run("crons", "-m", "crons.mjs")).code).toBe(0)
    }), 20_000)

  it.scoped("exits 2 when the handlers module is missing, exports no Layer, or its layer fails to build", () =>
    Effect.gen(function*() {
      const { directory, run, write } = yield* project
      yield* write("crons.mjs", definitionsModule({ minutes: 5 }))
      yield* write("wrangler.jsonc", CONFIG)
      yield* write("plain.mjs", "export const handlers = { sweep: () => {} }\nexport default 42\n")
      yield* write("src/failing.ts", `import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
export const handlers = Layer.effectDiscard(Effect.fail(new Error("no database in the command line")))
`)

      expect(yield* run("crons", "-m", "crons.mjs", "--handlers", "src/nope.ts")).toStrictEqual({
        code: 2,
        stdout: "",
        stderr: `lunora-scheduler: handlers module not found: ${path.join(directory, "src", "nope.ts")}\n`
      })
      expect(yield* run("crons", "-m", "crons.mjs", "--handlers", "plain.mjs")).toStrictEqual({
        code: 2,
        stdout: "",
        stderr: "lunora-scheduler: plain.mjs has no default export (or export named handlers) that is a Layer of handlers\n"
      })
      const failing = yield* run("crons", "-m", "crons.mjs", "--handlers", "src/failing.ts")
      expect(failing.code).toBe(2)
      expect(failing.stderr).toMatch(/^lunora-scheduler: cannot build the handlers layer of src\/failing\.ts: .*no database in the command line/)
    }), 20_000)
})
