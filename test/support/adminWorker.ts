/// <reference types="node" />
/**
 * A Worker of this repository on local workerd from a snapshot, and the
 * Worker of test/admin/ (a SchedulerDO with the admin API mounted) on
 * local workerd, started with wrangler's `unstable_startWorker` (local mode,
 * no account) from a snapshot of `src/` and `test/admin/` (an edit to the
 * working tree would otherwise reload it mid-run); and its `POST /seed`.
 */
import { realpathSync } from "node:fs"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { snapshot } from "../../scripts/snapshot.js"

process.env.WRANGLER_SEND_METRICS = "false"
// no network: use miniflare's placeholder `Request.cf` rather than fetch it
process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false"

/** test/admin/wrangler.jsonc's LUNORA_SCHEDULER_ADMIN_TOKEN. */
export const ADMIN_TOKEN = "admin-cli-test-token"

export interface Seeded {
  readonly pending: ReadonlyArray<string>
  readonly dead: ReadonlyArray<string>
  readonly pooled: ReadonlyArray<string>
}

export interface SeedRequest {
  readonly instance: string
  readonly pending?: number
  readonly dead?: number
  readonly crons?: boolean
  readonly pool?: {
    readonly name: string
    readonly maxConcurrency: number
    readonly paused: boolean
    readonly queued: number
    readonly pull?: boolean
  }
}

/**
 * Starts the Worker of `folder` (its `wrangler.jsonc`, as `edit` leaves it)
 * from a snapshot on local workerd; `dispose` stops it and removes the snapshot.
 */
export const startSnapshotWorker = async (folder: string, edit: (config: string) => string = (config) => config) => {
  const { unstable_startWorker } = await import("wrangler")
  const directory = realpathSync(await mkdtemp(join(tmpdir(), "lunora-worker-")))
  await snapshot(directory, folder)
  const config = join(directory, folder, "wrangler.jsonc")
  await writeFile(config, edit(await readFile(config, "utf8")))
  const worker = await unstable_startWorker({
    config,
    sendMetrics: false,
    dev: {
      remote: false,
      persist: join(directory, "state"),
      watch: false,
      inspector: false,
      server: { hostname: "127.0.0.1", port: 0 },
      logLevel: "warn"
    }
  })
  await worker.ready
  return {
    origin: (await worker.url).origin,
    dispose: async () => {
      await worker.dispose()
      await rm(directory, { recursive: true, force: true })
    }
  }
}

/** Starts the Worker; `dispose` stops it and removes its snapshot. */
export const startAdminWorker = async () => {
  const worker = await startSnapshotWorker(join("test", "admin"))
  const { origin } = worker
  const seed = async (body: SeedRequest): Promise<Seeded> => {
    const response = await fetch(`${origin}/seed`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ pending: 0, dead: 0, crons: false, ...body })
    })
    if (!response.ok) throw new Error(`seed failed: ${response.status} ${await response.text()}`)
    return response.json() as Promise<Seeded>
  }
  return { origin, seed, dispose: worker.dispose }
}
