/// <reference types="node" />
/**
 * A CPU profile of one bench measurement in local workerd (developer tool):
 *
 *   npx vite-node bench/profile.ts -- <path> <impl> [query]   e.g. /bench/fire library n=2000
 *
 * Starts bench/worker.ts with workerd's inspector, runs the measurement once
 * to warm up, then once under `Profiler.start`, and prints the functions with
 * the most self and inclusive time (bundled names), then the same by module
 * (the bundle's `// <path>` markers: each source file and Effect module, and
 * workerd's own work as `[native]`), plus the profile as BENCH_PROFILE
 * (default /tmp/bench.cpuprofile) for Chrome's DevTools.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
// @ts-expect-error: ws (a dependency of wrangler) ships no types; only its client is used here
import { WebSocket } from "ws"
import { snapshot } from "../scripts/snapshot.js"

process.env.WRANGLER_SEND_METRICS = "false"
process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false"

const [path = "/bench/fire", impl = "library", query = ""] = process.argv.slice(2).filter((arg) => arg !== "--")
const PORT = 9329

interface Node {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly children?: ReadonlyArray<number>
}

const main = async () => {
  const { unstable_startWorker } = await import("wrangler")
  const dir = await mkdtemp(join(tmpdir(), "lunora-profile-"))
  await snapshot(dir, "bench")
  const worker = await unstable_startWorker({
    config: join(dir, "bench", "wrangler.jsonc"),
    sendMetrics: false,
    dev: {
      remote: false,
      persist: join(dir, "state"),
      watch: false,
      inspector: { port: PORT },
      logLevel: "warn",
      server: { hostname: "127.0.0.1", port: 0 }
    }
  })
  try {
    await worker.ready
    const url = new URL(`${path}?impl=${impl}&${query}`, await worker.url)
    console.log("warm-up:", await (await fetch(url)).text())
    const targets = await (await fetch(`http://127.0.0.1:${PORT}/json`)).json() as Array<{ webSocketDebuggerUrl: string; title: string }>
    const target = targets.find((t) => !t.title.includes("internal")) ?? targets[0]!
    const socket = new WebSocket(target.webSocketDebuggerUrl)
    await new Promise((resolve) => socket.once("open", resolve))
    let next = 1
    const pending = new Map<number, (result: any) => void>()
    socket.on("message", (data: unknown) => {
      const message = JSON.parse(String(data))
      if (message.id !== undefined) pending.get(message.id)?.(message.result)
    })
    const send = (method: string, params: object = {}) =>
      new Promise<any>((resolve) => {
        const id = next++
        pending.set(id, resolve)
        socket.send(JSON.stringify({ id, method, params }))
      })
    await send("Profiler.enable")
    await send("Profiler.setSamplingInterval", { interval: 100 })
    await send("Profiler.start")
    console.log("measured:", await (await fetch(url)).text())
    const { profile } = await send("Profiler.stop")
    socket.close()
    const { execSync } = await import("node:child_process")
    execSync(`find ${dir} -name worker.js -path '*tmp*' -exec cp {} /tmp/bench-bundle.js \\;`)
    await writeFile(process.env.BENCH_PROFILE ?? "/tmp/bench.cpuprofile", JSON.stringify(profile))
    const byId = new Map<number, Node>(profile.nodes.map((node: Node) => [node.id, node]))
    const self = new Map<number, number>()
    for (const sample of profile.samples as Array<number>) self.set(sample, (self.get(sample) ?? 0) + 1)
    const total = profile.samples.length
    const byName = new Map<string, number>()
    for (const [id, count] of self) {
      const frame = byId.get(id)!.callFrame
      const name = `${frame.functionName || "(anonymous)"} ${frame.url.split("/").pop()}:${frame.lineNumber}`
      byName.set(name, (byName.get(name) ?? 0) + count)
    }
    const top = Number(process.env.BENCH_TOP ?? 40)
    const print = (title: string, counts: Map<string, number>) => {
      console.log(`\n${title}`)
      for (const [name, count] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, top)) {
        console.log(`${((100 * count) / total).toFixed(1).padStart(5)}%  ${name}`)
      }
    }
    print("self time", byName)
    // inclusive: each sample counts once for every distinct frame on its stack
    const parent = new Map<number, number>()
    for (const node of byId.values()) for (const child of node.children ?? []) parent.set(child, node.id)
    const inclusive = new Map<string, number>()
    for (const [id, count] of self) {
      const names = new Set<string>()
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const frame = byId.get(at)!.callFrame
        names.add(`${frame.functionName || "(anonymous)"} ${frame.url.split("/").pop()}:${frame.lineNumber}`)
      }
      for (const name of names) inclusive.set(name, (inclusive.get(name) ?? 0) + count)
    }
    print("inclusive time", inclusive)
    // by module: each bundled frame's line falls under the bundle's last `// <path>` marker before it
    const bundle = (await readFile("/tmp/bench-bundle.js", "utf8")).split("\n")
    const marks: Array<readonly [number, string]> = []
    bundle.forEach((line, index) => {
      const marker = /^\/\/ (\S+\.(?:ts|js|mjs))$/.exec(line)
      if (marker !== null) marks.push([index, marker[1]!.replace(/^.*node_modules\/effect\/dist\/esm\//, "effect/")])
    })
    const moduleOf = (frame: Node["callFrame"]) => {
      if (!frame.url.endsWith("worker.js")) return `[native] ${frame.functionName || "(root)"}`
      let low = 0
      let high = marks.length
      while (low < high) {
        const mid = (low + high) >>> 1
        if (marks[mid]![0] <= frame.lineNumber) low = mid + 1
        else high = mid
      }
      return low === 0 ? "(bundle prelude)" : marks[low - 1]![1]
    }
    const selfByModule = new Map<string, number>()
    const inclusiveByModule = new Map<string, number>()
    for (const [id, count] of self) {
      const own = moduleOf(byId.get(id)!.callFrame)
      selfByModule.set(own, (selfByModule.get(own) ?? 0) + count)
      const modules = new Set<string>()
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const module = moduleOf(byId.get(at)!.callFrame)
        if (module.includes("src/")) modules.add(module)
      }
      for (const module of modules) inclusiveByModule.set(module, (inclusiveByModule.get(module) ?? 0) + count)
    }
    print("self time by module", selfByModule)
    print("inclusive time by module of src/", inclusiveByModule)
  } finally {
    await worker.dispose()
    await rm(dir, { recursive: true, force: true })
  }
}

main().then(() => process.exit(0), (error) => {
  console.error(error)
  process.exit(1)
})
