/**
 * The `SchedulerDO` Durable Object: one SQLite-backed scheduler instance.
 * Re-export it from the Worker and bind it with `new_sqlite_classes`.
 *
 * @since 0.1.0
 */
import { DurableObject } from "cloudflare:workers"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Runtime from "effect/Runtime"
import { isRefusal, toRpcError } from "../internal/domain/failure.js"
import * as Protocol from "../internal/runtime/protocol.js"
import * as Durable from "./internal/durable.js"

/** The telemetry of each class made by `SchedulerDO.withTelemetry`. */
const telemetries = new WeakMap<object, (env: Record<string, unknown>) => Layer.Layer<never, unknown>>()

/** The telemetry layer of the class `target` or the nearest class it extends; a function that throws is logged and skipped. */
const telemetryOf = (target: object, env: Record<string, unknown>): Layer.Layer<never, unknown> => {
  for (let current: object | null = target; current !== null; current = Object.getPrototypeOf(current)) {
    const make = telemetries.get(current)
    if (make === undefined) continue
    try {
      return make(env)
    } catch (error) {
      console.error("SchedulerDO runs without its telemetry layer, which could not be made", error)
      return Layer.empty
    }
  }
  return Layer.empty
}

/**
 * Holds pending jobs and workpools in SQLite and wakes on its alarm to
 * dispatch them to the app. Thin: the constructor migrates and builds one runtime under
 * `blockConcurrencyWhile`; RPC methods and `alarm()` delegate to it. Every
 * method checks its arguments against the protocol's Schemas first (the
 * calls that store jobs or confirm a dispatch by plain checks of the same
 * rules, the Schema deciding the rest): a malformed call is refused (the
 * promise rejects with `"InvalidTime: …"`, `"InvalidPayload: …"` or
 * `"InvalidOptions: …"`) and nothing is read or written.
 *
 * Settings come from the Worker's environment: `LUNORA_SCHEDULER_SECRET`
 * (required: signs dispatches), `LUNORA_SCHEDULER_LEASE` (default
 * "5 minutes": how long one attempt may take), `LUNORA_SCHEDULER_RETENTION`
 * ("7 days"), `LUNORA_SCHEDULER_CONCURRENCY` (6 dispatch requests at once, up to
 * 64), `LUNORA_SCHEDULER_DISPATCH_BATCH` (10 due jobs per request, up to 100;
 * 1: one request per job), `LUNORA_SCHEDULER_MAX_PER_ALARM` (500 requests),
 * `LUNORA_SCHEDULER_METRICS` (`true`; `false` keeps no counters or histograms),
 * and for webhook jobs `LUNORA_SCHEDULER_WEBHOOK_SECRET` (signs them; without
 * it they are refused), `LUNORA_SCHEDULER_WEBHOOK_LOOPBACK` (`false`; `true`
 * sends to loopback, for local development) and `LUNORA_SCHEDULER_WEBHOOK_HOSTS`
 * (an allow-list, comma-separated, `*.example.com` for subdomains).
 *
 * @since 0.1.0
 * @category durable objects
 */
export class SchedulerDO extends DurableObject<Record<string, unknown>> {
  readonly #runtime: ManagedRuntime.ManagedRuntime<Durable.DurableScheduler, unknown>
  /** The runtime's scheduler, once built: what it can answer at once (`immediate`) is answered without a fiber. */
  #scheduler: Durable.DurableScheduler["Type"] | undefined

  constructor(ctx: DurableObjectState, env: Record<string, unknown>) {
    super(ctx, env)
    this.#runtime = ManagedRuntime.make(
      Durable.layer(ctx.storage as never, env, ctx.id.toString(), telemetryOf(new.target, env))
    )
    void ctx.blockConcurrencyWhile(() =>
      this.#runtime.runtime().then((runtime) => {
        this.#scheduler = Runtime.runSync(runtime)(Durable.DurableScheduler)
      })
    )
  }

  /**
   * A `SchedulerDO` class whose runtime also builds `telemetry(env)`: a layer
   * that exports what the object records, usually `Telemetry.layer` from
   * `@lunora/scheduler/Telemetry`. Export it under the class name that
   * `wrangler.jsonc` binds. A layer that cannot be made or built is logged,
   * and the object runs without it.
   *
   * @example
   * export const SchedulerDO = Base.withTelemetry((env) => Telemetry.layer({ baseUrl: String(env.OTLP_URL) }))
   *
   * @since 0.1.0
   */
  static withTelemetry(telemetry: (env: Record<string, unknown>) => Layer.Layer<never, unknown>): typeof SchedulerDO {
    const Observed = class SchedulerDO extends this {}
    telemetries.set(Observed, telemetry)
    return Observed
  }

  // one RPC method per operation of the protocol, on the prototype (where RPC looks for methods)
  static {
    for (const operation of Object.keys(Protocol.Operations) as Array<Protocol.Operation>) {
      Object.defineProperty(this.prototype, operation, {
        value(this: SchedulerDO, ...args: ReadonlyArray<unknown>) {
          return this.#call(operation, args)
        },
        writable: true,
        configurable: true
      })
    }
  }

  /**
   * Decodes the arguments, runs the operation, and answers its result; a
   * refusal rejects with `"<tag>: <message>"`. The rejection is the caller's
   * to handle: it is marked handled here, so the isolate does not report it
   * as an unhandled rejection before the RPC system takes it.
   */
  #call<K extends Protocol.Operation>(operation: K, args: ReadonlyArray<unknown>): Promise<Protocol.Result<K>> {
    const answer = this.#answer(operation, args)
    answer.catch(() => undefined)
    return answer
  }

  async #answer<K extends Protocol.Operation>(operation: K, args: ReadonlyArray<unknown>): Promise<Protocol.Result<K>> {
    const decoded = Protocol.decode(operation, args)
    if (decoded._tag === "Left") throw toRpcError(decoded.left)
    const now = this.#scheduler?.immediate(operation, decoded.right)
    if (now !== undefined) {
      if (now._tag === "Left") throw toRpcError(now.left)
      return now.right
    }
    const exit = await this.#runtime.runPromiseExit(
      Effect.flatMap(Durable.DurableScheduler, (scheduler) => scheduler.operation(operation, decoded.right))
    )
    if (Exit.isSuccess(exit)) return exit.value
    const refusal = Cause.failureOption(exit.cause)
    throw refusal._tag === "Some" && isRefusal(refusal.value)
      ? toRpcError(refusal.value)
      : Runtime.makeFiberFailure(exit.cause)
  }

  /** Runs one alarm pass; never throws (a throw would have the platform retry, then drop the alarm). */
  override async alarm(): Promise<void> {
    try {
      await this.#runtime.runPromise(Effect.flatMap(Durable.DurableScheduler, (scheduler) => scheduler.alarm))
    } catch (error) {
      console.error("SchedulerDO alarm could not run", error)
    }
  }
}

/**
 * The RPC methods of `SchedulerDO`, one per operation (`schedule`, `cancel`,
 * `get`, `list`, …, `confirmDispatch`), called by the live layers through the
 * namespace binding.
 *
 * @since 0.1.0
 * @category durable objects
 */
export interface SchedulerDO extends Protocol.SchedulerRpc {}
