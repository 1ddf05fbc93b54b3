/// <reference types="node" />
/**
 * The import graph of `src/`: the layers of the design (domain, engine and
 * stores, runtime, services, edges), read from every `import` and
 * `export … from` (type-only ones too). An inner layer never imports an
 * outer one, no module imports itself through others, and the root entries
 * (`@lunora/scheduler`, `/testing`) reach nothing of Cloudflare.
 */
import { readdirSync, readFileSync, statSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

const src = fileURLToPath(new URL("../src", import.meta.url))

const walk = (dir: string): ReadonlyArray<string> =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? walk(path) : name.endsWith(".ts") ? [path] : []
  })

const modules = walk(src).map((path) => relative(src, path))

/** Every module specifier a file imports or re-exports, static or dynamic. */
const specifiersOf = (file: string): ReadonlyArray<string> => {
  const text = readFileSync(join(src, file), "utf8")
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^"';]*?from\s*"([^"]+)"|import\(\s*"([^"]+)"\s*\)|(?:^|\n)\s*import\s*"([^"]+)"/g)]
    .map((match) => match[1] ?? match[2] ?? match[3]!)
}

/** The module specifiers a file imports for their values: without `import type` and `export type` statements. */
const runtimeSpecifiersOf = (file: string): ReadonlyArray<string> => {
  const text = readFileSync(join(src, file), "utf8").replace(/(?:^|\n)\s*(?:import|export)\s+type\s[^;]*?from\s*"[^"]+"/g, "")
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^"';]*?from\s*"([^"]+)"|import\(\s*"([^"]+)"\s*\)|(?:^|\n)\s*import\s*"([^"]+)"/g)]
    .map((match) => match[1] ?? match[2] ?? match[3]!)
}

const graph = new Map(modules.map((file) => {
  const specifiers = specifiersOf(file)
  const local = specifiers.filter((s) => s.startsWith(".")).map((s) =>
    relative(src, resolve(dirname(join(src, file)), s.replace(/\.js$/, ".ts")))
  )
  const runtime = runtimeSpecifiersOf(file)
  return [file, {
    local,
    external: specifiers.filter((s) => !s.startsWith(".")),
    /** What the module loads when it runs (type-only imports left out): what a bundler follows. */
    runtimeLocal: runtime.filter((s) => s.startsWith(".")).map((s) =>
      relative(src, resolve(dirname(join(src, file)), s.replace(/\.js$/, ".ts")))
    ),
    runtimeExternal: runtime.filter((s) => !s.startsWith("."))
  }] as const
}))

/** The layer of each module, inside out; the public modules in `src/*.ts` by what they hold. */
const LAYERS = ["domain", "engine", "runtime", "services", "edges"] as const
type Layer = (typeof LAYERS)[number]
const PUBLIC: Record<string, Layer> = {
  "Job.ts": "domain",
  "JobRegistry.ts": "domain",
  "CronSpec.ts": "domain",
  "Retry.ts": "domain",
  "SchedulerError.ts": "domain",
  "Dispatch.ts": "runtime",
  "Webhook.ts": "runtime",
  "Workflow.ts": "domain",
  "QueueWorkpool.ts": "runtime",
  "Scheduler.ts": "services",
  "Workpool.ts": "services",
  "PullWorker.ts": "services",
  "CronRegistry.ts": "services",
  "testing.ts": "services",
  "Admin.ts": "edges",
  "Alerts.ts": "services",
  "Codegen.ts": "edges",
  "Telemetry.ts": "edges",
  "index.ts": "edges"
}
const layerOf = (file: string): Layer => {
  if (file in PUBLIC) return PUBLIC[file]!
  if (file.startsWith("internal/domain/")) return "domain"
  if (file.startsWith("internal/engine/")) return "engine"
  if (file.startsWith("internal/runtime/") || file.startsWith("cloudflare/internal/")) return "runtime"
  if (file === "cloudflare/SchedulerDO.ts") return "runtime"
  if (file.startsWith("internal/services/")) return "services"
  if (file.startsWith("cloudflare/") || file.startsWith("bin/")) return "edges"
  throw new Error(`${file} is in no layer: add it to test/layers.test.ts`)
}

const closureOf = (entry: string, follow: "local" | "runtimeLocal" = "local"): ReadonlySet<string> => {
  const seen = new Set<string>()
  const visit = (file: string) => {
    if (seen.has(file)) return
    seen.add(file)
    for (const next of graph.get(file)?.[follow] ?? []) visit(next)
  }
  visit(entry)
  return seen
}

describe("the import graph of src/", () => {
  it("resolves every relative import to a module of src/", () => {
    const missing = [...graph].flatMap(([file, { local }]) => local.filter((to) => !graph.has(to)).map((to) => `${file} -> ${to}`))
    expect(missing).toEqual([])
  })

  it("puts every module in a layer, and no layer imports an outer one", () => {
    const outward = [...graph].flatMap(([file, { local }]) =>
      local
        .filter((to) => LAYERS.indexOf(layerOf(to)) > LAYERS.indexOf(layerOf(file)))
        .map((to) => `${file} (${layerOf(file)}) -> ${to} (${layerOf(to)})`)
    )
    expect(outward).toEqual([])
  })

  it("has no circle", () => {
    const circles: Array<string> = []
    const state = new Map<string, "open" | "done">()
    const stack: Array<string> = []
    const visit = (file: string) => {
      state.set(file, "open")
      stack.push(file)
      for (const next of graph.get(file)?.local ?? []) {
        if (state.get(next) === "open") circles.push([...stack.slice(stack.indexOf(next)), next].join(" -> "))
        else if (!state.has(next)) visit(next)
      }
      stack.pop()
      state.set(file, "done")
    }
    for (const file of modules) if (!state.has(file)) visit(file)
    expect(circles).toEqual([])
  })

  it("keeps the engine and the domain free of I/O, clocks and platforms", () => {
    const inner = [...graph].filter(([file]) => ["domain", "engine"].includes(layerOf(file)))
    const impure = inner.flatMap(([file, { external }]) =>
      external.filter((s) => !/^(effect(\/\w+)?|cron-parser)$/.test(s)).map((s) => `${file} imports ${s}`)
    )
    expect(impure).toEqual([])
    const clocks = inner.filter(([file]) => /\bDate\.now\(|new Date\(\)|setTimeout\(|\bfetch\(/.test(readFileSync(join(src, file), "utf8")))
    expect(clocks.map(([file]) => file)).toEqual([])
  })

  it.each(["index.ts", "testing.ts"])("reaches nothing of Cloudflare from %s", (entry) => {
    const reached = closureOf(entry)
    const cloudflare = [...reached].flatMap((file) => [
      ...(file.startsWith("cloudflare/") ? [file] : []),
      ...graph.get(file)!.external.filter((s) => s.startsWith("cloudflare:") || s.startsWith("@cloudflare/")).map((s) => `${file} imports ${s}`)
    ])
    expect(cloudflare).toEqual([])
    // a check that can fail: the Cloudflare entry does reach it
    expect([...closureOf("cloudflare/index.ts")].some((file) => graph.get(file)!.external.includes("cloudflare:workers"))).toBe(true)
  })

  it("imports Effect and @effect/platform by module path, never from a package root", () => {
    // a root's `export * as X` namespace is kept whole by a bundler, with all it imports
    const roots = [...graph].flatMap(([file, { external }]) =>
      external.filter((s) => s === "effect" || s === "@effect/platform").map((s) => `${file} imports ${s}`)
    )
    expect(roots).toEqual([])
  })

  /** The packages a module loads when it runs, through every module it loads. */
  const packagesReached = (entry: string) =>
    new Set([...closureOf(entry, "runtimeLocal")].flatMap((file) => graph.get(file)!.runtimeExternal))

  it.each(["cloudflare/SchedulerDO.ts", "Scheduler.ts", "Dispatch.ts", "Workpool.ts", "QueueWorkpool.ts"])(
    "loads no cron parser and no JSONC editor from %s",
    (entry) => {
      const reached = packagesReached(entry)
      expect(["cron-parser", "jsonc-parser"].filter((name) => reached.has(name))).toEqual([])
    }
  )

  it("loads a cron parser where crons are declared, and no JSONC editor in a Worker's scheduled()", () => {
    expect(packagesReached("CronSpec.ts").has("cron-parser")).toBe(true)
    expect(packagesReached("cloudflare/createCronTrigger.ts").has("jsonc-parser")).toBe(false)
    // a check that can fail: codegen does load it
    expect(packagesReached("Codegen.ts").has("jsonc-parser")).toBe(true)
  })

  it.each(["index.ts", "testing.ts", "cloudflare/index.ts"])("loads no OpenTelemetry exporter (an optional peer) from %s", (entry) => {
    expect([...packagesReached(entry)].filter((name) => name.startsWith("@effect/opentelemetry"))).toEqual([])
    // a check that can fail: the Telemetry entry does load it
    expect(packagesReached("Telemetry.ts").has("@effect/opentelemetry/Otlp")).toBe(true)
  })
})
