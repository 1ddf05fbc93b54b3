/**
 * The drain loop, once: fire due crons, expire leases and sweep, lease due
 * jobs in batches, hand each batch to a sender, and record the outcomes
 * together. The `SchedulerDO` runs it once per alarm over its SQLite store
 * and the app's dispatch endpoint; the memory runtime runs it on every wake
 * over its store and the handlers in the process, on Effect's `Clock`. Same
 * admission, same concurrency cap, same batching.
 *
 * Per batch, not per job: one lease transaction, one sender call, one span,
 * one transaction for the outcomes that came in together. The sender runs
 * on its own (no fiber is forked here) and reports each job's outcome once.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import type * as Tracer from "effect/Tracer"
import * as AlertEngine from "../engine/alerts.js"
import * as CronEngine from "../engine/crons.js"
import * as Engine from "../engine/engine.js"
import type { JobRecord, Store } from "../engine/store.js"
import type { Outcome } from "./dispatcher.js"

/** Hands a batch to be run or sent; `settle` is called once per job, as each outcome is known, in any order. */
export type Sender = (batch: ReadonlyArray<JobRecord>, settle: (job: JobRecord, outcome: Outcome) => void) => void

export interface Settings {
  readonly store: Store
  readonly config: Engine.EngineConfig
  /** Batches (requests) in flight at once. */
  readonly concurrency: number
  /** The most jobs of one group a batch carries, now (1: one request per job). */
  readonly batchSize: (group: string) => number
  /** The jobs that may share a batch (the same destination) have the same group. */
  readonly groupOf: (job: JobRecord) => string
  /** The most jobs one claim leases per free slot: the largest batch size any group has now. */
  readonly claimPerSlot: () => number
  /** How many expired leases, and finished jobs per state, one pass handles at a time. */
  readonly sweepLimit: number
  readonly send: Sender
  /** Offered to wake the loop (an outcome came in, or a call changed what can run). */
  readonly signal: Queue.Queue<void>
  /** Waits until `at` (when given) or a signal, whichever comes first. */
  readonly wait: (at: number | undefined, now: number) => Effect.Effect<void>
  /**
   * How long an outcome may wait to be recorded with others while its batch
   * still runs (0: each at once). Outcomes are written together when a batch
   * holding a pool's job has finished (its slots are free once written), when
   * nothing is in flight, or when the oldest has waited this long: a streamed
   * batch answers one job at a time, and a write per finished batch would be
   * a transaction per job at one job per request.
   */
  readonly flushDelayMs: number
  /** The span name of one batch. */
  readonly spanName: string
  /**
   * Whether the loop itself expires the leases of batches in flight when they
   * run out (the memory runtime, whose handlers have no timeout of their own);
   * else a sender ends each request at its lease and reports that outcome.
   */
  readonly watchLeases: boolean
  /** Leases that ran out in this pass (the memory runtime stops their handlers). */
  readonly onExpired?: ((jobs: ReadonlyArray<JobRecord>) => Effect.Effect<void>) | undefined
  /** After a step that changed the store. */
  readonly onChange?: Effect.Effect<void> | undefined
  /** Told, plainly, of each batch leased, each write of outcomes and each lease that ran out (the metrics). */
  readonly observe?: {
    readonly leased: (jobs: ReadonlyArray<JobRecord>, now: number) => void
    readonly recorded: (results: ReadonlyArray<Engine.ReportResult>) => void
    readonly expired: (jobs: ReadonlyArray<JobRecord>) => void
  } | undefined
}

export interface PassLimits {
  /** Batches (requests) this pass may send: the subrequest cap of an alarm. */
  readonly budget: number
  /** No lease is taken at or after this time. */
  readonly leaseUntil: number
}

export interface PassResult {
  readonly startedAt: number
  /** A step of its own failed (logged). */
  readonly failed: boolean
  /** It fired, expired, swept, leased or recorded something. */
  readonly progress: boolean
}

/** Splits claimed jobs into batches: by group, in claim order, at most the group's batch size each. */
export const batchesOf = (
  jobs: ReadonlyArray<JobRecord>,
  groupOf: (job: JobRecord) => string,
  batchSize: (group: string) => number
): ReadonlyArray<ReadonlyArray<JobRecord>> => {
  const open = new Map<string, Array<JobRecord>>()
  const batches: Array<Array<JobRecord>> = []
  for (const job of jobs) {
    const group = groupOf(job)
    let batch = open.get(group)
    if (batch === undefined || batch.length >= batchSize(group)) {
      batch = []
      open.set(group, batch)
      batches.push(batch)
    }
    batch.push(job)
  }
  return batches
}

/**
 * Makes a pass: keeps up to `concurrency` batches in flight, leasing due
 * jobs (with pool admission) only when a slot is free, so a lease starts
 * when its job is sent. While batches run it waits for an outcome, a signal
 * or the next due time, records what came in, and leases again: a pool
 * stays saturated while long handlers run. Leasing stops when the budget is
 * spent or at `leaseUntil`; the pass then waits for what is in flight. A
 * step that throws is logged and the pass goes on without it (it has then
 * failed); it never fails itself.
 */
export const make = (settings: Settings) => {
  const { config, store } = settings
  const onChange = settings.onChange ?? Effect.void
  const settled: Array<Engine.AttemptOutcome> = []
  /** When the oldest outcome in `settled` came in. */
  let oldestSettledAt = 0
  /** Batches holding a pool's job that finished since the last write of outcomes. */
  let finishedPooled = 0
  const wake = () => Queue.unsafeOffer(settings.signal, undefined)

  return (limits: PassLimits): Effect.Effect<PassResult> =>
    Effect.gen(function*() {
      const clock = yield* Effect.clock
      const startedAt = clock.unsafeCurrentTimeMillis()
      let budget = limits.budget
      let inFlight = 0
      /** The earliest lease of a batch in flight ends: a lease runs out then, unless its outcome came first. */
      const leaseEnds = new Map<ReadonlyArray<JobRecord>, number>()
      let polled = false
      let leasingBroken = false
      let failed = false
      let progress = false
      const guarded = <A>(step: string, f: () => A): Effect.Effect<A | undefined> =>
        Effect.suspend(() => {
          try {
            return Effect.succeed(f())
          } catch (error) {
            failed = true
            return Effect.as(Effect.logError(`scheduler drain: ${step} failed`, error), undefined)
          }
        })

      const earliestLeaseEnd = () => {
        let end = Number.POSITIVE_INFINITY
        for (const at of leaseEnds.values()) end = Math.min(end, at)
        return end
      }

      /** Whether the outcomes that came in are to be written now, at `now`. */
      const due = (now: number) =>
        settled.length > 0 &&
        (finishedPooled > 0 || inFlight === 0 || now - oldestSettledAt >= settings.flushDelayMs)

      const flush = Effect.suspend(() => {
        if (!due(clock.unsafeCurrentTimeMillis())) return Effect.void
        finishedPooled = 0
        const outcomes = settled.splice(0)
        progress = true
        const now = clock.unsafeCurrentTimeMillis()
        let results: ReadonlyArray<Engine.ReportResult>
        try {
          results = Engine.record(store, config, now, outcomes)
          settings.observe?.recorded(results)
        } catch (error) {
          return Effect.logError(
            "could not record the outcomes; their leases will expire and the attempts be retried",
            error
          ).pipe(Effect.annotateLogs({ jobIds: outcomes.map((outcome) => outcome.id).join(",") }))
        }
        const ended = results.flatMap((result) => (result._tag === "Recorded" ? [result.job] : []))
        return Effect.zipRight(alert(ended, now), onChange)
      })

      /** The alerts the attempts that ended trip (their jobs stored); a failure here costs no outcome. */
      const alert = (ended: ReadonlyArray<JobRecord>, now: number) =>
        Effect.suspend(() => {
          try {
            AlertEngine.observe(store, config, now, ended)
            return Effect.void
          } catch (error) {
            return Effect.logError("scheduler drain: the alerts could not be checked", error)
          }
        })

      const start = (batch: ReadonlyArray<JobRecord>, span: Tracer.Span) => {
        let left = batch.length
        const pooled = batch.some((job) => job.pool !== null)
        leaseEnds.set(batch, Engine.earliestRunAt(batch))
        settings.send(batch, (job, outcome) => {
          // the loop is woken by the first outcome waiting (its flush deadline starts) and when the batch is done
          // (a slot is free): one outcome after another within a streamed batch waits for the deadline
          const first = settled.length === 0
          if (first) oldestSettledAt = clock.unsafeCurrentTimeMillis()
          settled.push(
            outcome.ok
              ? { id: job.id, attempt: job.attempt, ok: true, result: outcome.result }
              : { id: job.id, attempt: job.attempt, ok: false, error: outcome.error, retryable: outcome.retryable }
          )
          if (--left === 0) {
            inFlight--
            if (pooled) finishedPooled++
            leaseEnds.delete(batch)
            span.end(clock.unsafeCurrentTimeNanos(), Exit.void)
            wake()
          } else if (first) wake()
        })
      }

      while (true) {
        yield* flush
        const now = clock.unsafeCurrentTimeMillis()
        const leasing = !leasingBroken && budget > 0 && now < limits.leaseUntil
        const free = Math.min(settings.concurrency - inFlight, budget)
        if (!polled || (settings.watchLeases && now >= earliestLeaseEnd())) {
          // expiries and sweeps: at the start of a pass, and whenever a lease in flight has run out
          const swept = yield* guarded("the sweep", () => Engine.poll(store, config, now, settings.sweepLimit, 0))
          polled = true
          if (swept !== undefined && (swept.expired.length > 0 || swept.swept > 0)) {
            progress = true
            if (swept.expired.length > 0) {
              settings.observe?.expired(swept.expired)
              yield* alert(swept.expired, now)
            }
            if (settings.onExpired !== undefined && swept.expired.length > 0) yield* settings.onExpired(swept.expired)
            yield* onChange
          }
        }
        if (leasing && free > 0) {
          const crons = yield* guarded("firing crons", () => CronEngine.fireDue(store, config, now, settings.sweepLimit))
          if (crons !== undefined && crons.fired.length + crons.skipped.length + crons.failed.length > 0) {
            progress = true
            for (const cron of crons.failed) yield* Effect.logError(`cron "${cron.name}" failed: ${cron.lastOutcome}`)
          }
          const limit = free * Math.max(1, settings.claimPerSlot())
          const claimed = yield* guarded("leasing due jobs", () => Engine.claim(store, config, now, limit))
          if (claimed === undefined) leasingBroken = true
          else if (claimed.length > 0) {
            progress = true
            settings.observe?.leased(claimed, now)
            const batches = batchesOf(claimed, settings.groupOf, settings.batchSize)
            budget -= batches.length
            inFlight += batches.length
            for (const batch of batches) {
              const span = yield* Effect.makeSpan(settings.spanName, {
                attributes: { jobIds: batch.map((job) => job.id), jobs: batch.length },
                captureStackTrace: false
              })
              start(batch, span)
            }
            yield* onChange
            if (claimed.length === limit) continue
          }
        }
        if (inFlight === 0 && settled.length === 0) break
        if (due(clock.unsafeCurrentTimeMillis())) continue
        // with a free slot, the next due job (or cron) also ends the wait; a watched lease running out does
        const nextDue = leasing && free > 0 && !leasingBroken
          ? yield* guarded("finding the next due time", () => Engine.earliest(Engine.nextClaimAt(store), store.nextCronAt()))
          : undefined
        const leaseEnd = settings.watchLeases ? earliestLeaseEnd() : Number.POSITIVE_INFINITY
        const next = Engine.earliest(
          Engine.earliest(nextDue, Number.isFinite(leaseEnd) ? leaseEnd : undefined),
          settled.length > 0 ? oldestSettledAt + settings.flushDelayMs : undefined
        )
        yield* settings.wait(next, now)
      }
      return { startedAt, failed, progress }
    })
}

/**
 * Waits for a signal, or until `at`: the `SchedulerDO`'s wait. The time is
 * a platform timer that signals (no fiber raced against a sleep, two per
 * wait), cleared when a signal comes first; the loop looks again either way.
 */
export const raceSignal = (signal: Queue.Queue<void>) => (at: number | undefined, now: number): Effect.Effect<void> =>
  at === undefined ? Queue.take(signal) : Effect.suspend(() => {
    const timer = setTimeout(() => Queue.unsafeOffer(signal, undefined), Math.max(1, at - now))
    return Effect.ensuring(Queue.take(signal), Effect.sync(() => clearTimeout(timer)))
  })
