/// <reference types="node" />
/**
 * Jobs survive a restart of local workerd. Local workerd forgets a scheduled
 * alarm when its process stops, while `storage.getAlarm()` still returns the
 * old, now overdue, time: the first call into the `SchedulerDO` after the
 * restart must arm it again, or no job ever runs.
 *
 * For each way workerd stops (SIGKILL of the workerd process that runs the
 * Worker; a clean `dispose()`), the test starts test/restart/worker.ts with
 * wrangler's `unstable_startWorker` (local mode, no account), schedules 20
 * jobs due in 2 s, restarts workerd on the same persisted storage before they
 * are due, waits until they are 1 s overdue, and makes one call into the
 * `SchedulerDO` (`GET /jobs`: all 20 must still be pending). It then watches
 * the handler's runs (`GET /runs`, kept in the Worker's isolate: it never
 * calls the `SchedulerDO`, so that one call must be enough) and expects every
 * job to have run once, and succeeded on its first attempt, within 1 s of the
 * call's answer (the call itself, which starts the object cold, is timed apart).
 *
 * The Worker is built from a snapshot of `src/` and `test/restart/` taken
 * when the file starts, in a temporary directory that also holds the storage:
 * wrangler's bundler watches its inputs whatever `dev.watch` says, and an edit
 * to the working tree would otherwise reload the Worker mid-test.
 */
import { execFileSync } from "node:child_process"
import { readdirSync, readlinkSync, realpathSync } from "node:fs"
import { mkdir, mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { snapshot as takeSnapshot } from "../../scripts/snapshot.js"

process.env.WRANGLER_SEND_METRICS = "false"
// no network: use miniflare's placeholder `Request.cf` rather than fetch it
process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false"
const { unstable_startWorker } = await import("wrangler")

type Worker = Awaited<ReturnType<typeof unstable_startWorker>>

/** A job as `GET /jobs` shows it; times are epoch milliseconds. */
interface JobView {
  readonly id: string
  readonly state: string
  readonly attempt: number
  readonly scheduledFor: number
  readonly startedAt: number | null
  readonly completedAt: number | null
  readonly lastError: string | null
}
/** A handler run as `GET /runs` shows it. */
interface Run {
  readonly id: string
  readonly attempt: number
}

const JOBS = 20
const DUE_IN_MS = 2_000
/** How long past their due time the jobs are left before the one call. */
const OVERDUE_MS = 1_000
/** Every job must have run and succeeded this soon after the one call answered. */
const RESUME_WITHIN_MS = 1_000
/** How long the runs are watched, so a slow resume is measured rather than cut off at the bound. */
const WATCH_MS = 3_000
/** The least time left before the jobs are due when the restart begins. */
const MIN_LEAD_MS = 500
const POLL_MS = 25
/** Generous: under a loaded machine (the whole suite on two cores) a cold call took almost 4 s. */
const CALL_TIMEOUT_MS = 15_000
const DISPOSE_TIMEOUT_MS = 10_000

let snapshot = ""
/** Workers started and not yet disposed: disposed after all tests, whatever happened. */
const live = new Set<Worker>()

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const start = async (persist: string): Promise<{ readonly worker: Worker; readonly url: URL }> => {
  const worker = await unstable_startWorker({
    config: join(snapshot, "test", "restart", "wrangler.jsonc"),
    sendMetrics: false,
    dev: {
      remote: false,
      persist,
      watch: false,
      inspector: false,
      server: { hostname: "127.0.0.1", port: 0 },
      logLevel: "warn"
    }
  })
  live.add(worker)
  await worker.ready
  return { worker, url: await worker.url }
}

const dispose = async (worker: Worker) => {
  live.delete(worker)
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    worker.dispose(),
    new Promise<void>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`dispose() took over ${DISPOSE_TIMEOUT_MS} ms`)), DISPOSE_TIMEOUT_MS)
    })
  ]).finally(() => clearTimeout(timer))
}

const call = async <A>(base: URL, method: "GET" | "POST", route: string, body?: unknown): Promise<A> => {
  let response: Response
  let text: string
  try {
    response = await fetch(new URL(route, base), {
      method,
      ...(body === undefined ? {} : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(CALL_TIMEOUT_MS)
    })
    text = await response.text()
  } catch (error) {
    throw new Error(`${method} ${route}: ${error instanceof Error ? error.message : String(error)}`, { cause: error })
  }
  if (!response.ok) throw new Error(`${method} ${route}: HTTP ${response.status} ${text}`)
  return JSON.parse(text) as A
}

// ---------------------------------------------------------------------------
// the workerd process that runs the Worker

interface Row {
  readonly pid: number
  readonly ppid: number
  readonly args: string
}

const processes = (): ReadonlyArray<Row> =>
  execFileSync("ps", ["-A", "-o", "pid=,ppid=,args="], { encoding: "utf8" }).split("\n").flatMap((line) => {
    const match = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line)
    return match === null ? [] : [{ pid: Number(match[1]), ppid: Number(match[2]), args: match[3]! }]
  })

const descendantsOf = (pid: number): ReadonlyArray<Row> => {
  const rows = processes()
  const tree = new Set([pid])
  for (let grew = true; grew;) {
    grew = false
    for (const row of rows) {
      if (!tree.has(row.pid) && tree.has(row.ppid)) {
        tree.add(row.pid)
        grew = true
      }
    }
  }
  return rows.filter((row) => row.pid !== pid && tree.has(row.pid))
}

/** Whether the process has a file open under `dir` (Linux: its `/proc/<pid>/fd` links). */
const holdsFileUnder = (pid: number, dir: string) => {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(`${dir}/`)
      } catch {
        return false
      }
    })
  } catch {
    return false
  }
}

/**
 * The workerd process this test process spawned for the Worker. Each started
 * worker runs two workerd processes (wrangler's proxy, and the runtime of the
 * Worker itself): the Worker's is the one holding the Durable Object's SQLite
 * files open under `persist`.
 */
const workerdOf = (persist: string): number => {
  const workerds = descendantsOf(process.pid).filter((row) => /workerd/.test(row.args))
  const owners = workerds.filter((row) => holdsFileUnder(row.pid, persist))
  if (owners.length !== 1) {
    throw new Error(
      `expected one workerd process holding ${persist} open, found ${owners.length}; ` +
        `workerd processes under ${process.pid}: ${workerds.map((row) => `${row.pid} (${row.args})`).join("; ") || "none"}`
    )
  }
  return owners[0]!.pid
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const killWorkerd = async (persist: string) => {
  const pid = workerdOf(persist)
  process.kill(pid, "SIGKILL")
  for (const deadline = Date.now() + 5_000; isAlive(pid);) {
    if (Date.now() > deadline) throw new Error(`workerd ${pid} still alive 5 s after SIGKILL`)
    await sleep(10)
  }
  return pid
}

// ---------------------------------------------------------------------------
// the test

type Restart = (worker: Worker, persist: string) => Promise<string>

const restarts: ReadonlyArray<readonly [string, Restart]> = [
  ["kill", async (worker, persist) => {
    const pid = await killWorkerd(persist)
    await dispose(worker)
    return `SIGKILL workerd ${pid}`
  }],
  ["clean stop", async (worker) => {
    await dispose(worker)
    return "dispose()"
  }]
]

const signed = (ms: number) => (ms < 0 ? `${ms}` : `+${ms}`)

const distinct = (runs: ReadonlyArray<Run>) => new Set(runs.map((run) => run.id)).size

/** What the jobs look like, for a failure message or the log: counts per state, and the distinct last errors. */
const describeJobs = (jobs: ReadonlyArray<JobView>) => {
  const states = new Map<string, number>()
  for (const job of jobs) states.set(job.state, (states.get(job.state) ?? 0) + 1)
  const errors = [...new Set(jobs.flatMap((job) => job.lastError ?? []))]
  return `states ${JSON.stringify(Object.fromEntries(states))}` +
    (errors.length === 0 ? "" : `, last errors: ${errors.map((error) => JSON.stringify(error.slice(0, 200))).join("; ")}`)
}

// each test takes about 8 s alone and up to 15 s beside the rest of the suite on two cores
describe("SchedulerDO across a workerd restart", { timeout: 30_000 }, () => {
  beforeAll(async () => {
    snapshot = realpathSync(await mkdtemp(join(tmpdir(), "lunora-restart-")))
    await takeSnapshot(snapshot, join("test", "restart"))
  })

  afterAll(async () => {
    await Promise.allSettled([...live].map(dispose))
    if (snapshot !== "") await rm(snapshot, { recursive: true, force: true })
  }, 30_000)

  for (const [variant, restart] of restarts) {
    it(`runs every overdue job within ${RESUME_WITHIN_MS} ms of the first call after a restart (${variant})`, async () => {
      const log = (line: string) => console.log(`[restart: ${variant}] ${line}`)
      const persist = join(snapshot, `state-${variant.replace(/\W+/g, "-")}`)
      await mkdir(persist)
      const jobsOf = (url: URL) => call<ReadonlyArray<JobView>>(url, "GET", "/jobs")
      const runsOf = (url: URL) => call<ReadonlyArray<Run>>(url, "GET", "/runs")

      const first = await start(persist)
      // warms the isolate and the SchedulerDO, so that scheduling is quick
      expect(await jobsOf(first.url), "a fresh store").toEqual([])
      const { ids, scheduledFor } = await call<{ readonly ids: ReadonlyArray<string>; readonly scheduledFor: number }>(
        first.url,
        "POST",
        "/schedule",
        { count: JOBS, delayMs: DUE_IN_MS }
      )
      expect(new Set(ids).size).toBe(JOBS)
      const lead = scheduledFor - Date.now()
      expect(lead, "harness: the restart must begin well before the jobs are due").toBeGreaterThan(MIN_LEAD_MS)

      const stoppingAt = Date.now()
      const how = await restart(first.worker, persist)
      const stoppedAt = Date.now()
      const second = await start(persist)
      log(
        `${how} ${lead} ms before the jobs were due; stopped in ${stoppedAt - stoppingAt} ms, ` +
          `started again in ${Date.now() - stoppedAt} ms`
      )

      await sleep(Math.max(0, scheduledFor + OVERDUE_MS - Date.now()))
      const calledAt = Date.now()
      const before = await jobsOf(second.url)
      const answeredAt = Date.now()
      expect(before.map((job) => job.id).sort(), "the jobs scheduled before the restart").toEqual([...ids].sort())
      expect(
        before.filter((job) => job.state !== "pending" || job.attempt !== 0),
        "harness: no job may have run before the one call"
      ).toEqual([])

      const deadline = answeredAt + WATCH_MS
      let runs = await runsOf(second.url)
      while (distinct(runs) < JOBS && Date.now() < deadline) {
        await sleep(POLL_MS)
        runs = await runsOf(second.url)
      }
      const ranAt = distinct(runs) === JOBS ? Date.now() : undefined
      let after = await jobsOf(second.url)
      while (ranAt !== undefined && !after.every((job) => job.state === "success") && Date.now() < deadline) {
        await sleep(POLL_MS)
        after = await jobsOf(second.url)
      }
      const lastCompletion = Math.max(...after.map((job) => job.completedAt ?? Infinity))
      const resumedMs = lastCompletion - answeredAt
      const firstStart = Math.min(...after.map((job) => job.startedAt ?? Infinity))
      log(
        `the one call came ${calledAt - scheduledFor} ms after the jobs were due and answered in ` +
          `${answeredAt - calledAt} ms; ` +
          (ranAt === undefined
            ? `${distinct(runs)} of ${JOBS} jobs ran in the ${WATCH_MS} ms after it; ${describeJobs(after)}`
            : Number.isFinite(resumedMs)
            ? `RESUMED in ${resumedMs} ms: the last of ${JOBS} jobs completed ${resumedMs} ms after the answer ` +
              `(the first started ${signed(firstStart - answeredAt)} ms from it); ${describeJobs(after)}`
            : `all ${JOBS} ran within ${ranAt - answeredAt} ms but not all completed; ${describeJobs(after)}`)
      )

      expect(distinct(runs), `jobs run in the ${WATCH_MS} ms after the one call (${describeJobs(after)})`).toBe(JOBS)
      expect(runs.map((run) => `${run.id} attempt ${run.attempt}`).sort(), "each job ran once, on attempt 1")
        .toEqual(ids.map((id) => `${id} attempt 1`).sort())
      expect(after.map((job) => job.id).sort(), "no job lost").toEqual([...ids].sort())
      expect(
        after.filter((job) => job.state !== "success" || job.attempt !== 1),
        `every job succeeded on attempt 1 (${describeJobs(after)})`
      ).toEqual([])
      expect(resumedMs, "ms from the answer of the one call to the last completion").toBeLessThanOrEqual(
        RESUME_WITHIN_MS
      )
      await dispose(second.worker)
    })
  }
})
