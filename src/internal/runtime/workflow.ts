/**
 * Starting a workflow job: its attempt creates an instance of a Cloudflare
 * Workflow through the Worker's binding, `create({ id, params })`, with the
 * payload as `params` and an id derived from the job, so that a second
 * delivery of the same job (or of the same cron occurrence) finds the
 * instance there and does not start another: `create` refuses an existing
 * id, which counts as success. The job succeeds once the instance is
 * created, with `{ instanceId, created }` as its result (an instance found
 * by `get` is not created again); the instance's own
 * run is the Workflow's (`binding.get(id).status()` follows it). Never rejects.
 */
import { messageOf } from "../domain/failure.js"
import type { Outcome } from "./dispatcher.js"

/** The part of a Workflow binding a workflow job uses. */
export interface WorkflowBinding {
  readonly create: (options: { readonly id: string; readonly params: unknown }) => Promise<{ readonly id: string }>
  readonly get?: (id: string) => Promise<{ readonly status: () => Promise<unknown> }>
}

/** Whether the instance `id` exists: `get` and its status answer (both reject for an id never created). */
const exists = (binding: WorkflowBinding, id: string): Promise<boolean> =>
  binding.get === undefined
    ? Promise.resolve(false)
    : binding.get(id).then((instance) => instance.status()).then(() => true, () => false)

export const isWorkflowBinding = (value: unknown): value is WorkflowBinding =>
  typeof value === "object" && value !== null && typeof (value as { create?: unknown }).create === "function"

const INSTANCE_ID = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,99}$/

/**
 * The instance id of a job: its dedupe key when it has one (a cron fire's
 * `cron:<name>:<ms>`), else its id; a key that is not a valid instance id
 * as it is becomes `k-<hex SHA-256 of it>`.
 */
export const instanceIdOf = async (job: { readonly id: string; readonly key: string | null }): Promise<string> => {
  if (job.key === null) return job.id
  if (INSTANCE_ID.test(job.key)) return job.key
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(job.key))
  return `k-${[...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("")}`
}

const alreadyExists = (error: unknown) => /already.?exists|already being used|duplicate/i.test(messageOf(error))

/** Creates the job's instance within `timeoutMs`. */
export const startWorkflow = async (
  binding: WorkflowBinding,
  job: { readonly id: string; readonly key: string | null; readonly args: string },
  timeoutMs: number
): Promise<Outcome> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    const instanceId = await instanceIdOf(job)
    const params: unknown = JSON.parse(job.args)
    // looked up first: not every runtime's create refuses an existing id (Miniflare's does not)
    const created = exists(binding, instanceId).then((found) =>
      found ? false : binding.create({ id: instanceId, params }).then(
        () => true,
        (error: unknown) => {
          if (alreadyExists(error)) return false
          throw error
        }
      )
    )
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), Math.max(0, timeoutMs))
    })
    created.catch(() => undefined)
    const fresh = await Promise.race([created, timeout])
    return { ok: true, result: JSON.stringify({ instanceId, created: fresh }) }
  } catch (error) {
    return { ok: false, retryable: true, error: `the workflow instance could not be created: ${messageOf(error)}` }
  } finally {
    if (timer !== undefined) clearTimeout(timer)
  }
}
