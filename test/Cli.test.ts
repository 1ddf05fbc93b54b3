import { describe, expect, it } from "@effect/vitest"
import { CronSpec, Job } from "@lunora/scheduler"
import { Console, Effect, Schema } from "effect"
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Cli from "../src/bin/cli.js"
import * as Platform from "../src/bin/platform.js"

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
  run: (...args) =>
    Effect.gen(function*() {
      const stdout: Array<string> = []
      const stderr: Array<string> = []
      const base = yield* Effect.console
      const capture: Console.Console = {
        ...base,
        log: (...line) => Effect.sync(() => void stdout.push(line.join(" "))),
        error: (...line) => Effect.sync(() => void stderr.push(line.join(" ")))
      }
      const code = yield* Cli.run(["node", "lunora-scheduler", ...args]).pipe(
        Effect.withConsole(capture),
        Effect.provideService(Cli.WorkingDirectory, directory),
        Effect.provide(Platform.layer)
      )
      const text = (lines: ReadonlyArray<string>) => lines.map((line) => `${line}\n`).join("")
      return { code, stdout: text(stdout), stderr: text(stderr) }
    })
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
        stderr: "lunora-scheduler: src/plain.ts has no default export (or export named crons) made with cronJobs()\n"
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
          "lunora-scheduler: usage: lunora-scheduler crons --module <crons module> [--config wrangler.jsonc] [--check]\n"
      })
      expect((yield* run("crons", "--help")).code).toBe(0)
    }))
})
