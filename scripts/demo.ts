/// <reference types="node" />
/**
 * The main job in one command: `npm run demo`. Starts the example app
 * (`examples/worker.ts`, bound by `wrangler.jsonc`) on local workerd with
 * fresh storage, schedules jobs through its HTTP routes, prints each attempt
 * as the `SchedulerDO` runs it, then checks the outcomes and prints a summary.
 * Exits 0 when every job ended as expected, 1 otherwise or after 60 s.
 * Local only: nothing here talks to a Cloudflare account.
 */
import { mkdtemp, rm } from "node:fs/promises"
import os from "node:os"
import path from "node:path"
import type { Job, Scheduler } from "../src/index.js"

process.env.WRANGLER_SEND_METRICS = "false"
// no network here: use miniflare's placeholder `Request.cf` rather than fetch it (and warn)
process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false"
const { unstable_startWorker } = await import("wrangler")

type JobJson = typeof Job.JobInfo.Encoded
type State = JobJson["state"]

const POLL_MS = 100
const CANCEL_AT_MS = 1_000
const DEADLINE_MS = 60_000
const TERMINAL: ReadonlyArray<State> = ["success", "failed", "canceled", "deadLettered"]

// ---------------------------------------------------------------------------
// helpers

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const millis = (iso: string) => Date.parse(iso)

/** When the demo started scheduling: every time printed is relative to it. */
let t0 = Date.now()
const since = (at: number) => `+${((at - t0) / 1000).toFixed(2)}s`
const print = (at: number, line: string) => console.log(`${since(at).padStart(7)}  ${line}`)

/** A short name for a job: its function path and what it is about, e.g. `exports:build(ada.csv)`. */
const nameOf = ({ args, functionPath }: Pick<JobJson, "functionPath" | "args">) => {
  const { accountId, format, name, postId, userId } = (args ?? {}) as Record<string, unknown>
  const about = name ?? postId ?? accountId ?? (format === undefined ? userId : `${userId}.${format}`)
  return about === undefined ? functionPath : `${functionPath}(${about})`
}

/** Nearest-rank percentile. */
const percentile = (values: ReadonlyArray<number>, p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN
}

const table = (rows: ReadonlyArray<ReadonlyArray<string>>) => {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join("  ").trimEnd()).join("\n")
}

// ---------------------------------------------------------------------------
// what the demo has seen of each job: one line per change of (attempt, state)

interface Seen {
  readonly name: string
  readonly attempt: number
  readonly state: State
  /** When each attempt was due: a retry's time is visible only while the job waits for it. */
  readonly dueOf: Map<number, number>
  /** startedAt − due time, per attempt. */
  readonly drifts: Map<number, number>
}

const seen = new Map<string, Seen>()

/** Remembers a job the demo has just scheduled, and prints it. */
const scheduled = (job: Pick<JobJson, "id" | "functionPath" | "args" | "scheduledFor">) => {
  const due = millis(job.scheduledFor)
  const name = nameOf(job)
  seen.set(job.id, { name, attempt: 0, state: "pending", dueOf: new Map([[1, due]]), drifts: new Map() })
  print(Date.now(), `${name.padEnd(40)}  scheduled for ${since(due)}`)
}

/** Records one observation of a job; returns the line to print, and when it happened, if it changed. */
const observe = (job: JobJson): { readonly at: number; readonly line: string } | undefined => {
  const before = seen.get(job.id)
  const entry: Seen = {
    name: nameOf(job),
    attempt: job.attempt,
    state: job.state,
    dueOf: before?.dueOf ?? new Map(),
    drifts: before?.drifts ?? new Map()
  }
  seen.set(job.id, entry)
  if (job.state === "pending") entry.dueOf.set(job.attempt + 1, millis(job.scheduledFor))
  else if (job.attempt > 0) entry.dueOf.set(job.attempt, millis(job.scheduledFor))
  if (before?.attempt === job.attempt && before.state === job.state) return undefined

  const name = entry.name.padEnd(40)
  if (job.attempt === 0) {
    return job.state === "canceled"
      ? { at: millis(job.completedAt!), line: `${name}  CANCELED before it was due (${since(millis(job.scheduledFor))})` }
      : { at: millis(job.createdAt), line: `${name}  scheduled for ${since(millis(job.scheduledFor))}` }
  }

  const startedAt = millis(job.startedAt!)
  const due = entry.dueOf.get(job.attempt)
  if (due !== undefined) entry.drifts.set(job.attempt, startedAt - due)
  const drift = due === undefined ? "drift ?" : `drift ${startedAt - due} ms`
  const head = `${name}  attempt ${job.attempt}`
  switch (job.state) {
    case "pending":
      return { at: startedAt, line: `${head}  failed  ${drift}  retry at ${since(millis(job.scheduledFor))}: ${job.lastError}` }
    case "deadLettered":
      return { at: startedAt, line: `${head}  DEAD-LETTERED  ${drift}  lastError: ${job.lastError}` }
    default:
      return { at: startedAt, line: `${head}  ${job.state}  ${drift}` }
  }
}

// ---------------------------------------------------------------------------
// the app's HTTP routes

const makeClient = (base: URL) => {
  const call = async <A>(method: string, route: string, body?: unknown): Promise<A> => {
    const response = await fetch(new URL(route, base), {
      method,
      ...(body === undefined ? {} : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
    })
    const text = await response.text()
    if (!response.ok) throw new Error(`${method} ${route}: HTTP ${response.status} ${text}`)
    return JSON.parse(text) as A
  }
  /** POSTs to a scheduling route (its body is the job's payload, give or take a delay) and prints the job. */
  const schedule = async (route: string, functionPath: string, args: Record<string, unknown>, extra = {}) => {
    const job = await call<{ readonly id: string; readonly scheduledFor: string }>("POST", route, { ...args, ...extra })
    scheduled({ ...job, functionPath, args })
    return job.id
  }
  return {
    exportIn: (delayMs: number, userId: string, format: "csv" | "json") =>
      schedule("/exports", "exports:build", { userId, format }, { delayMs }),
    publish: (postId: string, followUpMs: number) =>
      schedule(`/posts/${postId}/publish`, "posts:publish", { postId }, { followUpMs }),
    remindIn: (delayMs: number, userId: string, text: string) =>
      schedule("/reminders", "email:sendReminder", { userId, text }, { delayMs }),
    flaky: (name: string, attempts: number, succeedOn?: number) =>
      schedule("/flaky", "demo:flaky", { name, ...(succeedOn === undefined ? {} : { succeedOn }) }, { attempts }),
    /** Enqueues CRM syncs into the app's "crm-sync" workpool (two at once), each taking `ms`. */
    sync: async (accountIds: ReadonlyArray<string>, ms: number) => {
      const { ids } = await call<{ readonly ids: ReadonlyArray<string> }>("POST", "/syncs", { accountIds, ms })
      const now = new Date().toISOString()
      ids.forEach((id, i) => scheduled({ id, functionPath: "crm:syncAccount", args: { accountId: accountIds[i] }, scheduledFor: now }))
      return ids
    },
    cancelReminder: (id: string) => call<{ readonly _tag: string }>("DELETE", `/reminders/${id}`),
    jobs: async () => (await call<typeof Scheduler.JobPage.Encoded>("GET", "/jobs")).jobs
  }
}
type Client = ReturnType<typeof makeClient>

/** Polls `GET /jobs`, printing changes, until every job is finished; cancels the reminder on the way. */
const watch = async (client: Client, reminderId: string): Promise<ReadonlyArray<JobJson>> => {
  let reminderCanceled = false
  for (;;) {
    const jobs = await client.jobs()
    const changes = jobs.flatMap((job) => observe(job) ?? []).sort((a, b) => a.at - b.at)
    for (const { at, line } of changes) print(at, line)

    if (!reminderCanceled && Date.now() - t0 >= CANCEL_AT_MS) {
      const result = await client.cancelReminder(reminderId)
      print(Date.now(), `DELETE /reminders/${reminderId}: ${result._tag}`)
      reminderCanceled = true
    }
    if (reminderCanceled && jobs.every((job) => TERMINAL.includes(job.state))) return jobs
    await sleep(POLL_MS)
  }
}

// ---------------------------------------------------------------------------
// the demo

const run = async (client: Client): Promise<boolean> => {
  const leftover = await client.jobs()
  if (leftover.length > 0) throw new Error(`the store is not empty: ${leftover.length} jobs from an earlier run`)

  t0 = Date.now()
  console.log(`scheduling; the reminder is cancelled at +${(CANCEL_AT_MS / 1000).toFixed(2)}s\n`)
  const post = await client.publish("p-1", 2_000)
  const sync = await client.flaky("sync", 3, 3)
  const doomed = await client.flaky("doomed", 3)
  const reminder = await client.remindIn(2_500, "bob", "finish sign-up")
  const exports = [await client.exportIn(1_500, "ada", "csv")]
  for (const [i, delayMs] of [500, 1_000, 2_000, 2_500, 3_000].entries()) {
    exports.push(await client.exportIn(delayMs, `u-${i + 1}`, i % 2 === 0 ? "json" : "csv"))
  }
  const syncs = await client.sync(["acme", "globex", "initech", "umbrella", "hooli", "stark"], 600)

  console.log(`\nwatching GET /jobs every ${POLL_MS} ms (times: when the attempt started):\n`)
  const jobs = await watch(client, reminder)
  const byId = new Map(jobs.map((job) => [job.id, job]))
  const followUp = jobs.find((job) => job.functionPath === "notifications:notifySubscribers")

  const rows = jobs.map((job) => [
    nameOf(job),
    job.state,
    `${job.attempt}/${job.maxAttempts}`,
    [...(seen.get(job.id)?.drifts.values() ?? [])].join(", ") || "-",
    job.lastError ?? ""
  ])
  console.log(`\n${table([["job", "state", "attempts", "drift ms (pool: wait)", "last error"], ...rows])}`)
  const counts = new Map<State, number>()
  for (const job of jobs) counts.set(job.state, (counts.get(job.state) ?? 0) + 1)
  // a pool job waits for a slot by design: its wait is not drift
  const drifts = jobs.filter((job) => job.pool === null).flatMap((job) => [...(seen.get(job.id)?.drifts.values() ?? [])])
  const syncJobs = syncs.map((id) => byId.get(id)).filter((job) => job !== undefined)
  const syncSpans = syncJobs.filter((job) => job.startedAt != null && job.completedAt != null)
    .map((job) => [millis(job.startedAt!), millis(job.completedAt!)] as const)
  const mostAtOnce = Math.max(0, ...syncSpans.map(([start]) => syncSpans.filter(([s, e]) => s <= start && start < e).length))
  console.log(`workpool crm-sync (maxConcurrency 2): ${syncSpans.length} syncs, at most ${mostAtOnce} running at once`)
  console.log(`\n${jobs.length} jobs: ${[...counts].map(([state, n]) => `${n} ${state}`).join(", ")}`)
  console.log(
    `${drifts.length} attempts, drift (started − due): p50 ${percentile(drifts, 50)} ms, ` +
      `p90 ${percentile(drifts, 90)} ms, max ${Math.max(...drifts)} ms`
  )

  const problems: Array<string> = []
  const expect = (label: string, id: string | undefined, state: State, attempts: number) => {
    const job = id === undefined ? undefined : byId.get(id)
    if (job === undefined) problems.push(`${label}: not found`)
    else if (job.state !== state || job.attempt !== attempts) {
      problems.push(`${label}: expected ${state} after ${attempts} attempt(s), got ${job.state} after ${job.attempt}`)
    }
  }
  expect("post p-1", post, "success", 1)
  expect("follow-up of p-1", followUp?.id, "success", 1)
  expect("reminder", reminder, "canceled", 0)
  expect("flaky sync", sync, "success", 3)
  expect("flaky doomed", doomed, "deadLettered", 3)
  for (const id of exports) expect(`export ${id}`, id, "success", 1)
  for (const id of syncs) expect(`sync ${id}`, id, "success", 1)
  if (mostAtOnce !== 2) problems.push(`workpool: expected at most (and at some point exactly) 2 syncs at once, saw ${mostAtOnce}`)
  const startOrder = [...syncJobs].sort((a, b) => millis(a.startedAt!) - millis(b.startedAt!)).map((job) => job.id)
  if (startOrder.join() !== syncs.join()) problems.push("workpool: the syncs did not start in the order they were enqueued")
  if (byId.get(reminder)?.startedAt != null) problems.push("reminder: it started, though it was cancelled")
  if (followUp !== undefined) {
    const gap = millis(followUp.scheduledFor) - millis(byId.get(post)!.startedAt!)
    if (gap < 2_000) problems.push(`follow-up: due ${gap} ms after the post ran, expected 2000 or more`)
  }
  if (drifts.some((drift) => drift < 0)) problems.push("an attempt started before it was due")

  if (problems.length > 0) {
    console.log(`\nUNEXPECTED:\n${problems.map((problem) => `  - ${problem}`).join("\n")}`)
    return false
  }
  console.log(
    "\nas expected: the reminder was cancelled and never ran, the flaky job succeeded on attempt 3,\n" +
      "the failing job was dead-lettered after 3 attempts, the follow-up ran, every export succeeded,\n" +
      "and the workpool ran its six syncs two at a time, in order"
  )
  return true
}

const main = async (): Promise<number> => {
  const timeout = new Promise<never>((_, reject) => {
    setTimeout(() => reject(new Error(`timed out after ${DEADLINE_MS / 1000} s`)), DEADLINE_MS).unref()
  })
  const persist = await mkdtemp(path.join(os.tmpdir(), "lunora-demo-"))
  let worker: Awaited<ReturnType<typeof unstable_startWorker>> | undefined
  try {
    console.log("starting examples/worker.ts on local workerd ...")
    worker = await unstable_startWorker({
      config: "wrangler.jsonc",
      sendMetrics: false,
      dev: {
        remote: false,
        persist,
        server: { hostname: "127.0.0.1", port: 0 },
        inspector: false,
        watch: false,
        logLevel: "error"
      }
    })
    await Promise.race([worker.ready, timeout])
    const url = await worker.url
    console.log(`listening on ${url.origin}, storage in ${persist}\n`)
    return (await Promise.race([run(makeClient(url)), timeout])) ? 0 : 1
  } catch (error) {
    console.error(`\ndemo failed: ${error instanceof Error ? error.message : String(error)}`)
    const unfinished = [...seen.values()].filter((entry) => !TERMINAL.includes(entry.state))
    for (const { attempt, name, state } of unfinished) console.error(`  unfinished: ${name}, ${state} after ${attempt} attempt(s)`)
    return 1
  } finally {
    await worker?.dispose()
    await rm(persist, { recursive: true, force: true })
  }
}

process.exit(await main())
