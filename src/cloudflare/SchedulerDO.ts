/**
 * The `SchedulerDO` Durable Object: one SQLite-backed scheduler instance.
 * Re-export it from the Worker and bind it with `new_sqlite_classes`.
 *
 * @since 0.1.0
 */
import { DurableObject } from "cloudflare:workers"
import { Effect, ManagedRuntime } from "effect"
import type { CronDefinition } from "../CronSpec.js"
import * as Durable from "../internal/durable.js"
import type * as Engine from "../internal/engine.js"
import type * as PoolEngine from "../internal/poolEngine.js"

/**
 * Holds pending jobs and workpools in SQLite and wakes on its alarm to
 * dispatch them to the app. Thin: the constructor migrates and builds one runtime under
 * `blockConcurrencyWhile`; RPC methods and `alarm()` delegate to it.
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
    this.#runtime = ManagedRuntime.make(Durable.layer(ctx.storage as never, env))
    void ctx.blockConcurrencyWhile(() => this.#runtime.runtime().then(() => undefined))
  }

  #run<A>(f: (scheduler: Durable.DurableScheduler["Type"]) => Effect.Effect<A>): Promise<A> {
    return this.#runtime.runPromise(Effect.flatMap(Durable.DurableScheduler, f))
  }

  schedule(target: Durable.DispatchTarget, jobs: ReadonlyArray<Engine.NewJob>) {
    return this.#run((scheduler) => scheduler.schedule(target, jobs))
  }

  cancel(id: string, pool?: string) {
    return this.#run((scheduler) => scheduler.cancel(id, pool))
  }

  get(id: string) {
    return this.#run((scheduler) => scheduler.get(id))
  }

  list(query: Parameters<typeof Engine.list>[1]) {
    return this.#run((scheduler) => scheduler.list(query))
  }

  replay(target: Durable.DispatchTarget, id: string) {
    return this.#run((scheduler) => scheduler.replay(target, id))
  }

  purge(query: Engine.PurgeQuery) {
    return this.#run((scheduler) => scheduler.purge(query))
  }

  reconcileCrons(target: Durable.DispatchTarget, crons: ReadonlyArray<CronDefinition>) {
    return this.#run((scheduler) => scheduler.reconcileCrons(target, crons))
  }

  listCrons() {
    return this.#run((scheduler) => scheduler.listCrons)
  }

  triggerCron(target: Durable.DispatchTarget, name: string) {
    return this.#run((scheduler) => scheduler.triggerCron(target, name))
  }

  definePool(target: Durable.DispatchTarget, name: string, maxConcurrency: number | undefined) {
    return this.#run((scheduler) => scheduler.definePool(target, name, maxConcurrency))
  }

  updatePool(name: string, change: PoolEngine.PoolChange) {
    return this.#run((scheduler) => scheduler.updatePool(name, change))
  }

  enqueue(target: Durable.DispatchTarget, pool: string, jobs: ReadonlyArray<Engine.NewJob>) {
    return this.#run((scheduler) => scheduler.enqueue(target, pool, jobs))
  }

  poolStatus(name: string) {
    return this.#run((scheduler) => scheduler.poolStatus(name))
  }

  cancelQueued(name: string, limit: number) {
    return this.#run((scheduler) => scheduler.cancelQueued(name, limit))
  }

  override async alarm(): Promise<void> {
    await this.#run((scheduler) => scheduler.alarm)
  }
}
