/**
 * A backend over a `SchedulerDO` instance, reached by RPC: the engine runs
 * there; this side validated the input already (`Scheduler.fromBackend`).
 */
import { Clock, Effect, Either, Schema } from "effect"
import { isTerminal } from "../Job.js"
import { InvalidOptions, SchedulerUnavailable } from "../SchedulerError.js"
import type { Backend } from "./backend.js"
import { fromRpcMessage, invalidOptions, messageOf, type Refusal } from "./failure.js"
import type { SchedulerRpc } from "./durable.js"
import { DispatchTarget } from "./wire.js"

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

const POLL_FIRST_MS = 100
const POLL_MAX_MS = 2_000

export const makeBackend = ({ instanceName, namespace, target }: RemoteOptions): Backend => {
  // a stub is bound to the request that made it, so each call gets its own
  const stub = () => namespace.get(namespace.idFromName(instanceName) as never) as SchedulerRpc
  const attempt = <A>(operation: string, f: (rpc: SchedulerRpc) => Promise<A>) =>
    Effect.tryPromise({
      try: () => f(stub()),
      catch: (cause): Refusal | SchedulerUnavailable =>
        fromRpcMessage(messageOf(cause)) ?? new SchedulerUnavailable({ operation, reason: messageOf(cause), cause })
    }).pipe(Effect.withSpan(`SchedulerDO.${operation}`, { attributes: { instanceName } }))
  /** A call whose refusal (the Durable Object's own check of its arguments) the service can name. */
  const refusable = attempt
  /** A call the service validated fully: a refusal by the Durable Object means it is unusable from here. */
  const call = <A>(operation: string, f: (rpc: SchedulerRpc) => Promise<A>) =>
    attempt(operation, f).pipe(
      Effect.catchIf(
        (error): error is Refusal => error._tag !== "SchedulerUnavailable",
        (refusal) => new SchedulerUnavailable({ operation, reason: refusal.message })
      )
    )

  const get = (id: string) => call("get", (rpc) => rpc.get(id))

  return {
    now: Clock.currentTimeMillis,
    schedule: (jobs) => refusable("schedule", (rpc) => rpc.schedule(target, jobs)),
    cancel: (id, pool) => call("cancel", (rpc) => rpc.cancel(id, pool)),
    get,
    list: (query) => call("list", (rpc) => rpc.list(query)),
    replay: (id) => call("replay", (rpc) => rpc.replay(id)),
    purge: (query) => call("purge", (rpc) => rpc.purge(query)),
    reconcileCrons: (crons) => call("reconcileCrons", (rpc) => rpc.reconcileCrons(target, crons)),
    listCrons: call("listCrons", (rpc) => rpc.listCrons()),
    triggerCron: (name) => call("triggerCron", (rpc) => rpc.triggerCron(name)),
    definePool: (name, maxConcurrency) => call("definePool", (rpc) => rpc.definePool(name, maxConcurrency)),
    updatePool: (name, change) => call("updatePool", (rpc) => rpc.updatePool(name, change)),
    enqueue: (pool, jobs) => refusable("enqueue", (rpc) => rpc.enqueue(target, pool, jobs)),
    poolStatus: (name) => call("poolStatus", (rpc) => rpc.poolStatus(name)),
    cancelQueued: (name, limit) => call("cancelQueued", (rpc) => rpc.cancelQueued(name, limit)),
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

/** What a live layer is given: the `SchedulerDO` namespace, where it dispatches, and the instance. */
export interface LiveOptions {
  /** The Durable Object namespace bound to `SchedulerDO` (`env.SCHEDULER`). */
  readonly namespace: Namespace
  /** The app's origin: jobs are posted to `${originUrl}/_lunora/scheduler/dispatch`. */
  readonly originUrl?: string | undefined
  /** Or: the name of a service binding through which the Durable Object reaches the app. */
  readonly binding?: string | undefined
  /** The scheduler instance; each is isolated from the others. Default `"default"`. */
  readonly instanceName?: string | undefined
}

const LiveSettings = Schema.Struct({
  target: DispatchTarget,
  instanceName: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(128))
})
const decodeLiveSettings = Schema.decodeUnknownEither(LiveSettings)

/** Validates live options and builds the backend over the named instance. */
export const makeRemote = (options: LiveOptions): Effect.Effect<Backend, InvalidOptions> =>
  Effect.gen(function*() {
    if ((options.originUrl === undefined) === (options.binding === undefined)) {
      return yield* new InvalidOptions({ reason: "give exactly one of originUrl and binding" })
    }
    const settings = yield* Either.mapLeft(
      decodeLiveSettings({
        target: options.originUrl === undefined ? { binding: options.binding } : { originUrl: options.originUrl },
        instanceName: options.instanceName ?? "default"
      }),
      invalidOptions
    )
    return makeBackend({ namespace: options.namespace, ...settings })
  })
