/// <reference types="@cloudflare/workers-types" />
/// <reference types="@cloudflare/vitest-pool-workers" />
/**
 * What the workerd tests share: a scheduler on a fresh instance, waiting on
 * the real clock for a job to finish, and the handler runs the test worker saw.
 */
import { env, SELF } from "cloudflare:test"
import { Effect } from "effect"
import { isTerminal } from "../../src/Job.js"
import * as Scheduler from "../../src/Scheduler.js"
import type { SchedulerDO } from "./worker.js"

/** A scheduler on a fresh instance of `namespace`, dispatching to `target`, with its stub. */
export const fresh = <T extends SchedulerDO>(
  namespace: DurableObjectNamespace<T> = env.SCHEDULER as never,
  target: { readonly binding: string } | { readonly originUrl: string } = { binding: "SELF_APP" },
  instanceName = `test-${crypto.randomUUID()}`
) => {
  const scheduler = Effect.runSync(Scheduler.make({ namespace, ...target, instanceName }))
  const stub = namespace.get(namespace.idFromName(instanceName))
  const run = <A, E>(effect: (s: typeof scheduler) => Effect.Effect<A, E>) => Effect.runPromise(effect(scheduler))
  return { instanceName, scheduler, stub, run }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Waits, on the real clock, until the real alarm has taken the job to a terminal state. */
export const settled = async (scheduler: Scheduler.Scheduler["Type"], id: string, timeoutMs = 8_000) => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const job = await Effect.runPromise(scheduler.get(id))
    if (isTerminal(job.state) || Date.now() > deadline) return job
    await sleep(25)
  }
}

/** How many times each job's handler ran in the test worker, by job id. */
export const runs = async (): Promise<Record<string, number>> => (await SELF.fetch("https://app/runs")).json()

/** Three attempts, retried at once. */
export const fast = { retry: { maxAttempts: 3, backoff: "linear", baseMs: 0 } } as const
