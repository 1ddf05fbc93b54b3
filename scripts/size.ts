/// <reference types="node" />
/**
 * The size report (`npm run size`, which runs scripts/size-report.ts, and
 * the `size` group of `npm run bench`). Builds the package, then
 * bundles the Workers of `bench/size/` the way a user's deploy does
 * (`wrangler deploy --dry-run --minify`, no `nodejs_compat`, nothing sent
 * anywhere), resolving `@lunora/scheduler` to the built `dist/`, and prints
 * for each its minified and gzipped size, its largest inputs, and whether
 * packages a Worker should not carry (cron-parser, luxon, jsonc-parser,
 * fast-check, pure-rand) are in it, with the import chain that brings each in.
 *
 * `measure()` returns the same figures as data.
 */
import { spawn } from "node:child_process"
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { gzipSync } from "node:zlib"

const root = fileURLToPath(new URL("..", import.meta.url))

/** The Workers of the report: each is `bench/size/<name>.ts`, bound by `bench/size/<name>.jsonc`. */
export const workers: ReadonlyArray<string> = ["scheduler", "crons", "queue", "app"]

/**
 * The Worker without the library: the scheduler Worker's own code (router,
 * Schema, handler) alone. The others' size beyond it is the library's share.
 */
export const baseline = "app"

/** Packages a Worker should not carry: a cron parser with its date library, a JSONC editor, property testing. */
export const banned: ReadonlyArray<string> = ["cron-parser", "luxon", "jsonc-parser", "fast-check", "pure-rand"]

/** One input of a bundle: a package (every file under its `node_modules` folder) or a file, and its bytes in the output. */
export interface Input {
  readonly name: string
  readonly bytes: number
}

/** A banned package found in a bundle. */
export interface Found {
  readonly name: string
  /** Its bytes in the output: 0 when it is in the module graph but tree-shaken away. */
  readonly bytes: number
  /** The import chain from the Worker's entry that keeps the package (see `chainTo`), each module with its bytes in the output. */
  readonly chain: ReadonlyArray<Input>
  /** Every module outside the package that imports it directly, with its bytes in the output. */
  readonly importedBy: ReadonlyArray<Input>
}

/** The figures of one Worker that bundled. */
export interface Bundled {
  readonly _tag: "Bundled"
  readonly name: string
  readonly minifiedBytes: number
  readonly gzipBytes: number
  /** Every input, largest first. */
  readonly inputs: ReadonlyArray<Input>
  readonly banned: ReadonlyArray<Found>
  /** External imports left for the runtime (`cloudflare:workers`, any `node:*`). */
  readonly externals: ReadonlyArray<string>
}

/** A Worker wrangler could not bundle (without `nodejs_compat`), with wrangler's message. */
export interface Failed {
  readonly _tag: "Failed"
  readonly name: string
  readonly message: string
}

/** The result for one Worker. */
export type WorkerSize = Bundled | Failed

/** How `dist/` was built for the report. */
export interface Build {
  readonly command: string
  readonly exitCode: number
  /** Lines of the build's output that report an error (tsc still emits JS after type errors). */
  readonly errors: ReadonlyArray<string>
  readonly ms: number
}

/** The whole report. */
export interface Report {
  readonly build: Build | undefined
  readonly workers: ReadonlyArray<WorkerSize>
  readonly ms: number
}

/** Options of `measure`: which Workers (default all three), and whether to build `dist/` first (default yes). */
export interface Options {
  readonly workers?: ReadonlyArray<string>
  readonly build?: boolean
}

interface Run {
  readonly code: number
  readonly output: string
}

const run = (command: string, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = {}): Promise<Run> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    child.stdout.on("data", (chunk) => (output += chunk))
    child.stderr.on("data", (chunk) => (output += chunk))
    child.on("error", reject)
    child.on("close", (code) => resolve({ code: code ?? 1, output }))
  })

/** `npm run build` once the package has one, else the build tsconfig; `dist/` must then hold the three entries. */
const build = async (): Promise<Build> => {
  const started = Date.now()
  const manifest = JSON.parse(await readFile(path.join(root, "package.json"), "utf8")) as {
    readonly scripts?: Record<string, string>
  }
  const [command, args] = manifest.scripts?.build !== undefined
    ? ["npm", ["run", "build"]] as const
    : ["npx", ["tsc", "-p", "tsconfig.build.json"]] as const
  const { code, output } = await run(command, args)
  for (const entry of ["dist/index.js", "dist/testing.js", "dist/cloudflare/index.js"]) {
    await readFile(path.join(root, entry)).catch(() => {
      throw new Error(`${command} ${args.join(" ")} did not write ${entry}:\n${output}`)
    })
  }
  return {
    command: `${command} ${args.join(" ")}`,
    exitCode: code,
    errors: output.split("\n").filter((line) => /error/i.test(line)),
    ms: Date.now() - started
  }
}

interface Metafile {
  readonly inputs: Record<string, {
    readonly imports: ReadonlyArray<{ readonly path: string; readonly external?: boolean }>
  }>
  readonly outputs: Record<string, {
    readonly entryPoint?: string
    readonly inputs: Record<string, { readonly bytesInOutput: number }>
  }>
}

/** The package a `node_modules` path belongs to (`effect`, `@effect/platform`), or undefined for a file of the repo. */
const packageOf = (file: string): string | undefined =>
  /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file)?.[1]

  /**
 * The import chain from `entry` to a file of `target` that keeps it: the fewest modules
 * none of whose code is in the output (re-exporting barrels, modules tree-shaken away),
 * then the fewest modules. A chain through the package's root barrel alone says nothing
 * of why its code stays; one through modules whose code is in the bundle does.
 */
const chainTo = (
  metafile: Metafile,
  inOutput: ReadonlyMap<string, number>,
  entry: string,
  target: string
): ReadonlyArray<string> => {
  const cost = (file: string) => (inOutput.get(file) ?? 0) > 0 ? 1 : 10_000
  const distance = new Map<string, number>([[entry, 0]])
  const parent = new Map<string, string>()
  const done = new Set<string>()
  for (;;) {
    let file: string | undefined
    for (const [candidate, d] of distance) {
      if (!done.has(candidate) && (file === undefined || d < distance.get(file)!)) file = candidate
    }
    if (file === undefined) return []
    if (packageOf(file) === target) {
      const chain = [file]
      for (let at = parent.get(file); at !== undefined; at = parent.get(at)) chain.unshift(at)
      return chain
    }
    done.add(file)
    for (const imported of metafile.inputs[file]?.imports ?? []) {
      if (imported.external === true || done.has(imported.path)) continue
      const d = distance.get(file)! + cost(imported.path)
      if (d < (distance.get(imported.path) ?? Infinity)) {
        distance.set(imported.path, d)
        parent.set(imported.path, file)
      }
    }
  }
}

/** Reads one bundle: sizes from the output files, inputs and banned packages from the metafile. */
const read = async (name: string, outdir: string, metafilePath: string, configDir: string): Promise<Bundled> => {
  const files = (await readdir(outdir)).filter((file) => file.endsWith(".js") || file.endsWith(".mjs"))
  const code = Buffer.concat(await Promise.all(files.map((file) => readFile(path.join(outdir, file)))))
  const raw = JSON.parse(await readFile(metafilePath, "utf8")) as Metafile
  // the metafile's paths are relative to the wrangler config's folder: make them repo-relative
  const rel = (file: string) => /[:<]/.test(file) ? file : path.relative(root, path.resolve(configDir, file))
  const metafile: Metafile = {
    inputs: Object.fromEntries(
      Object.entries(raw.inputs).map(([file, input]) => [
        rel(file),
        { imports: input.imports.map((imported) => ({ ...imported, path: rel(imported.path) })) }
      ])
    ),
    outputs: Object.fromEntries(
      Object.entries(raw.outputs).map(([file, output]) => [
        rel(file),
        {
          ...output,
          ...(output.entryPoint === undefined ? {} : { entryPoint: rel(output.entryPoint) }),
          inputs: Object.fromEntries(Object.entries(output.inputs).map(([input, bytes]) => [rel(input), bytes]))
        }
      ])
    )
  }
  const output = Object.values(metafile.outputs).find((one) => one.entryPoint !== undefined)
  if (output === undefined) throw new Error(`${name}: the metafile has no entry output`)
  const entry = output.entryPoint!

  const fromSource = Object.keys(output.inputs).filter((file) => file.startsWith("src/"))
  const fromDist = Object.keys(output.inputs).some((file) => file.startsWith("dist/"))
  if (fromSource.length > 0 || fromDist === (name === baseline)) {
    throw new Error(name === baseline
      ? `${name}: the baseline bundles the library`
      : `${name}: @lunora/scheduler resolved to src/, not dist/ (${fromSource.slice(0, 3).join(", ")})`)
  }

  const inOutput = new Map(Object.entries(output.inputs).map(([file, input]) => [file, input.bytesInOutput]))
  const bytes = new Map<string, number>()
  for (const [file, bytesInOutput] of inOutput) {
    const key = packageOf(file) ?? file
    bytes.set(key, (bytes.get(key) ?? 0) + bytesInOutput)
  }
  const withBytes = (file: string): Input => ({ name: file, bytes: inOutput.get(file) ?? 0 })
  const inGraph = new Set(Object.keys(metafile.inputs).map(packageOf).filter((one) => one !== undefined))
  const found = banned.filter((one) => inGraph.has(one)).map((one): Found => ({
    name: one,
    bytes: bytes.get(one) ?? 0,
    chain: chainTo(metafile, inOutput, entry, one).map(withBytes),
    importedBy: [
      ...new Set(
        Object.entries(metafile.inputs)
          .filter(([file, input]) =>
            packageOf(file) !== one && input.imports.some((imported) => packageOf(imported.path) === one)
          )
          .map(([file]) => file)
      )
    ].sort().map(withBytes)
  }))
  const externals = new Set<string>()
  for (const input of Object.values(metafile.inputs)) {
    for (const imported of input.imports) if (imported.external === true && imported.path !== "<runtime>") externals.add(imported.path)
  }

  return {
    _tag: "Bundled",
    name,
    minifiedBytes: code.length,
    gzipBytes: gzipSync(code).length,
    inputs: [...bytes].map(([name, bytes]) => ({ name, bytes })).sort((a, b) => b.bytes - a.bytes),
    banned: found,
    externals: [...externals].sort()
  }
}

/** Bundles one Worker with wrangler into `dir`, without `nodejs_compat` and without contacting anything. */
const bundle = async (name: string, dir: string): Promise<WorkerSize> => {
  const config = path.join(root, "bench", "size", `${name}.jsonc`)
  const outdir = path.join(dir, name)
  const metafile = path.join(dir, `${name}.meta.json`)
  const { code, output } = await run(process.execPath, [
    path.join(root, "node_modules", "wrangler", "bin", "wrangler.js"),
    "deploy",
    "--dry-run",
    "--config",
    config,
    "--outdir",
    outdir,
    "--minify",
    "--metafile",
    metafile
  ], {
    WRANGLER_SEND_METRICS: "false",
    WRANGLER_HIDE_BANNER: "true",
    FORCE_COLOR: "0",
    // wrangler looks for a newer version of itself on some paths (its banner, unexpected errors): let that fail here
    npm_config_registry: "http://127.0.0.1:9/"
  })
  if (code !== 0) {
    const from = output.indexOf("[ERROR]")
    const message = (from === -1 ? output : output.slice(output.lastIndexOf("\n", from) + 1)).split("\n")
      .filter((line) => !line.includes("Logs were written to"))
    return { _tag: "Failed", name, message: message.join("\n").trim() }
  }
  return read(name, outdir, metafile, path.dirname(config))
}

/** Builds `dist/` (unless `build: false`) and bundles the Workers in parallel into a temporary folder. */
export const measure = async (options: Options = {}): Promise<Report> => {
  const started = Date.now()
  const built = options.build === false ? undefined : await build()
  const dir = await mkdtemp(path.join(os.tmpdir(), "lunora-size-"))
  try {
    const results = await Promise.all((options.workers ?? workers).map((name) => bundle(name, dir)))
    return { build: built, workers: results, ms: Date.now() - started }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const kib = (bytes: number) => (bytes / 1024).toFixed(1)

const table = (rows: ReadonlyArray<ReadonlyArray<string>>, right: ReadonlyArray<number> = []): string => {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)))
  return rows.map((row) =>
    row.map((cell, i) => right.includes(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)).join("  ").trimEnd()
  ).join("\n")
}

/** The report as text: a summary table, then each Worker's largest inputs and banned packages. */
export const format = (report: Report, top = 8): string => {
  const lines: Array<string> = []
  if (report.build !== undefined) {
    const { command, errors, exitCode, ms } = report.build
    lines.push(
      `build: ${command} (${(ms / 1000).toFixed(1)} s)${
        exitCode === 0 ? "" : `: exit ${exitCode}, ${errors.length} error lines, JS emitted, measured anyway`
      }`,
      ""
    )
  }
  const base = report.workers.find((worker): worker is Bundled => worker._tag === "Bundled" && worker.name === baseline)
  const share = (worker: Bundled) =>
    base === undefined || worker === base ? "-" : kib(worker.minifiedBytes - base.minifiedBytes)
  lines.push(table([
    ["worker", "min KiB", "gzip KiB", `library's (min - ${baseline})`, "without nodejs_compat", "banned packages (bytes in output)"],
    ...report.workers.map((worker) =>
      worker._tag === "Failed"
        ? [worker.name, "-", "-", "-", "fails to bundle", "-"]
        : [
          worker.name,
          kib(worker.minifiedBytes),
          kib(worker.gzipBytes),
          share(worker),
          worker.externals.some((one) => one.startsWith("node:")) ? "bundles, imports node:*" : "bundles",
          worker.banned.map((one) => `${one.name} ${one.bytes}`).join(", ") || "none"
        ]
    )
  ], [1, 2, 3]))
  for (const worker of report.workers) {
    lines.push("", `${worker.name}:`)
    if (worker._tag === "Failed") {
      lines.push(worker.message.split("\n").map((line) => `  ${line}`).join("\n"))
      continue
    }
    const total = worker.inputs.reduce((sum, input) => sum + input.bytes, 0)
    lines.push(
      table(
        worker.inputs.slice(0, top).map((input) => [
          `  ${input.name}`,
          `${kib(input.bytes)} KiB`,
          `${((100 * input.bytes) / total).toFixed(1)}%`
        ]),
        [1, 2]
      )
    )
    for (const one of worker.banned) {
      const named = (inputs: ReadonlyArray<Input>) => inputs.map((input) => `${input.name} (${input.bytes} B)`)
      lines.push(`  ${one.name} (${one.bytes} B): ${named(one.chain).join(" -> ")}`)
      lines.push(`    imported directly by ${named(one.importedBy).join(", ")}`)
    }
    if (worker.externals.length > 0) lines.push(`  externals: ${worker.externals.join(", ")}`)
  }
  lines.push("", `${(report.ms / 1000).toFixed(1)} s in all`)
  return lines.join("\n")
}
