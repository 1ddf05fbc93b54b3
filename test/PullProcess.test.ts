/// <reference types="node" />
/**
 * A pull worker as a real Node process (test/pull/worker-process.ts) over
 * the admin API of a real Worker (test/admin/ on local workerd), killed by
 * its PID in the middle of a job: its lease runs out, the `SchedulerDO`
 * counts the attempt as failed, and a second worker leases the job again
 * and completes it; the dead worker's token is refused.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Effect, Option } from "effect"
import { afterAll, beforeAll, expect, it } from "vitest"
import * as Admin from "../src/Admin.js"
import * as PullWorker from "../src/PullWorker.js"
import { ADMIN_TOKEN, startAdminWorker } from "./support/adminWorker.js"

let worker: Awaited<ReturnType<typeof startAdminWorker>> | undefined
let child: ChildProcess | undefined

beforeAll(async () => {
  worker = await startAdminWorker()
}, 60_000)

afterAll(async () => {
  child?.kill("SIGKILL")
  await worker?.dispose()
}, 30_000)

const api = <A, E>(f: (client: Effect.Effect.Success<ReturnType<typeof Admin.client>>) => Effect.Effect<A, E>) =>
  Effect.runPromise(Effect.flatMap(Admin.client({ url: worker!.origin, token: ADMIN_TOKEN }), f).pipe(Effect.provide(Admin.clientLayer)))

it("a worker process killed mid-job loses its lease; the job is leased again by another worker and completes", async () => {
  const instance = `pull-${crypto.randomUUID()}`
  const { pooled: [id] } = await worker!.seed({ instance, pool: { name: "renders", maxConcurrency: 1, paused: false, queued: 1, pull: true } })

  const script = fileURLToPath(new URL("./pull/worker-process.ts", import.meta.url))
  const viteNode = fileURLToPath(new URL("../node_modules/.bin/vite-node", import.meta.url))
  child = spawn(viteNode, [script], {
    env: {
      ...process.env,
      LUNORA_SCHEDULER_URL: worker!.origin,
      LUNORA_SCHEDULER_TOKEN: ADMIN_TOKEN,
      PULL_INSTANCE: instance,
      PULL_POOL: "renders",
      PULL_LEASE_MS: "1500"
    },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const started = await new Promise<string>((resolve, reject) => {
    let out = ""
    child!.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString("utf8")
      const line = out.split("\n").find((l) => l.startsWith("started "))
      if (line !== undefined) resolve(line)
    })
    child!.once("exit", (code) => reject(new Error(`the worker exited (${code}) before it started: ${out}`)))
    setTimeout(() => reject(new Error(`the worker did not start a job: ${out}`)), 30_000)
  })
  expect(started).toBe(`started ${id} 1`)
  expect(await api((client) => client.jobs.get({ path: { instance, id: id! } }))).toMatchObject({ state: "inProgress", attempt: 1 })

  // the worker dies mid-job, holding its lease
  process.kill(child.pid!, "SIGKILL")

  const client = await Effect.runPromise(
    Admin.pullWorker({ url: worker!.origin, token: ADMIN_TOKEN, instance, pool: "renders" }).pipe(Effect.provide(Admin.clientLayer))
  )
  let again: ReadonlyArray<PullWorker.PulledJob> = []
  for (let tries = 0; again.length === 0 && tries < 100; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    again = await Effect.runPromise(client.lease(1, "30 seconds"))
  }
  expect(again.map((job) => [job.id, job.attempt])).toEqual([[id, 2]])
  const lost = await Effect.runPromise(Effect.flip(client.complete({ id: id! as never, token: `${id}@1` }, "late")))
  expect(lost._tag).toBe("LeaseLost")
  await Effect.runPromise(client.complete(again[0]!, { by: "the second worker" }))
  const job = await api((c) => c.jobs.get({ path: { instance, id: id! } }))
  expect(job).toMatchObject({ state: "success", attempt: 2, result: Option.some({ by: "the second worker" }) })
  expect(Option.getOrThrow(job.lastError)).toMatch(/lease expired/)
}, 60_000)
