/**
 * The cron rules, once, over a `Store`: reconcile
 * the declared crons, fire what is due as jobs, skip a fire that would
 * overlap a live run, fire a missed window once, and count the next time
 * from the scheduled time (not from now) so intervals do not drift. A cron
 * whose times cannot be computed is recorded as failing and tried again a
 * minute later; it never stops the others.
 */
import { type CronDefinition, type CronSchedule, firstFireAt, latestAtOrBefore, nextAfter } from "../domain/cronSchedule.js"
import { isTerminal } from "../../Job.js"
import { fnv1a } from "../domain/names.js"
import type { CronRecord, JobRecord, Store } from "./store.js"
import * as Engine from "./engine.js"
import { ownTargetText } from "../domain/targets.js"

export interface ReconcileResult {
  readonly added: ReadonlyArray<string>
  readonly changed: ReadonlyArray<string>
  readonly removed: ReadonlyArray<string>
}

/** How long a cron whose next time could not be computed waits before it is tried again. */
export const CRON_RETRY_MS = 60_000

const describe = (error: unknown) => (error instanceof Error ? error.message : String(error))

/** The first fire of a schedule declared at `now`, or a retry a minute later with the reason, when it cannot be computed. */
const firstRun = (schedule: CronSchedule, now: number) => {
  try {
    return { nextRunAt: firstFireAt(schedule, now), error: null }
  } catch (error) {
    return { nextRunAt: now + CRON_RETRY_MS, error: `error: no next fire time: ${describe(error)}` }
  }
}

/**
 * A stored schedule's times: its interval, or its expression and zone. A
 * record stored before schedules carried their fields has the same times as
 * the same expression declared with them.
 */
const timesOf = (stored: string): string => {
  try {
    const schedule = JSON.parse(stored) as { _tag?: unknown; ms?: unknown; expression?: unknown; timeZone?: unknown }
    return JSON.stringify(schedule._tag === "Interval" ? [schedule.ms] : [schedule.expression, schedule.timeZone])
  } catch {
    return stored
  }
}

/**
 * Makes the stored crons the declared ones: new ones are added (first fire
 * counted from `now`, or at `now` for an interval with `firstRun:
 * "immediately"`), changed ones updated (a new schedule counts from `now`
 * likewise), the rest removed. Declaring the same set again changes nothing;
 * the same times written anew (fields added to an older record) keep the
 * next fire.
 * `callTarget` is where the crons' jobs go (opaque to the engine) unless a
 * cron has its own (a webhook, a Workflow); `shard` is
 * the shard this store is, named in the ids of its crons' jobs.
 */
export const reconcile = (
  store: Store,
  now: number,
  declared: ReadonlyArray<CronDefinition>,
  callTarget: string | null = null,
  shard = 0
): ReconcileResult =>
  store.transaction(() => {
    const field = shard.toString(36)
    if ((store.setting(SHARD_SETTING) ?? "0") !== field) store.putSetting(SHARD_SETTING, field)
    const names = new Set(declared.map((cron) => cron.name))
    const removed = store.listCrons().filter((cron) => !names.has(cron.name)).map((cron) => cron.name)
    for (const name of removed) store.removeCron(name)
    const added: Array<string> = []
    const changed: Array<string> = []
    for (const cron of declared) {
      const schedule = JSON.stringify(cron.schedule)
      const target = cron.own === undefined ? callTarget : ownTargetText(cron.own)
      const existing = store.getCron(cron.name)
      if (existing === undefined) {
        added.push(cron.name)
        const next = firstRun(cron.schedule, now)
        store.putCron({
          name: cron.name,
          schedule,
          functionPath: cron.functionPath,
          args: cron.args,
          nextRunAt: next.nextRunAt,
          lastRunAt: null,
          lastJobId: null,
          lastOutcome: next.error,
          skipped: 0,
          target
        })
      } else if (timesOf(existing.schedule) !== timesOf(schedule)) {
        changed.push(cron.name)
        const next = firstRun(cron.schedule, now)
        store.putCron({
          ...existing,
          schedule,
          functionPath: cron.functionPath,
          args: cron.args,
          nextRunAt: next.nextRunAt,
          lastOutcome: next.error ?? existing.lastOutcome,
          target
        })
      } else if (
        existing.schedule !== schedule || existing.functionPath !== cron.functionPath || existing.args !== cron.args ||
        existing.target !== target
      ) {
        changed.push(cron.name)
        store.putCron({ ...existing, schedule, functionPath: cron.functionPath, args: cron.args, target })
      }
    }
    return { added, changed, removed }
  })

/**
 * Where a due cron stands at `now`: the scheduled time to fire (the latest
 * one at or before `now`, so after downtime the missed windows fire once, as
 * the last of them) and the next one after it.
 */
const advance = (schedule: CronSchedule, due: number, now: number) => {
  const fireAt = latestAtOrBefore(schedule, due, now)
  return { fireAt, nextRunAt: nextAfter(schedule, fireAt) }
}

/** A short, stable hash of a cron's name, for its jobs' ids. */
const nameHash = (name: string): string => fnv1a(name).toString(36).padStart(7, "0")

/** The setting that names the shard this store is (base 36), as its crons' jobs' ids carry it; none on shard 0. */
const SHARD_SETTING = "shard"

/**
 * The id of a job this store makes itself (a cron's fire, an alert's job):
 * its shard, its kind (one letter), the time it is for, and a hash of the
 * name it is for; so the same name at the same time makes the same id.
 */
export const ownJobId = (store: Store, kind: string, at: number, name: string): string =>
  `job_${store.setting(SHARD_SETTING) ?? "0"}_${kind}${at.toString(36).padStart(9, "0")}${nameHash(name)}`

/**
 * The job of one fire: its id and key both name the cron and the scheduled
 * time, so a fire is stored once; its id names the store's shard, as every
 * job id does.
 */
const fireJob = (store: Store, cron: CronRecord, scheduledAt: number, kind: "c" | "m"): Engine.NewJob => ({
  target: cron.target,
  id: ownJobId(store, kind, scheduledAt, cron.name),
  functionPath: cron.functionPath,
  args: cron.args,
  runAt: scheduledAt,
  retryDelaysMs: [],
  deadLetter: false,
  pool: null,
  key: `cron:${cron.name}:${kind === "c" ? "" : "manual:"}${scheduledAt}`,
  shardKey: null
})

const isLive = (job: JobRecord | undefined) => job !== undefined && !isTerminal(job.state)

export interface FireResult {
  readonly fired: ReadonlyArray<JobRecord>
  readonly skipped: ReadonlyArray<CronRecord>
  /** Crons whose fire could not be computed: each recorded with the reason, and tried again a minute later. */
  readonly failed: ReadonlyArray<CronRecord>
}

const fireOne = (store: Store, config: Engine.EngineConfig, now: number, cron: CronRecord): { readonly job: JobRecord | undefined; readonly cron: CronRecord } => {
  const schedule = JSON.parse(cron.schedule) as CronSchedule
  const { fireAt: scheduledAt, nextRunAt } = advance(schedule, cron.nextRunAt, now)
  const last = cron.lastJobId === null ? undefined : store.get(cron.lastJobId)
  if (isLive(last)) {
    const next: CronRecord = {
      ...cron,
      nextRunAt,
      lastRunAt: scheduledAt,
      lastOutcome: `skipped: the previous run ${last!.id} was still ${last!.state}`,
      skipped: cron.skipped + 1
    }
    store.putCron(next)
    return { job: undefined, cron: next }
  }
  const job = fireJob(store, cron, scheduledAt, "c")
  const stored = store.get(job.id) ?? Engine.schedule(store, config, now, job).job
  const next: CronRecord = { ...cron, nextRunAt, lastRunAt: scheduledAt, lastJobId: stored.id, lastOutcome: "fired" }
  store.putCron(next)
  return { job: stored, cron: next }
}

/**
 * Fires up to `limit` due crons at `now`: each due cron's scheduled time
 * becomes a job (run at that time, so as soon as possible), unless its last
 * run is still live: then the fire is skipped and counted. After downtime
 * the latest missed scheduled time fires, once. Either way the cron moves to
 * its next time after the one fired, counted from it, so intervals do not drift.
 * Each cron fires in a transaction of its own: one that fails (its times
 * cannot be computed, its record is damaged) is recorded as failing, moved a
 * minute on, and the others fire.
 */
export const fireDue = (store: Store, config: Engine.EngineConfig, now: number, limit: number): FireResult => {
  const fired: Array<JobRecord> = []
  const skipped: Array<CronRecord> = []
  const failed: Array<CronRecord> = []
  for (const cron of store.dueCrons(now, limit)) {
    try {
      const result = store.transaction(() => fireOne(store, config, now, cron))
      if (result.job === undefined) skipped.push(result.cron)
      else fired.push(result.job)
    } catch (error) {
      const next: CronRecord = { ...cron, nextRunAt: now + CRON_RETRY_MS, lastOutcome: `error: ${describe(error)}` }
      store.transaction(() => store.putCron(next))
      failed.push(next)
    }
  }
  return { fired, skipped, failed }
}

export type TriggerResult =
  | { readonly _tag: "Triggered"; readonly job: JobRecord }
  | { readonly _tag: "InProgress"; readonly job: JobRecord }
  | { readonly _tag: "NotFound" }

/**
 * Runs a cron now, outside its schedule; its next scheduled time is
 * unchanged. While a run of the cron is live (scheduled or triggered),
 * nothing is started: at most one run is in progress.
 */
export const trigger = (store: Store, config: Engine.EngineConfig, now: number, name: string): TriggerResult =>
  store.transaction(() => {
    const cron = store.getCron(name)
    if (cron === undefined) return { _tag: "NotFound" }
    const last = cron.lastJobId === null ? undefined : store.get(cron.lastJobId)
    if (isLive(last)) return { _tag: "InProgress", job: last! }
    const job = fireJob(store, cron, now, "m")
    const stored = store.get(job.id) ?? Engine.schedule(store, config, now, job).job
    store.putCron({ ...cron, lastJobId: stored.id })
    return { _tag: "Triggered", job: stored }
  })

/** A cron with the state of its last run's job (null when it never ran, or the job was swept). */
export interface CronView extends CronRecord {
  readonly lastJobState: JobRecord["state"] | null
}

/** Every cron by name, with its last run's state. */
export const list = (store: Store): ReadonlyArray<CronView> =>
  store.listCrons().map((cron) => ({
    ...cron,
    lastJobState: cron.lastJobId === null ? null : store.get(cron.lastJobId)?.state ?? null
  }))
