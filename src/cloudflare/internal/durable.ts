/**
 * The Durable Object runtime: the engine over the SQLite store, the RPC
 * surface, and the alarm drain loop that leases due jobs, dispatches them to
 * the app and records the outcomes. `SchedulerDO` only delegates here.
 *
 * Liveness: the alarm is re-set whenever it is missing, later
 * than the next due time or in the past (whatever the runtime believes it
 * set: local workerd forgets alarms across restarts), on construction and on
 * every call; an alarm pass never throws, isolates what fails for one job or
 * cron, and backs off (1 s doubling to a minute) when a step of its own fails.
 */
import type { DurableObjectStorage } from "@cloudflare/workers-types/latest"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Runtime from "effect/Runtime"
import * as Schema from "effect/Schema"
import * as SqliteStore from "./sqliteStore.js"
import type { JobRecord } from "../../internal/engine/store.js"
import { InvalidOptions, InvalidTime } from "../../SchedulerError.js"
import * as Dispatcher from "../../internal/runtime/dispatcher.js"
import * as Engine from "../../internal/engine/engine.js"
import { messageOf, type Refusal } from "../../internal/domain/failure.js"
import * as Operations from "../../internal/engine/operations.js"
import type { Args, Operation, Result } from "../../internal/runtime/protocol.js"
import { latestRunAt, TOO_FAR } from "../../internal/domain/time.js"
import * as Drain from "../../internal/runtime/drain.js"
import * as Metrics from "../../internal/runtime/metrics.js"
import { type DispatchBody, dispatchBody, DispatchTarget, MAX_BATCH_JOBS } from "../../internal/runtime/wire.js"
import type { CronDefinition } from "../../internal/domain/cronSchedule.js"
import { isOwnTargetText, type OwnTarget, ownTargetOf, webhookUrlProblem } from "../../internal/domain/targets.js"
import { type OwnTargetSender, sendToOwnTarget } from "../../internal/runtime/ownTarget.js"
import { isWorkflowBinding } from "../../internal/runtime/workflow.js"

export { DispatchTarget }

/** Jobs per dispatch request by default: see the README's "Batched dispatch" for the trade. */
const DEFAULT_DISPATCH_BATCH = 10

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
  ),
  dispatchBatch: Config.integer("LUNORA_SCHEDULER_DISPATCH_BATCH").pipe(
    Config.validate({ message: `between 1 and ${MAX_BATCH_JOBS}`, validation: (n) => n >= 1 && n <= MAX_BATCH_JOBS }),
    Config.withDefault(DEFAULT_DISPATCH_BATCH)
  ),
  metrics: Config.boolean("LUNORA_SCHEDULER_METRICS").pipe(Config.withDefault(true)),
  webhookSecret: Config.option(Config.redacted("LUNORA_SCHEDULER_WEBHOOK_SECRET")),
  webhookLoopback: Config.boolean("LUNORA_SCHEDULER_WEBHOOK_LOOPBACK").pipe(Config.withDefault(false)),
  webhookHosts: Config.option(Config.array(Config.string(), "LUNORA_SCHEDULER_WEBHOOK_HOSTS"))
})

/** The platform pieces the runtime needs from its Durable Object. */
export class DurableContext extends Context.Tag("@lunora/scheduler/internal/DurableContext")<DurableContext, {
  readonly storage: DurableObjectStorage
  readonly env: Record<string, unknown>
  /** The object's id (`ctx.id.toString()`), sent with each dispatch so the endpoint can confirm it. */
  readonly id: string
}>() {}

/** Where jobs stored before each job kept its own target were sent: the instance's last target. */
const LEGACY_TARGET_SETTING = "dispatch_target"
/** The wall time of one alarm invocation on the platform (15 minutes), less a margin. */
const ALARM_WALL_LIMIT_MS = 14 * 60_000
/** The least time an alarm keeps leasing, whatever the lease. */
const MIN_LEASING_MS = 60_000
/** How many expired leases, and finished jobs per state, one alarm handles before it dispatches. */
const SWEEP_LIMIT = 100
/** How long a job's outcome may wait to be written with its batch's others (see `Drain.Settings.flushDelayMs`). */
const FLUSH_DELAY_MS = 10
/** How long a target whose endpoint did not take a batch gets one request per job before a batch is tried again. */
const SINGLE_DISPATCH_MS = 10 * 60_000
/** The latest the alarm is set ahead: later work is looked at again then. */
const ALARM_HORIZON_MS = 50 * 365 * 24 * 3_600_000
/** How far past five calendar years (by the object's clock) a run time is still taken: the caller's clock may differ. */
const CLOCK_SKEW_MS = 24 * 3_600_000

/**
 * When to set the alarm for work due at `wake`: never in the past, never
 * beyond the horizon, and `now` for a value that is not a time (which the
 * platform would refuse: `setAlarm` throws for a time <= 0 or NaN).
 */
export const alarmTime = (wake: unknown, now: number): number =>
  typeof wake === "number" && Number.isFinite(wake) ? Math.min(Math.max(wake, now), now + ALARM_HORIZON_MS) : now

const decodeTarget = Schema.decodeUnknownEither(Schema.parseJson(DispatchTarget))

/**
 * What Schema cannot see in jobs to store, if any is wrong: their time
 * against the clock, ids unique, no pool outside `enqueue`, and a job's own
 * target (a webhook's URL against this object's policy, a Workflow binding there).
 */
const jobsProblem = (
  jobs: ReadonlyArray<Engine.NewJob>,
  now: number,
  pooled: boolean,
  ownTargetProblem: (own: OwnTarget) => string | undefined
): Refusal | undefined => {
  const ids = new Set<string>()
  const latest = latestRunAt(now) + CLOCK_SKEW_MS
  for (const job of jobs) {
    const problem = job.own === undefined || job.own === null ? undefined : ownTargetProblem(job.own)
    if (problem !== undefined) return new InvalidOptions({ reason: `job ${job.id}: ${problem}` })
    if (job.runAt > latest) return new InvalidTime({ input: new Date(job.runAt).toISOString(), reason: TOO_FAR })
    if (!pooled && job.pool !== null) {
      return new InvalidOptions({ reason: `job ${job.id} names pool ${job.pool}: pool jobs are enqueued into their pool` })
    }
    if (ids.has(job.id)) return new InvalidOptions({ reason: `job id ${job.id} appears twice in one call` })
    ids.add(job.id)
  }
  return undefined
}

const make = Effect.gen(function*() {
  const { env, id: self, storage } = yield* DurableContext
  const settings = yield* settingsConfig
  const store = SqliteStore.make(storage)
  const clock = yield* Effect.clock
  const runtime = yield* Effect.runtime<never>()
  const config: Engine.EngineConfig = {
    leaseMs: Duration.toMillis(settings.lease),
    retentionMs: Duration.toMillis(settings.retention)
  }

  const repaired = SqliteStore.quarantine(storage, yield* Clock.currentTimeMillis)
  if (repaired > 0) yield* Effect.logWarning(`SchedulerDO dead-lettered ${repaired} job records with a damaged run time`)
  const legacyTarget = Option.fromNullable(SqliteStore.readSetting(storage, LEGACY_TARGET_SETTING))

  // -- the alarm -------------------------------------------------------------

  /**
   * The alarm this object last set (`null`: none), or `undefined` before it
   * set one. Only this object changes its alarm while it lives: a restart or
   * an eviction builds a new object, which re-arms first thing.
   */
  let armedAt: number | null | undefined
  const getAlarm = Effect.tryPromise(() => storage.getAlarm())
  const setAlarm = (at: number | undefined) =>
    Effect.tryPromise(() => (at === undefined ? storage.deleteAlarm() : storage.setAlarm(at))).pipe(
      Effect.tap(() => {
        armedAt = at ?? null
      })
    )
  const nextWake = Effect.try(() => Engine.nextWakeAt(store))

  /**
   * Makes sure the alarm fires for the work there is: sets it when it is
   * missing, later than the next due time, or in the past; with `force`,
   * whatever is stored. Reads the stored alarm each time. Never fails the
   * call it runs in.
   */
  const ensureAlarm = (force: boolean) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const wake = yield* Effect.either(nextWake)
      if (Either.isLeft(wake)) {
        yield* Effect.logError("SchedulerDO could not compute when it next has work", wake.left.error)
        if ((yield* getAlarm) === null) yield* setAlarm(now + Engine.failureBackoffMs(1))
        return
      }
      if (wake.right === undefined) return
      const at = alarmTime(wake.right, now)
      if (!force) {
        const armed = yield* getAlarm
        if (armed !== null && armed >= now && armed <= at) return
      }
      yield* setAlarm(at)
    }).pipe(Effect.catchAllCause((cause) => Effect.logError("SchedulerDO could not set its alarm", cause)))

  // the first call after construction (a deploy, an eviction, a restart) re-arms
  yield* ensureAlarm(true)

  /** Wakes a running alarm loop: a slot freed, or an RPC changed what can run. */
  const signal = yield* Queue.sliding<void>(1)
  const wakeAlarm = Queue.offer(signal, undefined)

  const mutate = <A>(f: (now: number) => A) =>
    Clock.currentTimeMillis.pipe(Effect.map(f), Effect.tap(ensureAlarm(false)), Effect.tap(wakeAlarm))

  /**
   * `mutate` for a change that only adds jobs, none due before `earliest`:
   * while the alarm this object set is still ahead and no later than that,
   * the wake time cannot have moved earlier, so neither the next wake time
   * nor the stored alarm is read (about eight statements and a storage call
   * per scheduling call).
   */
  const mutateAdding = <A>(earliest: number, f: (now: number) => A) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const result = f(now)
      return (armedAhead(earliest, now) ? wakeAlarm : Effect.zipRight(ensureAlarm(false), wakeAlarm)).pipe(Effect.as(result))
    })
  /** Whether the alarm this object set is still ahead at `now`, and no later than work due at `earliest`. */
  const armedAhead = (earliest: number, now: number) =>
    typeof armedAt === "number" && armedAt > now && armedAt <= alarmTime(earliest, now)
  const read = <A>(f: (now: number) => A) => Clock.currentTimeMillis.pipe(Effect.map(f), Effect.tap(ensureAlarm(false)))

  // -- dispatch --------------------------------------------------------------

  const destinations = new Map<string, Dispatcher.Destination>()
  const destinationOf = (target: string): Dispatcher.Destination => {
    let destination = destinations.get(target)
    if (destination !== undefined) return destination
    const to = Either.getOrThrowWith(decodeTarget(target), () => new Error(`the stored target ${target} is not a target`))
    if ("originUrl" in to) destination = Dispatcher.toOrigin(to.originUrl)
    else {
      const binding = env[to.binding] as { fetch?: typeof globalThis.fetch } | undefined
      destination = Dispatcher.throughBinding(
        typeof binding?.fetch === "function"
          ? (input, init) => binding.fetch!(input, init)
          : () => Promise.reject(new Error(`the Worker has no service binding ${to.binding}`))
      )
    }
    destinations.set(target, destination)
    return destination
  }

  /** The requests in flight, by lease, with the attempts each carries: what `confirmDispatch(es)` answers from. */
  const leases = new Map<string, { readonly attempts: ReadonlyArray<readonly [string, number]>; confirmed: boolean }>()

  /** Until when a target gets one request per job: its endpoint did not take a batch. */
  const singleUntil = new Map<string, number>()
  /** Jobs per request to a target: one to a webhook, one while the endpoint does not take batches. */
  const batchSizeOf = (group: string) =>
    isOwnTargetText(group) || (singleUntil.get(group) ?? 0) > clock.unsafeCurrentTimeMillis() ? 1 : settings.dispatchBatch
  const claimPerSlot = () => {
    const now = clock.unsafeCurrentTimeMillis()
    for (const until of singleUntil.values()) if (until > now) return 1
    return settings.dispatchBatch
  }
  const groupOf = (job: JobRecord) => job.target ?? ""
  const webhookSecret = Option.getOrUndefined(settings.webhookSecret)
  const webhooks = {
    policy: { allowLoopback: settings.webhookLoopback, hosts: Option.getOrUndefined(settings.webhookHosts) },
    signed: webhookSecret !== undefined
  }

  const ownTargets: OwnTargetSender = {
    secret: webhookSecret,
    policy: webhooks.policy,
    workflow: (name) => {
      const binding = env[name]
      return isWorkflowBinding(binding) ? binding : `the Worker has no Workflow binding ${name}`
    }
  }

  /** Why this object would not send to a job's own target: a webhook its policy refuses or it cannot sign, a Workflow it has no binding of. */
  const ownTargetProblem = (own: OwnTarget): string | undefined => {
    if ("workflow" in own) {
      const binding = ownTargets.workflow(own.workflow.binding)
      return typeof binding === "string" ? `workflow: ${binding}` : undefined
    }
    if (!webhooks.signed) return "webhook: the SchedulerDO has no LUNORA_SCHEDULER_WEBHOOK_SECRET to sign webhooks with"
    const problem = webhookUrlProblem(own.webhook.url, webhooks.policy)
    return problem === undefined ? undefined : `webhook: ${problem}`
  }

  /** Sends each job of a batch to their own target (a webhook, a Workflow) in a call of its own, all at once; each lease bounds its call. */
  const sendToOwn = (
    target: OwnTarget,
    batch: ReadonlyArray<JobRecord>,
    settle: (job: JobRecord, outcome: Dispatcher.Outcome) => void
  ) => {
    const now = clock.unsafeCurrentTimeMillis()
    for (const job of batch) void sendToOwnTarget(ownTargets, target, job, now).then((outcome) => settle(job, outcome))
  }
  const log = (effect: Effect.Effect<void>) => void Runtime.runFork(runtime)(effect)

  const timeoutReason = `no response within the lease of ${config.leaseMs} ms`

  /** Sends each job in a request of its own, all at once; each lease ends its request. */
  const sendSingly = (
    destination: Dispatcher.Destination,
    jobs: ReadonlyArray<{ readonly job: JobRecord; readonly body: DispatchBody }>,
    settle: (job: JobRecord, outcome: Dispatcher.Outcome) => void
  ) => {
    const now = clock.unsafeCurrentTimeMillis()
    for (const { body, job } of jobs) {
      const lease = crypto.randomUUID()
      leases.set(lease, { attempts: [[job.id, job.attempt]], confirmed: false })
      void Dispatcher.sendOne(
        settings.secret,
        destination,
        JSON.stringify({ ...body, lease }),
        now,
        job.runAt - now,
        timeoutReason
      ).then((outcome) => {
        leases.delete(lease)
        settle(job, outcome)
      })
    }
  }

  /**
   * Sends a leased batch (one target): as one request when the target takes
   * batches, else one request per job. A job whose record cannot be sent (no
   * target, a damaged payload) fails at once, with the reason, without a
   * retry. A request never outlives the earliest lease it carries.
   */
  const send: Drain.Sender = (batch, settle) => {
    const own = ownTargetOf(batch[0]!.target)
    if (own !== undefined) return sendToOwn(own, batch, settle)
    const ready: Array<{ readonly job: JobRecord; readonly body: DispatchBody }> = []
    let destination: Dispatcher.Destination | undefined
    for (const job of batch) {
      const prepared = Either.try(() => {
        destination ??= destinationOf(
          job.target ?? Option.getOrThrowWith(legacyTarget, () => new Error("the job has no dispatch target"))
        )
        return dispatchBody({ ...job, args: JSON.parse(job.args) }, { attempt: job.attempt, lease: null, scheduler: self })
      })
      if (Either.isRight(prepared)) ready.push({ job, body: prepared.right })
      else {
        settle(job, {
          ok: false,
          retryable: false,
          error: `the stored job cannot be dispatched: ${messageOf(prepared.left)}`
        })
      }
    }
    if (destination === undefined || ready.length === 0) return
    const group = groupOf(batch[0]!)
    if (ready.length === 1 || batchSizeOf(group) === 1) return sendSingly(destination, ready, settle)
    const to = destination
    const now = clock.unsafeCurrentTimeMillis()
    const lease = crypto.randomUUID()
    leases.set(lease, { attempts: ready.map(({ job }) => [job.id, job.attempt] as const), confirmed: false })
    const settled = new Array<boolean>(ready.length).fill(false)
    void Dispatcher.sendBatch(
      settings.secret,
      to,
      { lease, scheduler: self },
      ready.map(({ body }) => body),
      now,
      Engine.earliestRunAt(ready.map(({ job }) => job)) - now,
      timeoutReason,
      (index, outcome) => {
        settled[index] = true
        settle(ready[index]!.job, outcome)
      }
    ).then((end) => {
      leases.delete(lease)
      if (end._tag === "Done") return
      singleUntil.set(group, clock.unsafeCurrentTimeMillis() + SINGLE_DISPATCH_MS)
      log(Effect.logWarning(
        `the dispatch endpoint did not take a batch (${end.reason}): one request per job for ${SINGLE_DISPATCH_MS / 60_000} minutes; serve Dispatch.batchPath for batched dispatch`
      ))
      sendSingly(to, ready.filter((_, index) => !settled[index]), settle)
    })
  }

  // -- the alarm pass --------------------------------------------------------

  /** Leasing stops early enough that the last lease ends within the alarm's wall time. */
  const leasingMs = Math.max(MIN_LEASING_MS, ALARM_WALL_LIMIT_MS - config.leaseMs)
  /** Failed passes in a row. */
  let failures = 0

  /**
   * One alarm: the drain loop (`Drain.make`) over the store and the app's
   * endpoint, at most `maxPerAlarm` requests (the subrequest cap), leasing
   * until a new lease could outlast the alarm's wall time. Returns whether
   * it failed and whether it did anything.
   */
  const metrics = settings.metrics ? Metrics.make(self) : undefined
  const drain = Drain.make({
    observe: metrics,
    store,
    config,
    concurrency: settings.concurrency,
    batchSize: batchSizeOf,
    groupOf,
    claimPerSlot,
    sweepLimit: SWEEP_LIMIT,
    send,
    signal,
    watchLeases: false,
    flushDelayMs: FLUSH_DELAY_MS,
    wait: Drain.raceSignal(signal),
    spanName: "SchedulerDO.dispatch"
  })
  const pass = Effect.suspend(() => {
    const startedAt = clock.unsafeCurrentTimeMillis()
    return Effect.tap(
      drain({ budget: settings.maxPerAlarm, leaseUntil: startedAt + leasingMs }),
      () => metrics?.pass(clock.unsafeCurrentTimeMillis() - startedAt)
    )
  })

  /**
   * Re-arms last: to the next due time, or, after a failed pass (or one that
   * did nothing while work was due, which would otherwise spin), no sooner
   * than the backoff.
   */
  const rearm = (result: { readonly startedAt: number; readonly failed: boolean; readonly progress: boolean }) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const wake = yield* Effect.either(nextWake)
      let failed = result.failed
      if (Either.isLeft(wake)) {
        failed = true
        yield* Effect.logError("SchedulerDO could not compute when it next has work", wake.left.error)
      }
      const at = Either.getOrUndefined(wake)
      if (!failed && !result.progress && at !== undefined && !(alarmTime(at, result.startedAt) > result.startedAt)) {
        failed = true
        yield* Effect.logError("SchedulerDO alarm pass did nothing while work was due: backing off")
      }
      failures = failed ? failures + 1 : 0
      const wakeAt = failed ? Math.max(alarmTime(at, now), now + Engine.failureBackoffMs(failures)) : at
      yield* setAlarm(wakeAt === undefined ? undefined : alarmTime(wakeAt, now))
    }).pipe(Effect.catchAllCause((cause) => Effect.logError("SchedulerDO could not re-arm its alarm", cause)))

  const alarm = pass.pipe(
    Effect.catchAllCause((cause) =>
      Effect.as(Effect.logError("SchedulerDO alarm pass failed", cause), { startedAt: 0, failed: true, progress: false })
    ),
    Effect.flatMap(rearm),
    Effect.withSpan("SchedulerDO.alarm")
  )

  // -- the operations --------------------------------------------------------

  const engine = Operations.make(store, config)
  const checked = (jobs: ReadonlyArray<Engine.NewJob>, pooled: boolean) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const problem = jobsProblem(jobs, now, pooled, ownTargetProblem)
      return problem === undefined ? Effect.void : Effect.fail(problem)
    })

  /**
   * An engine operation on its decoded arguments: its own arguments (after
   * the target, for one that takes it), the jobs it stores (`schedule`,
   * `enqueue`), and how to run it at `now`.
   */
  const applied = <K extends Operations.Name>(name: K, args: Args<K>) => {
    const [target, rest] = Operations.isTargeted(name)
      ? [JSON.stringify(args[0]), args.slice(1)]
      : [null, args]
    const added = name === "schedule"
      ? rest[0] as ReadonlyArray<Engine.NewJob>
      : name === "enqueue"
      ? rest[1] as ReadonlyArray<Engine.NewJob>
      : undefined
    return { rest, added, apply: (now: number) => (engine[name] as Function)({ now, target }, ...rest) as Result<K> }
  }

  /** Runs an engine operation on its decoded arguments: the jobs it stores checked against the clock first. */
  const run = <K extends Operations.Name>(name: K, args: Args<K>): Effect.Effect<Result<K>, Refusal> => {
    const { added, apply, rest } = applied(name, args)
    if (name === "reconcileCrons") {
      for (const cron of rest[0] as ReadonlyArray<CronDefinition>) {
        const problem = cron.own === undefined ? undefined : ownTargetProblem(cron.own)
        if (problem !== undefined) return Effect.fail(new InvalidOptions({ reason: `cron ${cron.name}: ${problem}` }))
      }
    }
    if (added === undefined) return Operations.reads.has(name) ? read(apply) : mutate(apply)
    return Effect.zipRight(checked(added, name === "enqueue"), mutateAdding(Engine.earliestRunAt(added), apply))
  }

  /** True, once, while the request sent with `lease` is in flight and carried exactly these attempts. */
  const confirm = (lease: string, attempts: ReadonlyArray<readonly [string, number]>): boolean => {
    const entry = leases.get(lease)
    if (
      entry === undefined || entry.confirmed || entry.attempts.length !== attempts.length ||
      entry.attempts.some(([id, attempt], index) => attempts[index]![0] !== id || attempts[index]![1] !== attempt)
    ) return false
    entry.confirmed = true
    return true
  }

  /** Answers `confirmDispatch` or `confirmDispatches` on its decoded arguments: plain, no fiber (one call per dispatch request). */
  const confirmation = (name: Confirmation, args: Args<Confirmation>): boolean => {
    if (name === "confirmDispatch") {
      const [lease, id, attempt] = args as Args<"confirmDispatch">
      return confirm(lease, [[id, attempt]])
    }
    const [lease, attempts] = args as Args<"confirmDispatches">
    return confirm(lease, attempts)
  }

  /**
   * Answers at once, without a fiber, what needs no storage call: a
   * confirmation, and jobs to store (`schedule`, `enqueue`) while the alarm
   * this object set is ahead of all of them, so neither the wake time nor the
   * stored alarm is read (they are checked and stored, and a running loop
   * woken). `undefined` for anything else: `operation` answers it.
   */
  const immediate = <K extends Operation>(name: K, args: Args<K>): Either.Either<Result<K>, Refusal> | undefined => {
    if (isConfirmation(name)) return Either.right(confirmation(name, args as Args<Confirmation>) as Result<K>)
    if (name !== "schedule" && name !== "enqueue") return undefined
    const { added, apply } = applied(name as "schedule" | "enqueue", args as Args<"schedule" | "enqueue">)
    const now = clock.unsafeCurrentTimeMillis()
    if (added === undefined || added.length === 0 || !armedAhead(Engine.earliestRunAt(added), now)) return undefined
    const problem = jobsProblem(added, now, name === "enqueue", ownTargetProblem)
    if (problem !== undefined) return Either.left(problem)
    const result = apply(now)
    signal.unsafeOffer(undefined)
    return Either.right(result as Result<K>)
  }

  /** This object's metrics, with its store's gauges now. */
  const snapshot = () => {
    const at = { now: clock.unsafeCurrentTimeMillis(), target: null }
    const gauges = Metrics.gauges(engine.stats(at), engine.listPools(at))
    return metrics === undefined ? gauges : metrics.snapshot(gauges)
  }

  /** Answers any operation on its decoded arguments. */
  const operation = <K extends Operation>(name: K, args: Args<K>): Effect.Effect<Result<K>, Refusal> =>
    isConfirmation(name)
      ? Effect.sync(() => confirmation(name, args as Args<Confirmation>) as Result<K>)
      : name === "metrics"
      ? Effect.sync(() => snapshot() as Result<K>)
      : run(name as Operations.Name, args as never) as Effect.Effect<Result<K>, Refusal>

  return { alarm, operation, immediate }
})

/** The operations the dispatch endpoint calls, once per dispatch request. */
export type Confirmation = "confirmDispatch" | "confirmDispatches"

export const isConfirmation = (name: Operation): name is Confirmation =>
  name === "confirmDispatch" || name === "confirmDispatches"

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
export const layer = (
  storage: DurableObjectStorage,
  env: Record<string, unknown>,
  id: string,
  telemetry: Layer.Layer<never, unknown> = Layer.empty
) =>
  Layer.effect(DurableScheduler, Effect.withConfigProvider(make, providerFromEnv(env))).pipe(
    Layer.provide(Layer.succeed(DurableContext, { storage, env, id })),
    Layer.provide(
      Layer.catchAllCause(
        telemetry,
        (cause) => Layer.effectDiscard(Effect.logError("SchedulerDO runs without its telemetry layer, which could not be built", cause))
      )
    )
  )
