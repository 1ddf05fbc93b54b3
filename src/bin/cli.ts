/// <reference types="node" />
/**
 * The `lunora-scheduler` command line: `crons` compiles the crons of a
 * `cronJobs()` module, and its one-function triggers (`createCronTrigger({ schedule, fn })`),
 * to Cron Trigger expressions and writes them to `triggers.crons` of the
 * Wrangler config, keeping its comments; with `--handlers` it also checks
 * that every function path they name has a handler. The operator commands
 * (`jobs`, `crons ls`, `crons trigger`, `pools`, `stats`: see `./admin.ts`)
 * call the admin API of a running Worker.
 *
 * Exit codes of `crons --module`: 0 done or up to date, 1 out of date
 * (`--check`), 2 error (an unknown function path among them). Of the
 * operator commands: 0 done, 2 usage or bad input, 3 not found, 4
 * unauthorized, 5 conflict, 6 unavailable or unreachable.
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
import { identity } from "effect/Function"
import * as Option from "effect/Option"
import * as esbuild from "esbuild"
import { createRequire } from "node:module"
import { triggerExpressions, updateWranglerJsonc } from "../Codegen.js"
import type { CronJobs } from "../CronSpec.js"
import {
  type DeclaredPath,
  declaredPaths,
  describeUnknown,
  type FunctionTrigger,
  isCronJobs,
  isFunctionTriggers
} from "../internal/domain/declared.js"
import * as AdminCommands from "./admin.js"
import type { HandlersCheck } from "./handlerCheck.js"

const USAGE =
  "usage: lunora-scheduler crons --module <crons module> [--config wrangler.jsonc] [--handlers <handlers module>] [--check]"

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
 * `crons` was given neither `--module` nor one of its subcommands (`ls`, `trigger`).
 *
 * @since 0.1.0
 * @category errors
 */
export class MissingModule extends Data.TaggedError("MissingModule")<{}> {
  override get message(): string {
    return "crons needs --module <crons module> to compile its crons to Cron Triggers, " +
      "or a subcommand: crons ls, crons trigger <name>"
  }
}

/**
 * The crons module or the Wrangler config does not exist.
 *
 * @since 0.1.0
 * @category errors
 */
export class FileNotFound extends Data.TaggedError("FileNotFound")<{
  readonly what: "crons module" | "handlers module" | "Wrangler config"
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
 * The crons module exports no `cronJobs()` value (as default or as `crons`)
 * and no array of one-function triggers (as `triggers` or default).
 *
 * @since 0.1.0
 * @category errors
 */
export class NotCronJobs extends Data.TaggedError("NotCronJobs")<{
  readonly module: string
}> {
  override get message(): string {
    return `${this.module} has no default export (or export named crons) made with cronJobs(), ` +
      "nor an array of createCronTrigger({ schedule, fn }) triggers (as default or as triggers)"
  }
}

/**
 * The crons module's export named `triggers` is not an array of
 * one-function triggers.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotTriggers extends Data.TaggedError("NotTriggers")<{
  readonly module: string
}> {
  override get message(): string {
    return `${this.module}: its export named triggers is not an array of createCronTrigger({ schedule, fn }) ` +
      "or createCronTrigger({ cron, functionPath }) triggers"
  }
}

/**
 * The handlers module exports no `Layer`, neither as default nor as `handlers`.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotHandlers extends Data.TaggedError("NotHandlers")<{
  readonly module: string
}> {
  override get message(): string {
    return `${this.module} has no default export (or export named handlers) that is a Layer of handlers`
  }
}

/**
 * The handlers layer failed to build over a fresh `JobRegistry`.
 *
 * @since 0.1.0
 * @category errors
 */
export class HandlersLayerFailed extends Data.TaggedError("HandlersLayerFailed")<{
  readonly module: string
  readonly reason: string
}> {
  override get message(): string {
    return `cannot build the handlers layer of ${this.module}: ${this.reason}`
  }
}

/**
 * With `--handlers`: a declared cron or trigger runs a function path that
 * has no handler in the handlers layer, so it would never run.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownFunctionPaths extends Data.TaggedError("UnknownFunctionPaths")<{
  readonly module: string
  readonly unknown: ReadonlyArray<DeclaredPath>
}> {
  override get message(): string {
    return `${describeUnknown(this.unknown)} in the handlers of ${this.module}`
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

/** The public modules, each an entry of its own (`@lunora/scheduler/Job`, ...), as `package.json` `exports` lists them. */
export const MODULES = [
  "Admin",
  "Alerts",
  "Codegen",
  "CronRegistry",
  "CronSpec",
  "Dispatch",
  "Job",
  "JobRegistry",
  "PullWorker",
  "QueueWorkpool",
  "Retry",
  "Scheduler",
  "SchedulerError",
  "Telemetry",
  "Webhook",
  "Workflow",
  "Workpool"
] as const

/** Every entry of this package, by specifier, and its file below `src/` (or `dist/`) without extension. */
export const ENTRIES: Readonly<Record<string, string>> = {
  "@lunora/scheduler": "index",
  "@lunora/scheduler/testing": "testing",
  "@lunora/scheduler/cloudflare": "cloudflare/index",
  ...Object.fromEntries(MODULES.map((module) => [`@lunora/scheduler/${module}`, module]))
}

/** A file of this package by its path below `src/` without extension: the source (`.ts`) or the build (`dist/*.js`). */
const packageFile = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const here = path.dirname(yield* Effect.orDie(path.fromFileUrl(new URL(import.meta.url))))
  const extension = (yield* Effect.orDie(fs.exists(path.join(here, "..", "index.ts")))) ? ".ts" : ".js"
  return (file: string) => path.join(here, "..", file + extension)
})

/** This package's entries, from source (`src/*.ts`) or from the build (`dist/*.js`). */
const packageEntries = Effect.map(packageFile, (fileOf) =>
  Object.fromEntries(Object.entries(ENTRIES).map(([specifier, file]) => [specifier, fileOf(file)])))

const bundleFailure = (error: unknown): string => {
  const first = (error as Partial<esbuild.BuildFailure>).errors?.[0]
  if (first === undefined) return messageOf(error)
  const where = first.location === null ? "" : `${first.location.file}:${first.location.line}: `
  return `${where}${first.text}`
}

/**
 * Bundles `entry` (TypeScript, importing the user's module `modulePath`)
 * with esbuild, its `@lunora/scheduler` imports resolved to this package,
 * then imports the bundle from a temporary file.
 */
const bundleAndImport = Effect.fnUntraced(function*<A>(modulePath: string, entry: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const cwd = yield* WorkingDirectory
  const alias = yield* packageEntries
  const bundle = yield* Effect.tryPromise({
    try: () =>
      esbuild.build({
        stdin: {
          contents: entry,
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
    const file = path.join(directory, "bundle.mjs")
    yield* fs.writeFile(file, bundle.outputFiles[0]!.contents)
    const url = yield* path.toFileUrl(file)
    return yield* Effect.tryPromise({ try: (): Promise<A> => import(url.href), catch: identity })
  }).pipe(Effect.mapError(loadError), Effect.scoped)
})

/**
 * Bundles the crons module (TypeScript or JavaScript) with esbuild, its
 * `@lunora/scheduler` imports resolved to this package, then imports the
 * bundle from a temporary file.
 *
 * @since 0.1.0
 * @category loading
 */
export const loadCronsModule = Effect.fn("lunora-scheduler.loadCronsModule")(function*(modulePath: string) {
  return yield* bundleAndImport<{ readonly crons: Readonly<Record<string, unknown>> }>(
    modulePath,
    `import * as crons from ${JSON.stringify(modulePath)}\nexport { crons }`
  )
})

/**
 * Bundles the handlers module as `loadCronsModule` does, with the check
 * that runs in the bundle, beside it, over the copy of Effect the module
 * uses: it builds the module's handlers layer (its default export, or its
 * export named `handlers`) over a fresh `JobRegistry` and says which of the
 * given function paths have no handler.
 *
 * @since 0.1.0
 * @category loading
 */
export const loadHandlersModule = Effect.fn("lunora-scheduler.loadHandlersModule")(function*(modulePath: string) {
  const fileOf = yield* packageFile
  const loaded = yield* bundleAndImport<{
    readonly handlers: Readonly<Record<string, unknown>>
    readonly checkHandlers: (
      module: Readonly<Record<string, unknown>>,
      functionPaths: ReadonlyArray<string>
    ) => Promise<HandlersCheck>
  }>(
    modulePath,
    `import * as handlers from ${JSON.stringify(modulePath)}\nexport { handlers }\n` +
      `export { checkHandlers } from ${JSON.stringify(fileOf("bin/handlerCheck"))}`
  )
  return (functionPaths: ReadonlyArray<string>) =>
    Effect.tryPromise({
      try: () => loaded.checkHandlers(loaded.handlers, functionPaths),
      catch: (error) => new ModuleLoadError({ module: modulePath, step: "load", reason: messageOf(error) })
    })
})

/** What the crons module declares: its `cronJobs()` value and its arrays of triggers, each once. */
const declaredIn = (
  exports: Readonly<Record<string, unknown>>,
  module: string
): Effect.Effect<ReadonlyArray<CronJobs | FunctionTrigger>, NotCronJobs | NotTriggers> => {
  if (exports.triggers !== undefined && !isFunctionTriggers(exports.triggers)) return Effect.fail(new NotTriggers({ module }))
  const crons = [exports.default, exports.crons].find(isCronJobs)
  const triggers = [...new Set([exports.triggers, exports.default].filter(isFunctionTriggers))]
  if (crons === undefined && triggers.length === 0) return Effect.fail(new NotCronJobs({ module }))
  return Effect.succeed([...(crons === undefined ? [] : [crons]), ...triggers.flat()])
}

// optional to the parser, so that `crons ls` and `crons trigger` parse; the handler requires it
const moduleOption = Options.text("module").pipe(
  Options.withAlias("m"),
  Options.withPseudoName("path"),
  Options.optional,
  Options.withDescription(
    "The TypeScript or JavaScript module that declares the crons: a cronJobs() value as its default export (or " +
      "export named crons), and/or an array of createCronTrigger({ schedule, fn }) or createCronTrigger({ cron, " +
      "functionPath }) triggers as its export named triggers (or default export). Required without a subcommand."
  )
)

const configOption = Options.text("config").pipe(
  Options.withAlias("c"),
  Options.withPseudoName("path"),
  Options.withDefault("wrangler.jsonc"),
  Options.withDescription("The Wrangler config to update: wrangler.jsonc or wrangler.json.")
)

const handlersOption = Options.text("handlers").pipe(
  Options.withPseudoName("path"),
  Options.optional,
  Options.withDescription(
    "A TypeScript or JavaScript module whose default export (or export named handlers) is the app's handlers " +
      "Layer (its Job.toLayer(...) layers merged, as Dispatch.toFetchHandlerWith takes it). It is built with a " +
      "fresh JobRegistry and nothing else; the command exits with 2, naming each, when a cron or trigger of the " +
      "crons module runs a function path that has no handler in it. With or without --check."
  )
)

const checkOption = Options.boolean("check").pipe(
  Options.withDescription("Change nothing; exit with 1 when triggers.crons is out of date.")
)

/**
 * `crons`: writes the Cron Trigger expressions of a `cronJobs()` module to
 * `triggers.crons` of the Wrangler config, or with `--check` only compares
 * them. Its subcommands `ls` and `trigger` are operator commands (`./admin.ts`).
 *
 * @since 0.1.0
 * @category commands
 */
export const crons = Command.make(
  "crons",
  { module: moduleOption, config: configOption, handlers: handlersOption, check: checkOption },
  Effect.fn("lunora-scheduler.crons")(function*(options) {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const cwd = yield* WorkingDirectory
    if (Option.isNone(options.module)) return yield* new MissingModule()
    const module = options.module.value
    const modulePath = path.resolve(cwd, module)
    const configPath = path.resolve(cwd, options.config)
    const shown = path.relative(cwd, configPath) || configPath
    const exists = (file: string) => Effect.orElseSucceed(fs.exists(file), () => false)
    const configError = (error: unknown) => new ConfigError({ config: shown, reason: messageOf(error) })

    if (!(yield* exists(modulePath))) return yield* new FileNotFound({ what: "crons module", path: modulePath })
    if (configPath.endsWith(".toml")) {
      return yield* new ConfigError({ config: shown, reason: "only wrangler.jsonc or wrangler.json can be updated" })
    }
    if (!(yield* exists(configPath))) return yield* new FileNotFound({ what: "Wrangler config", path: configPath })

    const handlers = Option.map(options.handlers, (module) => ({ module, file: path.resolve(cwd, module) }))
    if (Option.isSome(handlers) && !(yield* exists(handlers.value.file))) {
      return yield* new FileNotFound({ what: "handlers module", path: handlers.value.file })
    }

    const declared = yield* declaredIn((yield* loadCronsModule(modulePath)).crons, module)
    const expressions = yield* triggerExpressions(declared)

    if (Option.isSome(handlers)) {
      const { file, module } = handlers.value
      const paths = declaredPaths(declared)
      const check = yield* (yield* loadHandlersModule(file))([...new Set(paths.map((one) => one.functionPath))])
      if (check._tag === "NoLayer") return yield* new NotHandlers({ module })
      if (check._tag === "BuildFailed") return yield* new HandlersLayerFailed({ module, reason: check.reason })
      const unknown = paths.filter((one) => check.unknown.includes(one.functionPath))
      if (unknown.length > 0) return yield* new UnknownFunctionPaths({ module, unknown })
    }

    const text = yield* Effect.mapError(fs.readFileString(configPath), configError)
    const next = yield* Effect.try({ try: () => updateWranglerJsonc(text, expressions), catch: configError })
    if (next === text) return yield* Console.log(`${shown}: triggers.crons is up to date ${listOf(expressions)}`)
    if (options.check) return yield* new TriggersOutOfDate({ config: shown, expected: expressions })
    yield* Effect.mapError(fs.writeFileString(configPath, next), configError)
    yield* Console.log(`${shown}: wrote triggers.crons ${listOf(expressions)}`)
  })
).pipe(
  Command.withDescription(
    "Writes the Cron Trigger expressions of a crons module (a cronJobs() value, as default or as crons, and/or an " +
      "array of createCronTrigger({ schedule, fn }) triggers, as triggers or default) to triggers.crons of the " +
      "Wrangler config, keeping its comments. Exit codes: 0 written or up to date, 1 out of date (--check), " +
      "2 an error (a missing or malformed module or config, a cron that cannot be a trigger, and with --handlers " +
      "a function path without a handler). Its subcommands ls and trigger list and run the crons of a running " +
      "Worker through its admin API."
  ),
  Command.withSubcommands([AdminCommands.cronsList, AdminCommands.cronsTrigger])
)

/**
 * `lunora-scheduler` and its subcommands.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("lunora-scheduler", {}, () => new MissingCommand()).pipe(
  Command.withSubcommands([crons, AdminCommands.jobs, AdminCommands.pools, AdminCommands.stats])
)

const { version } = createRequire(import.meta.url)("../../package.json") as { readonly version: string }

const cli = Command.run(command, { name: "lunora-scheduler", version })

/**
 * Runs the command line `argv` (as `process.argv`: runtime, script, then
 * arguments) and succeeds with the exit code, having printed what went wrong:
 * 1 for `TriggersOutOfDate`; for the operator commands' errors, their code
 * (`AdminCommands.exitCodes`: 3 not found, 4 unauthorized, 5 conflict, 6
 * unavailable, 2 bad input); 2 for any other failure.
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
        : AdminCommands.isAdminError(error)
        ? AdminCommands.report(error)
        : Effect.as(Console.error(`lunora-scheduler: ${error.message}`), 2)
    ),
    Effect.catchAllCause((cause) => Effect.as(Console.error(`lunora-scheduler: ${Cause.pretty(cause)}`), 2))
  )
