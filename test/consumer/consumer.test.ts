/// <reference types="node" />
/**
 * The package as a user gets it: `npm pack`, then the tarball installed into
 * a scratch project outside the repository beside `effect`,
 * `@effect/platform`, `wrangler`, `typescript` and `@types/node` (the
 * versions this repository is tested with). In that project:
 *
 * - plain Node imports the root, `/testing`, `/cloudflare` and modules by
 *   path (`/Scheduler`, `/Job`: the root's own), and runs a TestClock test (test/consumer/fixture/node-check.mjs);
 * - `tsc --noEmit` (NodeNext, strict, `types: ["node"]`, no `skipLibCheck`)
 *   passes on the README's Node snippets (snippets.ts);
 * - wrangler bundles the README's Worker (worker.ts, no `nodejs_compat`) and,
 *   on local workerd, a scheduled job is dispatched and succeeds
 *   (worker-check.mjs);
 * - the CLI the package installs runs (`lunora-scheduler crons --check`).
 *
 * The scratch project's `node_modules` is kept between runs (keyed by the
 * versions), so only the tarball is installed again; npm reads its cache
 * (`--prefer-offline`), which `npm ci` filled.
 */
import { execFile } from "node:child_process"
import { createHash } from "node:crypto"
import { cp, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { beforeAll, describe, expect, it } from "vitest"

const run = promisify(execFile)
const root = fileURLToPath(new URL("../..", import.meta.url))
const fixture = fileURLToPath(new URL("./fixture", import.meta.url))

const installed = async (name: string): Promise<string> =>
  JSON.parse(await readFile(join(root, "node_modules", name, "package.json"), "utf8")).version

/** The user's own dependencies: what this repository is tested with. */
const userDependencies = async () =>
  Object.fromEntries(
    await Promise.all(
      ["effect", "@effect/platform", "wrangler", "typescript", "@types/node"].map(async (name) =>
        [name, await installed(name)] as const
      )
    )
  )

let project = ""

const inProject = (command: string, args: ReadonlyArray<string>, timeout = 120_000) =>
  run(command, args, { cwd: project, timeout, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, NO_COLOR: "1" } })

beforeAll(async () => {
  const dependencies = await userDependencies()
  const key = createHash("sha256").update(JSON.stringify(dependencies)).digest("hex").slice(0, 12)
  project = join(tmpdir(), `lunora-scheduler-consumer-${key}`)
  await mkdir(project, { recursive: true })
  // the tarball as `npm publish` would make it (its `prepack` builds dist/)
  const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", project], {
    cwd: root,
    timeout: 180_000,
    maxBuffer: 16 * 1024 * 1024
  })
  const [packed] = JSON.parse(stdout.slice(stdout.indexOf("["))) as Array<{ filename: string }>
  const tarball = join(project, "lunora-scheduler.tgz")
  await cp(join(project, packed!.filename), tarball)
  await rm(join(project, packed!.filename))
  for (const file of await readdir(fixture)) await cp(join(fixture, file), join(project, file))
  await writeFile(
    join(project, "package.json"),
    JSON.stringify(
      {
        name: "lunora-consumer",
        private: true,
        type: "module",
        dependencies: { "@lunora/scheduler": "file:./lunora-scheduler.tgz", ...dependencies }
      },
      null,
      2
    )
  )
  // the tarball changes with every build: have npm take it again, and the rest from the kept node_modules
  await rm(join(project, "node_modules", "@lunora"), { recursive: true, force: true })
  await rm(join(project, "package-lock.json"), { force: true })
  await inProject("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], 240_000)
}, 420_000)

describe("the packed package, installed in a project of its own", () => {
  it("ships the build, the sources its maps point at and the README; no tests, bench or scripts", async () => {
    const { stdout } = await run("tar", ["-tzf", join(project, "lunora-scheduler.tgz")])
    const files = stdout.trim().split("\n").map((line) => line.replace(/^package\//, ""))
    expect(files).toContain("dist/index.js")
    expect(files).toContain("dist/index.d.ts")
    expect(files).toContain("dist/cloudflare/index.js")
    expect(files).toContain("dist/bin/lunora-scheduler.js")
    expect(files).toContain("README.md")
    expect(files.filter((file) => /^(test|bench|scripts|examples)\//.test(file))).toEqual([])
    const manifest = JSON.parse(await readFile(join(project, "node_modules/@lunora/scheduler/package.json"), "utf8"))
    expect(Object.keys(manifest.peerDependencies)).toEqual(expect.arrayContaining(["effect", "@effect/platform"]))
    expect(manifest.dependencies.effect).toBeUndefined()
    // one copy of Effect: the package has none of its own
    await expect(readdir(join(project, "node_modules/@lunora/scheduler/node_modules/effect"))).rejects.toThrow()
  })

  it("runs in plain Node: the root and testing entries, a TestClock test, and the Cloudflare entry's stand-in", async () => {
    const { stdout } = await inProject("node", ["node-check.mjs"])
    const result = JSON.parse(stdout.trim().split("\n").at(-1)!)
    expect(result).toMatchObject({ before: "pending", after: "success", seen: [[1, 1]] })
    expect(result.cloudflare).toEqual(expect.arrayContaining(["SchedulerDO", "createCronTrigger", "createScheduler", "createQueueConsumer"]))
    expect(result.standIn).toMatch(/runs in workerd only/)
    expect(result.byPath).toBe(true)
  }, 30_000)

  it("type-checks the README's Node snippets under NodeNext with only Node's types", async () => {
    const tsc = join(project, "node_modules/typescript/bin/tsc")
    const result = await inProject("node", [tsc, "--noEmit", "-p", "tsconfig.json"]).catch((error) => error)
    expect(`${result.stdout ?? ""}${result.stderr ?? ""}`).toBe("")
  }, 90_000)

  it("bundles the README's Worker with wrangler (no nodejs_compat) and, on local workerd, a job is dispatched and succeeds", async () => {
    const { stdout } = await inProject("node", ["worker-check.mjs"], 120_000)
    const result = JSON.parse(stdout.trim().split("\n").at(-1)!)
    expect(result).toMatchObject({ state: "success", result: { url: "https://files.example.com/exports/u-1.csv" } })
  }, 120_000)

  it("installs the CLI: `lunora-scheduler crons --check` reads the user's TypeScript crons module", async () => {
    await writeFile(
      join(project, "crons.ts"),
      [
        `import { CronSpec } from "@lunora/scheduler"`,
        `export const crons = CronSpec.cronJobs().cron("nightly", "0 2 * * *", "exports:build", { userId: "n" })`
      ].join("\n")
    )
    await writeFile(join(project, "cli.jsonc"), `{\n  // the user's config\n  "name": "app"\n}\n`)
    const bin = join(project, "node_modules/.bin/lunora-scheduler")
    const stale = await inProject(bin, ["crons", "--module", "crons.ts", "--config", "cli.jsonc", "--check"]).catch((error) => error)
    expect(stale.code).toBe(1)
    await inProject(bin, ["crons", "--module", "crons.ts", "--config", "cli.jsonc"])
    const written = await readFile(join(project, "cli.jsonc"), "utf8")
    expect(written).toContain("// the user's config")
    expect(written).toContain("0 2 * * *")
    await inProject(bin, ["crons", "--module", "crons.ts", "--config", "cli.jsonc", "--check"])
  }, 60_000)
})
