/// <reference types="node" />
/**
 * The Worker of test/admin/ (a SchedulerDO with the admin API mounted) on
 * local workerd, started with wrangler's `unstable_startWorker` (local mode,
 * no account) from a snapshot of `src/` and `test/admin/` (an edit to the
 * working tree would otherwise reload it mid-run); and its `POST /seed`.
 */
import { realpathSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
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
  readonly pool?: { readonly name: string; readonly maxConcurrency: number; readonly paused: boolean; readonly queued: number }
}

/** Starts the Worker; `dispose` stops it and removes its snapshot. */
export const startAdminWorker = async () => {
  const { unstable_startWorker } = await import("wrangler")
  const directory = realpathSync(await mkdtemp(join(tmpdir(), "lunora-admin-")))
  await snapshot(directory, join("test", "admin"))
  const worker = await unstable_startWorker({
    config: join(directory, "test", "admin", "wrangler.jsonc"),
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
  const origin = (await worker.url).origin
  const seed = async (body: SeedRequest): Promise<Seeded> => {
    const response = await fetch(`${origin}/seed`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ pending: 0, dead: 0, crons: false, ...body })
    })
    if (!response.ok) throw new Error(`seed failed: ${response.status} ${await response.text()}`)
    return response.json() as Promise<Seeded>
  }
  return {
    origin,
    seed,
    dispose: async () => {
      await worker.dispose()
      await rm(directory, { recursive: true, force: true })
    }
  }
}
