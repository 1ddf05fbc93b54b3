/**
 * A backend over a `SchedulerDO` instance, reached by RPC: the engine runs
 * there; this side validated the input already (`Scheduler.fromBackend`).
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { isTerminal } from "../../Job.js"
import { InvalidOptions, SchedulerUnavailable } from "../../SchedulerError.js"
import { type Backend, isRefusable, operationsOf } from "./backend.js"
import { fromRpcMessage, invalidOptions, messageOf, type Refusal } from "../domain/failure.js"
import { isTargeted } from "../engine/operations.js"
import type { Args, SchedulerRpc } from "../runtime/protocol.js"
import { DispatchTarget } from "../runtime/wire.js"
import { ShardCount, shardInstance } from "../domain/shards.js"
import * as Sharded from "./sharded.js"

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
  // a stub is bound to the request that made it, so each call gets its own; the id (a hash of the name) is made once
  let id: unknown
  const stub = () => namespace.get((id ??= namespace.idFromName(instanceName)) as never) as SchedulerRpc
  const attempt = <A>(operation: string, f: (rpc: SchedulerRpc) => Promise<A>) =>
    Effect.tryPromise({
      try: () => f(stub()),
      catch: (cause): Refusal | SchedulerUnavailable =>
        fromRpcMessage(messageOf(cause)) ?? new SchedulerUnavailable({ operation, reason: messageOf(cause), cause })
    }).pipe(Effect.withSpan(`SchedulerDO.${operation}`, { attributes: { instanceName }, captureStackTrace: false }))
  /** A call the service validated fully: a refusal by the Durable Object means it is unusable from here. */
  const call = <A>(operation: string, f: (rpc: SchedulerRpc) => Promise<A>) =>
    attempt(operation, f).pipe(
      Effect.catchIf(
        (error): error is Refusal => error._tag !== "SchedulerUnavailable",
        (refusal) => new SchedulerUnavailable({ operation, reason: refusal.message })
      )
    )


  return {
    now: Clock.currentTimeMillis,
    shardCount: 1,
    schedulePlainly: (jobs) =>
      stub().schedule(target, jobs as Args<"schedule">[1]).catch((cause: unknown) => {
        throw fromRpcMessage(messageOf(cause)) ??
          new SchedulerUnavailable({ operation: "schedule", reason: messageOf(cause), cause })
      }),
    ...operationsOf((name, args) => {
      const send = (rpc: SchedulerRpc) =>
        (rpc[name] as (...args: ReadonlyArray<unknown>) => Promise<never>)(...(isTargeted(name) ? [target, ...args] : args))
      // a refusal of a refusable call (the Durable Object's own check of its arguments) is the service's typed error
      return (isRefusable(name) ? attempt(name, send) : call(name, send)) as never
    }),
    metrics: () => Effect.map(call("metrics", (rpc) => rpc.metrics()), (samples) => [{ shard: 0, samples }]),
    awaitFinished: (id) =>
      Effect.gen(function*() {
        for (let pause = POLL_FIRST_MS;; pause = Math.min(POLL_MAX_MS, pause * 2)) {
          const job = yield* call("get", (rpc) => rpc.get(id))
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
  /**
   * How many `SchedulerDO` instances the instance's jobs are spread over
   * (1–1024; default 1): shard 0 is `instanceName` itself, shard `k` the
   * instance `<instanceName>#<k>`. It may grow at any time; it shrinks only
   * while the shards it drops hold no live job and no cron.
   */
  readonly shards?: number | undefined
}

const LiveSettings = Schema.Struct({
  target: DispatchTarget,
  instanceName: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(128)),
  shards: ShardCount
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
        instanceName: options.instanceName ?? "default",
        shards: options.shards ?? 1
      }),
      invalidOptions
    )
    const { instanceName, shards: count, target } = settings
    const backends = new Map<number, Backend>()
    const shard = (index: number) => {
      let backend = backends.get(index)
      if (backend === undefined) {
        backend = makeBackend({ namespace: options.namespace, target, instanceName: shardInstance(instanceName, index) })
        backends.set(index, backend)
      }
      return backend
    }
    return Sharded.make({ count, instanceName, shard, claimed: claimedIn(options.namespace, instanceName, count) })
  })

/**
 * The shard count last found recorded for each instance by a backend built in
 * this isolate, per namespace binding: a backend built for each request checks
 * its count once per isolate, not once per request, and again after another
 * count was claimed for the instance.
 */
const claims = new WeakMap<Namespace, Map<string, number>>()
const claimedIn = (namespace: Namespace, instanceName: string, count: number) => {
  let claimed = claims.get(namespace)
  if (claimed === undefined) claims.set(namespace, claimed = new Map())
  return { has: () => claimed.get(instanceName) === count, add: () => void claimed.set(instanceName, count) }
}
