/// <reference types="node" />
/**
 * A copy of what a Worker on local workerd is built from, for the bench and
 * the restart test: wrangler's bundler watches its inputs whatever
 * `dev.watch` says, so an edit to the working tree during a run would
 * otherwise reload the Worker mid-way.
 */
import { cp, symlink } from "node:fs/promises"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))

/** Copies `src/` and the Worker's own folder (its `.wrangler` state left out) into `dir`, with `node_modules` linked. */
export const snapshot = async (dir: string, workerFolder: string): Promise<void> => {
  await cp(join(root, "src"), join(dir, "src"), { recursive: true })
  await cp(join(root, workerFolder), join(dir, workerFolder), {
    recursive: true,
    filter: (source) => !source.split(/[\\/]/).includes(".wrangler")
  })
  await cp(join(root, "tsconfig.json"), join(dir, "tsconfig.json"))
  await cp(join(root, "package.json"), join(dir, "package.json"))
  await symlink(join(root, "node_modules"), join(dir, "node_modules"), "dir")
}
