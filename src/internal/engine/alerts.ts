/**
 * The alert rules, once, over a `Store`: the declared alerts are kept with
 * their state in the store's settings; each write of outcomes is observed,
 * and an alert fires by storing a job of the user's choosing, due now, whose
 * payload carries the figures that tripped it. A dead-letter alert fires once
 * per write of outcomes that parked dead letters (naming up to 20 of them);
 * an error-rate alert fires once when the rate over its window rises above
 * its threshold, and again only after it fell back to or below it. The jobs
 * alerts store are not observed (an alert's own dead letter raises none).
 */
import type { Store, JobRecord } from "./store.js"
import * as Engine from "./engine.js"
import { ownJobId } from "./crons.js"

/** What trips an alert. */
export type Trigger =
  | { readonly _tag: "DeadLetter"; readonly functionPath: string | null }
  | {
    readonly _tag: "ErrorRate"
    /** The share of failed attempts (0–1) above which it fires. */
    readonly above: number
    readonly windowMs: number
    /** Attempts the window must hold before a rate counts. */
    readonly minAttempts: number
    readonly functionPath: string | null
  }

/** A declared alert: its name, what trips it, and the job it stores when it fires (with that job's retry plan). */
export interface AlertDefinition {
  readonly name: string
  readonly trigger: Trigger
  readonly functionPath: string
  readonly retryDelaysMs: ReadonlyArray<number>
}

/** An error-rate alert's window: buckets of attempts and failures, and whether it is above its threshold now. */
interface RateState {
  readonly buckets: ReadonlyArray<readonly [start: number, attempts: number, failures: number]>
  readonly breached: boolean
}

interface Stored {
  readonly definitions: ReadonlyArray<AlertDefinition>
  readonly target: string | null
  readonly states: Readonly<Record<string, RateState>>
}

const SETTING = "alerts"
/** Buckets per window: the window slides by a tenth of itself. */
const BUCKETS = 10
const MAX_NAMED = 20
/** The key prefix of the jobs alerts store. */
const KEY_PREFIX = "alert:"

const read = (store: Store): Stored | undefined => {
  const text = store.setting(SETTING)
  return text === undefined ? undefined : (JSON.parse(text) as Stored)
}

/** Makes the stored alerts the declared ones; the state of an alert declared again the same is kept. */
export const reconcile = (
  store: Store,
  declared: ReadonlyArray<AlertDefinition>,
  target: string | null = null
): { readonly alerts: ReadonlyArray<string> } =>
  store.transaction(() => {
    const previous = read(store)
    const states: Record<string, RateState> = {}
    for (const alert of declared) {
      const before = previous?.definitions.find((old) => old.name === alert.name)
      const kept = previous?.states[alert.name]
      if (kept !== undefined && before !== undefined && JSON.stringify(before.trigger) === JSON.stringify(alert.trigger)) {
        states[alert.name] = kept
      }
    }
    if (declared.length === 0 && previous === undefined) return { alerts: [] }
    store.putSetting(SETTING, JSON.stringify({ definitions: declared, target, states } satisfies Stored))
    return { alerts: declared.map((alert) => alert.name) }
  })

/** The declared alerts' names and triggers. */
export const list = (store: Store): ReadonlyArray<AlertDefinition> => read(store)?.definitions ?? []

const failedAttempt = (job: JobRecord) => job.state !== "success" && job.state !== "canceled"

const matches = (trigger: Trigger, job: JobRecord) => trigger.functionPath === null || trigger.functionPath === job.functionPath

/** The payload of an alert's job. */
export type AlertEvent =
  | {
    readonly alert: string
    readonly kind: "deadLetter"
    readonly at: number
    readonly count: number
    readonly jobs: ReadonlyArray<{ readonly id: string; readonly functionPath: string; readonly attempt: number; readonly lastError: string | null }>
  }
  | {
    readonly alert: string
    readonly kind: "errorRate"
    readonly at: number
    readonly rate: number
    readonly failures: number
    readonly attempts: number
    readonly above: number
    readonly windowMs: number
    readonly functionPath: string | null
  }

/**
 * Observes attempts that ended at `now` (their records as written: a
 * retry is `pending` again), and stores the jobs of the alerts they trip.
 * Returns the events.
 */
export const observe = (
  store: Store,
  config: Engine.EngineConfig,
  now: number,
  ended: ReadonlyArray<JobRecord>
): ReadonlyArray<AlertEvent> => {
  if (ended.length === 0) return []
  const stored = read(store)
  if (stored === undefined || stored.definitions.length === 0) return []
  const observed = ended.filter((job) => !(job.key?.startsWith(KEY_PREFIX) ?? false))
  if (observed.length === 0) return []
  const events: Array<readonly [AlertDefinition, AlertEvent]> = []
  const states: Record<string, RateState> = { ...stored.states }
  for (const alert of stored.definitions) {
    const trigger = alert.trigger
    if (trigger._tag === "DeadLetter") {
      const dead = observed.filter((job) => job.state === "deadLettered" && matches(trigger, job))
      if (dead.length === 0) continue
      events.push([alert, {
        alert: alert.name,
        kind: "deadLetter",
        at: now,
        count: dead.length,
        jobs: dead.slice(0, MAX_NAMED).map((job) => ({
          id: job.id,
          functionPath: job.functionPath,
          attempt: job.attempt,
          lastError: job.lastError
        }))
      }])
      continue
    }
    const counted = observed.filter((job) => matches(trigger, job))
    if (counted.length === 0) continue
    const width = Math.max(1, Math.ceil(trigger.windowMs / BUCKETS))
    const start = Math.floor(now / width) * width
    const buckets = (states[alert.name]?.buckets ?? []).filter(([at]) => at > now - trigger.windowMs)
    const failures = counted.filter(failedAttempt).length
    const last = buckets[buckets.length - 1]
    const next = last !== undefined && last[0] === start
      ? [...buckets.slice(0, -1), [start, last[1] + counted.length, last[2] + failures] as const]
      : [...buckets, [start, counted.length, failures] as const]
    const attempts = next.reduce((n, [, a]) => n + a, 0)
    const failed = next.reduce((n, [, , f]) => n + f, 0)
    const rate = attempts === 0 ? 0 : failed / attempts
    const breached = attempts >= trigger.minAttempts && rate > trigger.above
    const was = states[alert.name]?.breached ?? false
    states[alert.name] = { buckets: next, breached: breached || (was && rate > trigger.above) }
    if (breached && !was) {
      events.push([alert, {
        alert: alert.name,
        kind: "errorRate",
        at: now,
        rate,
        failures: failed,
        attempts,
        above: trigger.above,
        windowMs: trigger.windowMs,
        functionPath: trigger.functionPath
      }])
    }
  }
  store.putSetting(SETTING, JSON.stringify({ ...stored, states } satisfies Stored))
  if (events.length > 0) {
    Engine.scheduleMany(
      store,
      config,
      now,
      events.map(([alert, event]) => {
        return {
          id: ownJobId(store, "a", now, alert.name),
          functionPath: alert.functionPath,
          args: JSON.stringify(event),
          runAt: now,
          retryDelaysMs: alert.retryDelaysMs,
          deadLetter: true,
          key: `${KEY_PREFIX}${alert.name}:${now}`,
          shardKey: null,
          pool: null,
          target: stored.target
        }
      })
    )
  }
  return events.map(([, event]) => event)
}
