/**
 * A backend over a `SchedulerDO` instance, reached by RPC: the engine runs
 * there; this side validated the input already (`Scheduler.fromBackend`).
 */
import { Clock, Effect } from "effect"
import { isTerminal } from "../Job.js"
import { SchedulerUnavailable } from "../SchedulerError.js"
import type { Backend } from "./backend.js"
import type { SchedulerRpc } from "./durable.js"
import type { DispatchTarget } from "./wire.js"

/** The part of a `DurableObjectNamespace` the client uses. */
export interface Namespace {
  readonly idFromName: (name: string) => unknown
  readonly get: (id: never) => unknown
}

export interface RemoteOptions {
  readonly namespace: Namespace
  readonly target: DispatchTarget
  readonly instanceName: string
}

const describe = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

const POLL_FIRST_MS = 100
const POLL_MAX_MS = 2_000

export const makeBackend = ({ instanceName, namespace, target }: RemoteOptions): Backend => {
  // a stub is bound to the request that made it, so each call gets its own
  const stub = () => namespace.get(namespace.idFromName(instanceName) as never) as SchedulerRpc
  const call = <A>(operation: string, f: (rpc: SchedulerRpc) => Promise<A>) =>
    Effect.tryPromise({
      try: () => f(stub()),
      catch: (cause) => new SchedulerUnavailable({ operation, reason: describe(cause), cause })
    }).pipe(Effect.withSpan(`SchedulerDO.${operation}`, { attributes: { instanceName } }))

  const get = (id: string) => call("get", (rpc) => rpc.get(id))

  return {
    now: Clock.currentTimeMillis,
    schedule: (jobs) => call("schedule", (rpc) => rpc.schedule(target, jobs)),
    cancel: (id) => call("cancel", (rpc) => rpc.cancel(id)),
    get,
    list: (query) => call("list", (rpc) => rpc.list(query)),
    replay: (id) => call("replay", (rpc) => rpc.replay(target, id)),
    purge: (query) => call("purge", (rpc) => rpc.purge(query)),
    awaitFinished: (id) =>
      Effect.gen(function*() {
        for (let pause = POLL_FIRST_MS;; pause = Math.min(POLL_MAX_MS, pause * 2)) {
          const job = yield* get(id)
          if (job === undefined || isTerminal(job.state)) return job
          yield* Effect.sleep(pause)
        }
      })
  }
}
