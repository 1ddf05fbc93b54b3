/**
 * The `SchedulerDO` Durable Object: one SQLite-backed scheduler instance.
 * Re-export it from the Worker and bind it with `new_sqlite_classes`.
 *
 * @since 0.1.0
 */
import { DurableObject } from "cloudflare:workers"
import { Cause, Effect, Exit, ManagedRuntime, Runtime } from "effect"
import type { CronDefinition } from "../CronSpec.js"
import * as Durable from "../internal/durable.js"
import type * as Engine from "../internal/engine.js"
import { isRefusal, type Refusal, toRpcError } from "../internal/failure.js"
import type * as PoolEngine from "../internal/poolEngine.js"
import * as Protocol from "../internal/protocol.js"

/**
 * Holds pending jobs and workpools in SQLite and wakes on its alarm to
 * dispatch them to the app. Thin: the constructor migrates and builds one runtime under
 * `blockConcurrencyWhile`; RPC methods and `alarm()` delegate to it. Every
 * method decodes its arguments with Schema first: a malformed call is
 * refused (the promise rejects with `"InvalidTime: …"`, `"InvalidPayload: …"`
 * or `"InvalidOptions: …"`) and nothing is read or written.
 *
 * Settings come from the Worker's environment: `LUNORA_SCHEDULER_SECRET`
 * (required: signs dispatches), `LUNORA_SCHEDULER_LEASE` (default
 * "5 minutes": how long one attempt may take), `LUNORA_SCHEDULER_RETENTION`
 * ("7 days"), `LUNORA_SCHEDULER_CONCURRENCY` (6 dispatches at once, up to 64) and
 * `LUNORA_SCHEDULER_MAX_PER_ALARM` (500).
 *
 * @since 0.1.0
 * @category durable objects
 */
export class SchedulerDO extends DurableObject<Record<string, unknown>> implements Durable.SchedulerRpc {
  readonly #runtime: ManagedRuntime.ManagedRuntime<Durable.DurableScheduler, unknown>

  constructor(ctx: DurableObjectState, env: Record<string, unknown>) {
    super(ctx, env)
    this.#runtime = ManagedRuntime.make(Durable.layer(ctx.storage as never, env, ctx.id.toString()))
    void ctx.blockConcurrencyWhile(() => this.#runtime.runtime().then(() => undefined))
  }

  /**
   * Decodes the arguments, runs the operation, and answers its result; a
   * refusal rejects with `"<tag>: <message>"`. The rejection is the caller's
   * to handle: it is marked handled here, so the isolate does not report it
   * as an unhandled rejection before the RPC system takes it.
   */
  #call<K extends Protocol.Operation>(operation: K, args: ReadonlyArray<unknown>): Promise<Durable.Result<K>> {
    const answer = this.#answer(operation, args)
    answer.catch(() => undefined)
    return answer
  }

  async #answer<K extends Protocol.Operation>(operation: K, args: ReadonlyArray<unknown>): Promise<Durable.Result<K>> {
    const decoded = Protocol.decode(operation, args)
    if (decoded._tag === "Left") throw toRpcError(decoded.left)
    const exit = await this.#runtime.runPromiseExit(
      Effect.flatMap(Durable.DurableScheduler, (scheduler) =>
        (scheduler.operations[operation] as (...args: ReadonlyArray<unknown>) => Effect.Effect<Durable.Result<K>, Refusal>)(
          ...decoded.right
        ))
    )
    if (Exit.isSuccess(exit)) return exit.value
    const refusal = Cause.failureOption(exit.cause)
    throw refusal._tag === "Some" && isRefusal(refusal.value)
      ? toRpcError(refusal.value)
      : Runtime.makeFiberFailure(exit.cause)
  }

  schedule(target: Durable.DispatchTarget, jobs: ReadonlyArray<Engine.NewJob>) {
    return this.#call("schedule", [target, jobs])
  }

  cancel(id: string, pool?: string) {
    return this.#call("cancel", [id, pool])
  }

  get(id: string) {
    return this.#call("get", [id])
  }

  list(query: Parameters<typeof Engine.list>[1]) {
    return this.#call("list", [query])
  }

  replay(id: string) {
    return this.#call("replay", [id])
  }

  purge(query: Engine.PurgeQuery) {
    return this.#call("purge", [query])
  }

  reconcileCrons(target: Durable.DispatchTarget, crons: ReadonlyArray<CronDefinition>) {
    return this.#call("reconcileCrons", [target, crons])
  }

  listCrons() {
    return this.#call("listCrons", [])
  }

  triggerCron(name: string) {
    return this.#call("triggerCron", [name])
  }

  definePool(name: string, maxConcurrency: number | undefined) {
    return this.#call("definePool", [name, maxConcurrency])
  }

  updatePool(name: string, change: PoolEngine.PoolChange) {
    return this.#call("updatePool", [name, change])
  }

  enqueue(target: Durable.DispatchTarget, pool: string, jobs: ReadonlyArray<Engine.NewJob>) {
    return this.#call("enqueue", [target, pool, jobs])
  }

  poolStatus(name: string) {
    return this.#call("poolStatus", [name])
  }

  cancelQueued(name: string, limit: number) {
    return this.#call("cancelQueued", [name, limit])
  }

  confirmDispatch(lease: string, id: string, attempt: number) {
    return this.#call("confirmDispatch", [lease, id, attempt])
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
