/**
 * The Durable Object runtime: the engine over the SQLite store, the RPC
 * surface, and the alarm drain loop that leases due jobs, dispatches them to
 * the app and records the outcomes. `SchedulerDO` only delegates here.
 */
import type { DurableObjectStorage } from "@cloudflare/workers-types/latest"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import {
  Clock,
  Config,
  ConfigProvider,
  Context,
  Duration,
  Effect,
  Either,
  Layer,
  Option,
  Queue,
  Schema
} from "effect"
import * as SqliteStore from "../cloudflare/SqliteStore.js"
import type { CronDefinition } from "../CronSpec.js"
import type { JobRecord } from "../JobStore.js"
import * as CronEngine from "./cronEngine.js"
import * as Engine from "./engine.js"
import * as PoolEngine from "./poolEngine.js"
import * as Dispatcher from "./dispatcher.js"
import { DispatchTarget } from "./wire.js"

export { DispatchTarget }

/** The settings of a `SchedulerDO`, read from its Worker's environment. */
export const settingsConfig = Config.all({
  secret: Config.redacted("LUNORA_SCHEDULER_SECRET"),
  lease: Config.duration("LUNORA_SCHEDULER_LEASE").pipe(
    Config.withDefault(Duration.millis(Engine.defaultConfig.leaseMs))
  ),
  retention: Config.duration("LUNORA_SCHEDULER_RETENTION").pipe(
    Config.withDefault(Duration.millis(Engine.defaultConfig.retentionMs))
  ),
  concurrency: Config.integer("LUNORA_SCHEDULER_CONCURRENCY").pipe(
    Config.validate({ message: "between 1 and 64", validation: (n) => n >= 1 && n <= 64 }),
    Config.withDefault(6)
  ),
  maxPerAlarm: Config.integer("LUNORA_SCHEDULER_MAX_PER_ALARM").pipe(
    Config.validate({ message: "between 1 and 900", validation: (n) => n >= 1 && n <= 900 }),
    Config.withDefault(500)
  )
})

/** The RPC surface of `SchedulerDO`: plain data in, engine results out. */
export interface SchedulerRpc {
  readonly schedule: (
    target: DispatchTarget,
    jobs: ReadonlyArray<Engine.NewJob>
  ) => Promise<ReadonlyArray<Engine.ScheduleResult>>
  readonly cancel: (id: string, pool?: string) => Promise<Engine.CancelResult>
  readonly get: (id: string) => Promise<JobRecord | undefined>
  readonly list: (query: Parameters<typeof Engine.list>[1]) => Promise<Engine.Page>
  readonly replay: (target: DispatchTarget, id: string) => Promise<Engine.ReplayResult>
  readonly purge: (query: Engine.PurgeQuery) => Promise<number>
  readonly reconcileCrons: (
    target: DispatchTarget,
    crons: ReadonlyArray<CronDefinition>
  ) => Promise<CronEngine.ReconcileResult>
  readonly listCrons: () => Promise<ReadonlyArray<CronEngine.CronView>>
  readonly triggerCron: (target: DispatchTarget, name: string) => Promise<CronEngine.TriggerResult>
  readonly definePool: (
    target: DispatchTarget,
    name: string,
    maxConcurrency: number | undefined
  ) => Promise<PoolEngine.DefineResult>
  readonly updatePool: (name: string, change: PoolEngine.PoolChange) => Promise<PoolEngine.DefineResult>
  readonly enqueue: (
    target: DispatchTarget,
    pool: string,
    jobs: ReadonlyArray<Engine.NewJob>
  ) => Promise<PoolEngine.EnqueueResult>
  readonly poolStatus: (name: string) => Promise<PoolEngine.PoolStatus | undefined>
  readonly cancelQueued: (name: string, limit: number) => Promise<PoolEngine.CancelQueuedResult>
}

/** The platform pieces the runtime needs from its Durable Object. */
export class DurableContext extends Context.Tag("@lunora/scheduler/internal/DurableContext")<DurableContext, {
  readonly storage: DurableObjectStorage
  readonly env: Record<string, unknown>
}>() {}

const TARGET_SETTING = "dispatch_target"
/** The wall time of one alarm invocation on the platform (15 minutes), less a margin. */
const ALARM_WALL_LIMIT_MS = 14 * 60_000
/** The least time an alarm keeps leasing, whatever the lease. */
const MIN_LEASING_MS = 60_000
/** How many expired leases, and finished jobs per state, one alarm handles before it dispatches. */
const SWEEP_LIMIT = 100
const decodeTarget = Schema.decodeUnknownEither(Schema.parseJson(DispatchTarget))

const make = Effect.gen(function*() {
  const { env, storage } = yield* DurableContext
  const settings = yield* settingsConfig
  const client = yield* HttpClient.HttpClient
  const store = SqliteStore.make(storage)
  const config: Engine.EngineConfig = {
    leaseMs: Duration.toMillis(settings.lease),
    retentionMs: Duration.toMillis(settings.retention)
  }

  let target: DispatchTarget | undefined = Option.getOrUndefined(
    Option.flatMap(
      Option.fromNullable(SqliteStore.readSetting(storage, TARGET_SETTING)),
      (text) => Either.getRight(decodeTarget(text))
    )
  )
  const useTarget = (next: DispatchTarget) => {
    if (target !== undefined && JSON.stringify(target) === JSON.stringify(next)) return
    SqliteStore.writeSetting(storage, TARGET_SETTING, JSON.stringify(next))
    target = next
  }

  /** The alarm as last set by this runtime: `undefined` until read, `null` when none is set. */
  let armed: number | null | undefined
  const setAlarm = (wake: number | undefined) =>
    Effect.promise(async () => {
      if (wake === undefined) await storage.deleteAlarm()
      else await storage.setAlarm(wake)
      armed = wake ?? null
    })

  /** On every RPC: moves the alarm earlier when work is due sooner, and sets it when it is missing. */
  const ensureAlarm = Effect.gen(function*() {
    const wake = Engine.nextWakeAt(store)
    if (wake === undefined) return
    if (armed === undefined) armed = yield* Effect.promise(() => storage.getAlarm())
    if (armed === null || armed > wake) yield* setAlarm(wake)
  })

  /** Wakes a running alarm loop: a slot freed, or an RPC changed what can run. */
  const signal = yield* Queue.sliding<void>(1)
  const wakeAlarm = Queue.offer(signal, undefined)

  const mutate = <A>(f: (now: number) => A) =>
    Clock.currentTimeMillis.pipe(Effect.map(f), Effect.tap(ensureAlarm), Effect.tap(wakeAlarm))

  const destinationOf = (to: DispatchTarget): Dispatcher.Destination => {
    if ("originUrl" in to) return Dispatcher.toOrigin(to.originUrl)
    const binding = env[to.binding] as { fetch?: typeof globalThis.fetch } | undefined
    return Dispatcher.throughBinding(
      typeof binding?.fetch === "function"
        ? (input, init) => binding.fetch!(input, init)
        : () => Promise.reject(new Error(`the Worker has no service binding ${to.binding}`))
    )
  }

  /** Sends one leased job and records its outcome; the response must come before the lease ends. */
  const dispatch = (to: DispatchTarget | undefined, job: JobRecord) =>
    Effect.gen(function*() {
      const started = yield* Clock.currentTimeMillis
      const outcome: Dispatcher.Outcome = to === undefined
        ? { ok: false, retryable: true, error: "no dispatch target is set" }
        : yield* Dispatcher.deliver(
          settings.secret,
          destinationOf(to),
          {
            id: job.id,
            functionPath: job.functionPath,
            args: JSON.parse(job.args),
            shardKey: job.shardKey,
            key: job.key,
            pool: job.pool,
            scheduledFor: job.scheduledFor,
            attempt: job.attempt
          },
          Duration.millis(Math.max(0, job.runAt - started)),
          `no response within the lease of ${config.leaseMs} ms`
        ).pipe(Effect.provideService(HttpClient.HttpClient, client))
      const now = yield* Clock.currentTimeMillis
      return outcome.ok
        ? Engine.complete(store, config, now, job.id, job.attempt, outcome.result)
        : Engine.fail(store, config, now, job.id, job.attempt, outcome.error, outcome.retryable)
    }).pipe(
      Effect.annotateLogs({ jobId: job.id, functionPath: job.functionPath, attempt: job.attempt }),
      Effect.withSpan("SchedulerDO.dispatch", { attributes: { jobId: job.id, functionPath: job.functionPath } })
    )

  /** Leasing stops early enough that the last lease ends within the alarm's wall time. */
  const leasingMs = Math.max(MIN_LEASING_MS, ALARM_WALL_LIMIT_MS - config.leaseMs)

  /**
   * One alarm: fire due crons, fail expired leases and sweep, then keep up to
   * `concurrency` dispatches in flight, leasing a due job (`Engine.claim`,
   * with pool admission) only when a slot is free, so its lease starts when it
   * is sent. While dispatches run it waits for a completion, an RPC that
   * enqueued or resumed work, or the next due time, and leases again: a pool
   * stays saturated while long handlers run. Leasing stops after
   * `maxPerAlarm` dispatches (the subrequest cap) or when a new lease could
   * outlast the alarm's wall time; it waits for what is in flight and re-arms
   * last (to now when work is left). Errors are logged, never thrown.
   */
  const alarm = Effect.gen(function*() {
    armed = null
    const deadline = (yield* Clock.currentTimeMillis) + leasingMs
    let budget = settings.maxPerAlarm
    let inFlight = 0
    let first = true
    const settle = Effect.zipRight(Effect.sync(() => inFlight--), wakeAlarm)
    while (true) {
      const now = yield* Clock.currentTimeMillis
      const leasing = budget > 0 && now < deadline
      const free = Math.min(settings.concurrency - inFlight, budget)
      if (leasing && free > 0) {
        CronEngine.fireDue(store, now, SWEEP_LIMIT)
        const claimed = first
          ? Engine.poll(store, config, now, SWEEP_LIMIT, free).claimed
          : Engine.claim(store, config, now, free)
        first = false
        budget -= claimed.length
        inFlight += claimed.length
        for (const job of claimed) yield* Effect.fork(Effect.ensuring(dispatch(target, job), settle))
        if (claimed.length === free) continue
      }
      if (inFlight === 0) break
      // with a free slot, the next due job (or cron) also ends the wait
      const next = leasing && free > 0 ? Engine.earliest(Engine.nextClaimAt(store), store.nextCronAt()) : undefined
      yield* Effect.raceFirst(
        Queue.take(signal),
        next === undefined ? Effect.never : Effect.sleep(Duration.millis(Math.max(1, next - now)))
      )
    }
  }).pipe(
    Effect.catchAllCause((cause) => Effect.logError("SchedulerDO alarm pass failed", cause)),
    Effect.ensuring(
      Effect.suspend(() => setAlarm(Engine.nextWakeAt(store))).pipe(
        Effect.catchAllCause((cause) => Effect.logError("SchedulerDO could not re-arm its alarm", cause))
      )
    ),
    Effect.withSpan("SchedulerDO.alarm")
  )

  return {
    alarm,
    schedule: (to: DispatchTarget, jobs: ReadonlyArray<Engine.NewJob>) =>
      mutate((now) => {
        useTarget(to)
        return Engine.scheduleMany(store, now, jobs)
      }),
    cancel: (id: string, pool?: string) => mutate((now) => Engine.cancel(store, config, now, id, pool)),
    get: (id: string) => Effect.zipLeft(Effect.sync(() => store.get(id)), ensureAlarm),
    list: (query: Parameters<typeof Engine.list>[1]) =>
      Effect.zipLeft(Effect.sync(() => Engine.list(store, query)), ensureAlarm),
    replay: (to: DispatchTarget, id: string) =>
      mutate((now) => {
        useTarget(to)
        return Engine.replay(store, now, id)
      }),
    purge: (query: Engine.PurgeQuery) => mutate(() => Engine.purge(store, query)),
    reconcileCrons: (to: DispatchTarget, crons: ReadonlyArray<CronDefinition>) =>
      mutate((now) => {
        useTarget(to)
        return CronEngine.reconcile(store, now, crons)
      }),
    listCrons: Effect.zipLeft(Effect.sync(() => CronEngine.list(store)), ensureAlarm),
    triggerCron: (to: DispatchTarget, name: string) =>
      mutate((now) => {
        useTarget(to)
        return CronEngine.trigger(store, now, name)
      }),
    definePool: (to: DispatchTarget, name: string, maxConcurrency: number | undefined) =>
      mutate((now) => {
        useTarget(to)
        return PoolEngine.define(store, now, name, maxConcurrency)
      }),
    updatePool: (name: string, change: PoolEngine.PoolChange) => mutate(() => PoolEngine.update(store, name, change)),
    enqueue: (to: DispatchTarget, pool: string, jobs: ReadonlyArray<Engine.NewJob>) =>
      mutate((now) => {
        useTarget(to)
        return PoolEngine.enqueue(store, now, pool, jobs)
      }),
    poolStatus: (name: string) =>
      Effect.zipLeft(Effect.map(Clock.currentTimeMillis, (now) => PoolEngine.status(store, now, name)), ensureAlarm),
    cancelQueued: (name: string, limit: number) =>
      mutate((now) => PoolEngine.cancelQueued(store, config, now, name, limit))
  }
})

/** The runtime of one `SchedulerDO`. */
export class DurableScheduler extends Context.Tag("@lunora/scheduler/internal/DurableScheduler")<
  DurableScheduler,
  Effect.Effect.Success<typeof make>
>() {}

const providerFromEnv = (env: Record<string, unknown>) =>
  ConfigProvider.fromMap(
    new Map(Object.entries(env).flatMap(([name, value]) => (typeof value === "string" ? [[name, value]] : [])))
  )

/** Everything one Durable Object needs, built once under `blockConcurrencyWhile`. */
export const layer = (storage: DurableObjectStorage, env: Record<string, unknown>) =>
  Layer.effect(DurableScheduler, Effect.withConfigProvider(make, providerFromEnv(env))).pipe(
    Layer.provide(Layer.merge(Layer.succeed(DurableContext, { storage, env }), FetchHttpClient.layer))
  )
