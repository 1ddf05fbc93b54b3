#!/usr/bin/env node
// lunora-scheduler crons --module <crons module> [--config wrangler.jsonc] [--check]
//
// Compiles the crons of a `cronJobs()` module to Cron Trigger expressions and
// writes them to `triggers.crons` of the Wrangler config, keeping its comments.
// The module (TypeScript or JavaScript) is bundled with the project's esbuild
// (installed with wrangler) together with src/Codegen.ts, then imported.
// Exit codes: 0 done or up to date, 1 out of date (--check), 2 error.
import { access, mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { parseArgs } from "node:util"

const USAGE = "usage: lunora-scheduler crons --module <crons module> [--config wrangler.jsonc] [--check]"

class Failure extends Error {}

const fail = (message) => {
  throw new Failure(message)
}

const exists = (file) => access(file).then(() => true, () => false)

const loadEsbuild = () => {
  try {
    return createRequire(process.cwd() + "/")("esbuild")
  } catch {
    return fail(`esbuild not found from ${process.cwd()}: install wrangler (or esbuild) in this project`)
  }
}

/** Bundles the crons module with the codegen into one ES module and imports it. */
const load = async (modulePath) => {
  const esbuild = loadEsbuild()
  const codegen = fileURLToPath(new URL("../src/Codegen.ts", import.meta.url))
  const entry = [
    `import * as crons from ${JSON.stringify(modulePath)}`,
    `export { crons }`,
    `export { triggerExpressions, updateWranglerJsonc } from ${JSON.stringify(codegen)}`
  ].join("\n")
  let bundle
  try {
    bundle = await esbuild.build({
      stdin: { contents: entry, loader: "ts", resolveDir: path.dirname(modulePath), sourcefile: "lunora-scheduler-entry.ts" },
      bundle: true,
      write: false,
      format: "esm",
      platform: "node",
      target: "node20",
      mainFields: ["module", "main"],
      external: ["cloudflare:*"],
      banner: { js: `import { createRequire as __lunoraRequire } from "node:module"; const require = __lunoraRequire(import.meta.url);` },
      logLevel: "silent"
    })
  } catch (error) {
    const first = error.errors?.[0]
    const where = first?.location ? `${first.location.file}:${first.location.line}: ` : ""
    return fail(`cannot bundle ${modulePath}: ${where}${first?.text ?? error.message}`)
  }
  const dir = await mkdtemp(path.join(tmpdir(), "lunora-scheduler-"))
  const file = path.join(dir, "crons.mjs")
  try {
    await writeFile(file, bundle.outputFiles[0].contents)
    return await import(pathToFileURL(file).href)
  } catch (error) {
    return fail(`cannot load ${modulePath}: ${error instanceof Error ? error.message : String(error)}`)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const crons = async (options) => {
  if (options.module === undefined) fail(`--module is required (${USAGE})`)
  const modulePath = path.resolve(options.module)
  const configPath = path.resolve(options.config ?? "wrangler.jsonc")
  const shown = path.relative(process.cwd(), configPath) || configPath
  if (!(await exists(modulePath))) fail(`crons module not found: ${modulePath}`)
  if (configPath.endsWith(".toml")) fail(`${shown}: only wrangler.jsonc or wrangler.json can be updated`)
  if (!(await exists(configPath))) fail(`Wrangler config not found: ${configPath}`)

  const loaded = await load(modulePath)
  const declared = loaded.crons.default ?? loaded.crons.crons
  if (!Array.isArray(declared?.definitions)) {
    fail(`${options.module} has no default export (or export named crons) made with cronJobs()`)
  }
  const expressions = loaded.triggerExpressions(declared)
  if (expressions._tag === "Left") fail(expressions.left.message)

  const text = await readFile(configPath, "utf8")
  let next
  try {
    next = loaded.updateWranglerJsonc(text, expressions.right)
  } catch (error) {
    fail(`${shown}: ${error.message}`)
  }
  const list = `[${expressions.right.map((expression) => JSON.stringify(expression)).join(", ")}]`
  if (next === text) {
    console.log(`${shown}: triggers.crons is up to date ${list}`)
    return 0
  }
  if (options.check) {
    console.error(`${shown}: triggers.crons is out of date; expected ${list} (run lunora-scheduler crons to update it)`)
    return 1
  }
  await writeFile(configPath, next)
  console.log(`${shown}: wrote triggers.crons ${list}`)
  return 0
}

const main = async () => {
  let parsed
  try {
    parsed = parseArgs({
      args: process.argv.slice(2),
      allowPositionals: true,
      options: {
        module: { type: "string", short: "m" },
        config: { type: "string", short: "c" },
        check: { type: "boolean" },
        help: { type: "boolean", short: "h" }
      }
    })
  } catch (error) {
    return fail(`${error.message} (${USAGE})`)
  }
  const { positionals, values } = parsed
  if (values.help) {
    console.log(USAGE)
    return 0
  }
  if (positionals.length !== 1 || positionals[0] !== "crons") fail(USAGE)
  return crons(values)
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (error) => {
    console.error(`lunora-scheduler: ${error instanceof Failure ? error.message : error?.stack ?? String(error)}`)
    process.exitCode = 2
  }
)
