/**
 * The scheduler's metrics, as Effect `Metric`s: start drift, outcomes by
 * function and result, retries, dead letters, expired leases, alarm passes
 * and their duration. A `SchedulerDO` updates them from its drain loop, per
 * batch and per write of outcomes (plain updates, no fiber), each labelled
 * with the object, so objects that share an isolate keep apart; it answers
 * `snapshot` with its own, beside the gauges its store counts at that time.
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricLabel from "effect/MetricLabel"
import type * as MetricState from "effect/MetricState"
import type * as Engine from "../engine/engine.js"
import type { JobRecord } from "../engine/store.js"

/** Every metric's name starts so. */
export const PREFIX = "lunora_scheduler_"

const drift = Metric.histogram(
  `${PREFIX}start_drift_ms`,
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 18 }),
  "when an attempt started, after the time it was due (ms)"
)
const outcomes = Metric.counter(`${PREFIX}outcomes_total`, {
  description: "attempts ended, by function path and result (success, retry, dead_lettered, failed, canceled)",
  incremental: true
})
const retries = Metric.counter(`${PREFIX}retries_total`, {
  description: "attempts that failed and were scheduled again",
  incremental: true
})
const deadLetters = Metric.counter(`${PREFIX}dead_letters_total`, {
  description: "jobs parked as dead letters",
  incremental: true
})
const expiredLeases = Metric.counter(`${PREFIX}leases_expired_total`, {
  description: "attempts whose lease ran out before their outcome came",
  incremental: true
})
const passes = Metric.counter(`${PREFIX}alarm_passes_total`, { description: "alarm passes run", incremental: true })
const passDuration = Metric.histogram(
  `${PREFIX}alarm_pass_ms`,
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 18 }),
  "how long an alarm pass took (ms)"
)

const resultOf = (job: JobRecord) =>
  job.state === "pending"
    ? "retry"
    : job.state === "deadLettered"
    ? "dead_lettered"
    : job.state

/** One metric of a snapshot, as plain data. */
export type Sample =
  | {
    readonly name: string
    readonly type: "counter" | "gauge"
    readonly help: string
    readonly labels: Readonly<Record<string, string>>
    readonly value: number
  }
  | {
    readonly name: string
    readonly type: "histogram"
    readonly help: string
    readonly labels: Readonly<Record<string, string>>
    /** Cumulative counts at each upper bound (`null`: +Inf). */
    readonly buckets: ReadonlyArray<readonly [number | null, number]>
    readonly count: number
    readonly sum: number
  }

/** The metrics of the object `object` (its id): updates from the drain loop and the alarm, and its snapshot. */
export const make = (object: string) => {
  const self = MetricLabel.make("object", object)
  const base = [self]
  const tagsByPath = new Map<string, Map<string, ReadonlyArray<MetricLabel.MetricLabel>>>()
  const tagsOf = (functionPath: string, result: string) => {
    let byResult = tagsByPath.get(functionPath)
    if (byResult === undefined) tagsByPath.set(functionPath, byResult = new Map())
    let tags = byResult.get(result)
    if (tags === undefined) {
      byResult.set(
        result,
        tags = [self, MetricLabel.make("function_path", functionPath), MetricLabel.make("result", result)]
      )
    }
    return tags
  }
  const ended = (job: JobRecord) => {
    const result = resultOf(job)
    outcomes.unsafeUpdate(1, tagsOf(job.functionPath, result))
    if (result === "retry") retries.unsafeUpdate(1, tagsOf(job.functionPath, "retry"))
    if (result === "dead_lettered") deadLetters.unsafeUpdate(1, tagsOf(job.functionPath, "dead_lettered"))
  }

  return {
    /** Jobs leased at `now`: how late each started. */
    leased: (jobs: ReadonlyArray<JobRecord>, now: number) => {
      for (const job of jobs) drift.unsafeUpdate(Math.max(0, now - job.scheduledFor), base)
    },
    /** Outcomes written: each attempt's result. */
    recorded: (results: ReadonlyArray<Engine.ReportResult>) => {
      for (const result of results) if (result._tag === "Recorded") ended(result.job)
    },
    /** Leases that ran out, as the engine left their jobs. */
    expired: (jobs: ReadonlyArray<JobRecord>) => {
      for (const job of jobs) {
        expiredLeases.unsafeUpdate(1, base)
        ended(job)
      }
    },
    /** An alarm pass of `ms`. */
    pass: (ms: number) => {
      passes.unsafeUpdate(1, base)
      passDuration.unsafeUpdate(ms, base)
    },
    /** This object's metrics now, with the gauges given. */
    snapshot: (gauges: ReadonlyArray<Sample>): ReadonlyArray<Sample> => {
      const samples: Array<Sample> = []
      for (const { metricKey, metricState } of Metric.unsafeSnapshot()) {
        if (!metricKey.name.startsWith(PREFIX)) continue
        const tags = [...metricKey.tags]
        if (!tags.some((tag) => tag.key === "object" && tag.value === object)) continue
        const labels = Object.fromEntries(tags.filter((tag) => tag.key !== "object").map((tag) => [tag.key, tag.value]))
        const help = metricKey.description._tag === "Some" ? metricKey.description.value : ""
        if ("buckets" in metricState) {
          const state = metricState as MetricState.MetricState.Histogram
          samples.push({
            name: metricKey.name,
            type: "histogram",
            help,
            labels,
            buckets: [...state.buckets].map(([bound, n]) => [Number.isFinite(bound) ? bound : null, n] as const),
            count: state.count,
            sum: state.sum
          })
        } else {
          const state = metricState as MetricState.MetricState.Counter<number>
          samples.push({ name: metricKey.name, type: "counter", help, labels, value: Number(state.count) })
        }
      }
      return [...samples.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)), ...gauges]
    }
  }
}

/** A scheduler object's metrics. */
export type Metrics = ReturnType<typeof make>

/** The gauges of a store at the time of a snapshot: jobs per state, and each pool's queue and jobs in flight. */
export const gauges = (
  stats: { readonly jobs: Readonly<Record<string, number>> },
  pools: ReadonlyArray<{ readonly name: string; readonly queued: number; readonly inFlight: number }>
): ReadonlyArray<Sample> => [
  ...Object.entries(stats.jobs).map(([state, value]): Sample => ({
    name: `${PREFIX}jobs`,
    type: "gauge",
    help: "jobs held, by state",
    labels: { state },
    value
  })),
  ...pools.flatMap((pool): ReadonlyArray<Sample> => [
    { name: `${PREFIX}pool_queued`, type: "gauge", help: "a pool's pending jobs", labels: { pool: pool.name }, value: pool.queued },
    {
      name: `${PREFIX}pool_in_flight`,
      type: "gauge",
      help: "a pool's jobs in progress",
      labels: { pool: pool.name },
      value: pool.inFlight
    }
  ])
]

/**
 * The samples in the Prometheus text exposition format, each with the
 * labels given (the instance and shard) before its own.
 */
export const prometheus = (groups: ReadonlyArray<{ readonly labels: Readonly<Record<string, string>>; readonly samples: ReadonlyArray<Sample> }>): string => {
  const escape = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')
  const text = (labels: Readonly<Record<string, string>>) => {
    const pairs = Object.entries(labels).map(([key, value]) => `${key}="${escape(value)}"`)
    return pairs.length === 0 ? "" : `{${pairs.join(",")}}`
  }
  const byName = new Map<string, Array<{ readonly labels: Readonly<Record<string, string>>; readonly sample: Sample }>>()
  for (const group of groups) {
    for (const sample of group.samples) {
      const entries = byName.get(sample.name) ?? []
      entries.push({ labels: { ...group.labels, ...sample.labels }, sample })
      byName.set(sample.name, entries)
    }
  }
  const lines: Array<string> = []
  for (const [name, entries] of byName) {
    const first = entries[0]!.sample
    lines.push(`# HELP ${name} ${first.help}`, `# TYPE ${name} ${first.type}`)
    for (const { labels, sample } of entries) {
      if (sample.type !== "histogram") {
        lines.push(`${name}${text(labels)} ${sample.value}`)
        continue
      }
      for (const [bound, n] of sample.buckets) {
        lines.push(`${name}_bucket${text({ ...labels, le: bound === null ? "+Inf" : String(bound) })} ${n}`)
      }
      if (sample.buckets.every(([bound]) => bound !== null)) lines.push(`${name}_bucket${text({ ...labels, le: "+Inf" })} ${sample.count}`)
      lines.push(`${name}_sum${text(labels)} ${sample.sum}`, `${name}_count${text(labels)} ${sample.count}`)
    }
  }
  return `${lines.join("\n")}\n`
}
