/// <reference types="node" />
/**
 * The `lunora-scheduler` command line: `crons` compiles the crons of a
 * `cronJobs()` module to Cron Trigger expressions and writes them to
 * `triggers.crons` of the Wrangler config, keeping its comments.
 *
 * Exit codes: 0 done or up to date, 1 out of date (`--check`), 2 error.
 *
 * @since 0.1.0
 */
import type * as CliApp from "@effect/cli/CliApp"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Predicate from "effect/Predicate"
import { identity } from "effect/Function"
import * as esbuild from "esbuild"
import { createRequire } from "node:module"
import { triggerExpressions, updateWranglerJsonc } from "../Codegen.js"
import type { CronJobs } from "../CronSpec.js"

const USAGE = "usage: lunora-scheduler crons --module <crons module> [--config wrangler.jsonc] [--check]"

/**
 * The directory relative paths on the command line start from (by default the process's working directory).
 *
 * @since 0.1.0
 * @category services
 */
export class WorkingDirectory extends Context.Reference<WorkingDirectory>()(
  "@lunora/scheduler/bin/WorkingDirectory",
  { defaultValue: () => process.cwd() }
) {}

/**
 * No command was given.
 *
 * @since 0.1.0
 * @category errors
 */
export class MissingCommand extends Data.TaggedError("MissingCommand")<{}> {
  override get message(): string {
    return USAGE
  }
}

/**
 * The crons module or the Wrangler config does not exist.
 *
 * @since 0.1.0
 * @category errors
 */
export class FileNotFound extends Data.TaggedError("FileNotFound")<{
  readonly what: "crons module" | "Wrangler config"
  readonly path: string
}> {
  override get message(): string {
    return `${this.what} not found: ${this.path}`
  }
}

/**
 * The crons module could not be bundled or imported.
 *
 * @since 0.1.0
 * @category errors
 */
export class ModuleLoadError extends Data.TaggedError("ModuleLoadError")<{
  readonly module: string
  readonly step: "bundle" | "load"
  readonly reason: string
}> {
  override get message(): string {
    return `cannot ${this.step} ${this.module}: ${this.reason}`
  }
}

/**
 * The crons module exports no `cronJobs()` value, neither as default nor as `crons`.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotCronJobs extends Data.TaggedError("NotCronJobs")<{
  readonly module: string
}> {
  override get message(): string {
    return `${this.module} has no default export (or export named crons) made with cronJobs()`
  }
}

/**
 * The Wrangler config cannot be read, updated or written.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConfigError extends Data.TaggedError("ConfigError")<{
  readonly config: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.config}: ${this.reason}`
  }
}

/**
 * With `--check`: `triggers.crons` of the Wrangler config differs from the crons module.
 *
 * @since 0.1.0
 * @category errors
 */
export class TriggersOutOfDate extends Data.TaggedError("TriggersOutOfDate")<{
  readonly config: string
  readonly expected: ReadonlyArray<string>
}> {
  override get message(): string {
    return `${this.config}: triggers.crons is out of date; expected ${listOf(this.expected)} (run lunora-scheduler crons to update it)`
  }
}

const listOf = (expressions: ReadonlyArray<string>) =>
  `[${expressions.map((expression) => JSON.stringify(expression)).join(", ")}]`

const messageOf = (error: unknown) => error instanceof Error ? error.message : String(error)

const ENTRIES = {
  "@lunora/scheduler": "index",
  "@lunora/scheduler/testing": "testing",
  "@lunora/scheduler/cloudflare": "cloudflare/index"
} as const

/** This package's entries, from source (`src/*.ts`) or from the build (`dist/*.js`). */
const packageEntries = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const here = path.dirname(yield* Effect.orDie(path.fromFileUrl(new URL(import.meta.url))))
  const extension = (yield* Effect.orDie(fs.exists(path.join(here, "..", "index.ts")))) ? ".ts" : ".js"
  return Object.fromEntries(
    Object.entries(ENTRIES).map(([specifier, file]) => [specifier, path.join(here, "..", file + extension)])
  )
})

const bundleFailure = (error: unknown): string => {
  const first = (error as Partial<esbuild.BuildFailure>).errors?.[0]
  if (first === undefined) return messageOf(error)
  const where = first.location === null ? "" : `${first.location.file}:${first.location.line}: `
  return `${where}${first.text}`
}

/**
 * Bundles the crons module (TypeScript or JavaScript) with esbuild, its
 * `@lunora/scheduler` imports resolved to this package, then imports the
 * bundle from a temporary file.
 *
 * @since 0.1.0
 * @category loading
 */
export const loadCronsModule = Effect.fn("lunora-scheduler.loadCronsModule")(function*(modulePath: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const cwd = yield* WorkingDirectory
  const alias = yield* packageEntries
  const bundle = yield* Effect.tryPromise({
    try: () =>
      esbuild.build({
        stdin: {
          contents: `import * as crons from ${JSON.stringify(modulePath)}\nexport { crons }`,
          loader: "ts",
          resolveDir: path.dirname(modulePath),
          sourcefile: "lunora-scheduler-entry.ts"
        },
        absWorkingDir: cwd,
        alias,
        bundle: true,
        write: false,
        format: "esm",
        platform: "node",
        target: "node20",
        mainFields: ["module", "main"],
        external: ["cloudflare:*"],
        banner: {
          js: `import { createRequire as __lunoraRequire } from "node:module"; const require = __lunoraRequire(import.meta.url);`
        },
        logLevel: "silent"
      }),
    catch: (error) => new ModuleLoadError({ module: modulePath, step: "bundle", reason: bundleFailure(error) })
  })
  const loadError = (error: unknown) => new ModuleLoadError({ module: modulePath, step: "load", reason: messageOf(error) })
  return yield* Effect.gen(function*() {
    const directory = yield* fs.makeTempDirectoryScoped({ prefix: "lunora-scheduler-" })
    const file = path.join(directory, "crons.mjs")
    yield* fs.writeFile(file, bundle.outputFiles[0]!.contents)
    const url = yield* path.toFileUrl(file)
    return yield* Effect.tryPromise({
      try: (): Promise<{ readonly crons: Readonly<Record<string, unknown>> }> => import(url.href),
      catch: identity
    })
  }).pipe(Effect.mapError(loadError), Effect.scoped)
})

const isCronJobs = (value: unknown): value is CronJobs =>
  Predicate.hasProperty(value, "definitions") && Array.isArray(value.definitions)

const moduleOption = Options.text("module").pipe(
  Options.withAlias("m"),
  Options.withPseudoName("path"),
  Options.withDescription(
    "The TypeScript or JavaScript module whose default export (or export named crons) is made with cronJobs()."
  )
)

const configOption = Options.text("config").pipe(
  Options.withAlias("c"),
  Options.withPseudoName("path"),
  Options.withDefault("wrangler.jsonc"),
  Options.withDescription("The Wrangler config to update: wrangler.jsonc or wrangler.json.")
)

const checkOption = Options.boolean("check").pipe(
  Options.withDescription("Change nothing; exit with 1 when triggers.crons is out of date.")
)

/**
 * `crons`: writes the Cron Trigger expressions of a `cronJobs()` module to
 * `triggers.crons` of the Wrangler config, or with `--check` only compares them.
 *
 * @since 0.1.0
 * @category commands
 */
export const crons = Command.make(
  "crons",
  { module: moduleOption, config: configOption, check: checkOption },
  Effect.fn("lunora-scheduler.crons")(function*(options) {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const cwd = yield* WorkingDirectory
    const modulePath = path.resolve(cwd, options.module)
    const configPath = path.resolve(cwd, options.config)
    const shown = path.relative(cwd, configPath) || configPath
    const exists = (file: string) => Effect.orElseSucceed(fs.exists(file), () => false)
    const configError = (error: unknown) => new ConfigError({ config: shown, reason: messageOf(error) })

    if (!(yield* exists(modulePath))) return yield* new FileNotFound({ what: "crons module", path: modulePath })
    if (configPath.endsWith(".toml")) {
      return yield* new ConfigError({ config: shown, reason: "only wrangler.jsonc or wrangler.json can be updated" })
    }
    if (!(yield* exists(configPath))) return yield* new FileNotFound({ what: "Wrangler config", path: configPath })

    const namespace = (yield* loadCronsModule(modulePath)).crons
    const declared = namespace.default ?? namespace.crons
    if (!isCronJobs(declared)) return yield* new NotCronJobs({ module: options.module })
    const expressions = yield* triggerExpressions(declared)

    const text = yield* Effect.mapError(fs.readFileString(configPath), configError)
    const next = yield* Effect.try({ try: () => updateWranglerJsonc(text, expressions), catch: configError })
    if (next === text) return yield* Console.log(`${shown}: triggers.crons is up to date ${listOf(expressions)}`)
    if (options.check) return yield* new TriggersOutOfDate({ config: shown, expected: expressions })
    yield* Effect.mapError(fs.writeFileString(configPath, next), configError)
    yield* Console.log(`${shown}: wrote triggers.crons ${listOf(expressions)}`)
  })
).pipe(
  Command.withDescription(
    "Writes the Cron Trigger expressions of a cronJobs() module to triggers.crons of the Wrangler config, keeping its comments."
  )
)

/**
 * `lunora-scheduler` and its subcommands.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("lunora-scheduler", {}, () => new MissingCommand()).pipe(
  Command.withSubcommands([crons])
)

const { version } = createRequire(import.meta.url)("../../package.json") as { readonly version: string }

const cli = Command.run(command, { name: "lunora-scheduler", version })

/**
 * Runs the command line `argv` (as `process.argv`: runtime, script, then
 * arguments) and succeeds with the exit code, having printed what went wrong:
 * 1 for `TriggersOutOfDate`, 2 for any other failure.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (argv: ReadonlyArray<string>): Effect.Effect<number, never, CliApp.CliApp.Environment> =>
  cli(argv).pipe(
    Effect.as(0),
    Effect.catchAll((error) =>
      ValidationError.isValidationError(error)
        ? Effect.succeed(2)
        : error._tag === "TriggersOutOfDate"
        ? Effect.as(Console.error(error.message), 1)
        : Effect.as(Console.error(`lunora-scheduler: ${error.message}`), 2)
    ),
    Effect.catchAllCause((cause) => Effect.as(Console.error(`lunora-scheduler: ${Cause.pretty(cause)}`), 2))
  )
