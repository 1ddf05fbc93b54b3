/// <reference types="node" />
/**
 * The operator commands of `lunora-scheduler` (`jobs`, `crons ls|trigger`,
 * `pools`, `stats`) against a real Worker: test/admin/worker.ts on local
 * workerd, started once with wrangler's `unstable_startWorker` (local mode,
 * no account) from a snapshot of `src/` and `test/admin/` (an edit to the
 * working tree would otherwise reload it mid-run). The command line runs in
 * this process, through `Cli.run`, its Console captured; it calls the admin
 * API over real HTTP with `fetch`. Each test seeds its own instance through
 * the Worker's `POST /seed`.
 */
import { Effect } from "effect"
import * as Http from "node:http"
import { createServer } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ADMIN_TOKEN, type SeedRequest, startAdminWorker } from "./support/adminWorker.js"
import { type Ran, runCli } from "./support/cli.js"

// the commands fall back to these: none from the shell that runs the tests
delete process.env.LUNORA_SCHEDULER_URL
delete process.env.LUNORA_SCHEDULER_TOKEN

const TOKEN = ADMIN_TOKEN

let worker: Awaited<ReturnType<typeof startAdminWorker>> | undefined
let origin = ""

beforeAll(async () => {
  worker = await startAdminWorker()
  origin = worker.origin
}, 60_000)

afterAll(async () => {
  await worker?.dispose()
}, 30_000)

/** Runs `lunora-scheduler ...args` in this process: its exit code and what it printed. */
const cli = (...args: ReadonlyArray<string>): Promise<Ran> => Effect.runPromise(runCli(args))

/** `cli` with the Worker's `--url` and the admin `--token`. */
const admin = (...args: ReadonlyArray<string>) => cli(...args, "--url", origin, "--token", TOKEN)

/** Like `admin`, expecting exit 0 and nothing on stderr. */
const ok = async (...args: ReadonlyArray<string>) => {
  const ran = await admin(...args)
  expect({ code: ran.code, stderr: ran.stderr }, `lunora-scheduler ${args.join(" ")}`).toEqual({ code: 0, stderr: "" })
  return ran.stdout
}

/** Like `ok` with `--json`: the parsed stdout. */
const json = async <A = any>(...args: ReadonlyArray<string>): Promise<A> => JSON.parse(await ok(...args, "--json")) as A

/** Creates data in `instance` through the Worker's `POST /seed` (dead letters are dead-lettered when it answers). */
const seed = (body: SeedRequest) => worker!.seed(body)

/** The rows of a table after its header, split on runs of two or more spaces. */
const rows = (table: string) =>
  table.trimEnd().split("\n").slice(1).map((line) => line.split(/ {2,}/))

/** The `key: value` lines as a record. */
const fieldsOf = (text: string) =>
  Object.fromEntries(text.trimEnd().split("\n").map((line) => {
    const at = line.indexOf(":")
    return [line.slice(0, at), line.slice(at + 1).trim()]
  }))

/** A local port where nothing listens. */
const closedPort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

describe("lunora-scheduler jobs", { timeout: 30_000 }, () => {
  it("ls prints a table of the jobs, filtered by --state and --function, and --json the encoded JobPage", async () => {
    const instance = "jobs-ls"
    const { dead, pending } = await seed({ instance, pending: 3, dead: 1 })

    const table = await ok("jobs", "ls", "--instance", instance)
    expect(table.split("\n")[0]).toMatch(/^ID +STATE +FUNCTION +SCHEDULED FOR +ATTEMPT +POOL$/)
    expect(rows(table).map(([id, state, functionPath, , attempt, pool]) => [id, state, functionPath, attempt, pool])).toEqual([
      ...pending.map((id) => [id, "pending", "admin:echo", "0/5", "-"]),
      [dead[0], "deadLettered", "admin:fail", "1/1", "-"]
    ])
    expect(rows(table)[0]![3]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)

    const page = await json("jobs", "ls", "--instance", instance, "--state", "pending")
    expect(page.cursor).toBeNull()
    expect(page.jobs.map((job: { id: string }) => job.id)).toEqual(pending)
    expect(page.jobs[0]).toMatchObject({ functionPath: "admin:echo", state: "pending", args: { text: "n0" }, pool: null })
    expect(typeof page.jobs[0].scheduledFor).toBe("string")

    expect(rows(await ok("jobs", "ls", "--instance", instance, "--function", "admin:fail")).map((row) => row[0]))
      .toEqual(dead)
    expect(await ok("jobs", "ls", "--instance", instance, "--state", "canceled")).toBe("no jobs\n")
  })

  it("ls --all follows the cursors across pages, a progress line per page on stderr; without it, one page and a hint", async () => {
    const instance = "jobs-paging"
    const { pending } = await seed({ instance, pending: 25 })

    const all = await admin("jobs", "ls", "--instance", instance, "--limit", "10", "--all", "--json")
    expect(all.code).toBe(0)
    expect(all.stderr).toBe(
      "page 1: 10 jobs (10 so far)\npage 2: 10 jobs (20 so far)\npage 3: 5 jobs (25 so far)\n"
    )
    const page = JSON.parse(all.stdout)
    expect(page.cursor).toBeNull()
    expect(page.jobs.map((job: { id: string }) => job.id)).toEqual(pending)

    const table = await admin("jobs", "ls", "--instance", instance, "--limit", "10", "--all", "--state", "pending")
    expect(table.code).toBe(0)
    expect(rows(table.stdout).map((row) => row[0])).toEqual(pending)
    expect(table.stderr.split("\n").filter(Boolean)).toHaveLength(3)

    const one = await admin("jobs", "ls", "--instance", instance, "--limit", "10")
    expect(one.code).toBe(0)
    expect(rows(one.stdout).map((row) => row[0])).toEqual(pending.slice(0, 10))
    const cursor = /^more jobs: --cursor (\S+) \(or --all\)\n$/.exec(one.stderr)?.[1]
    expect(cursor).toBeDefined()
    const next = await json("jobs", "ls", "--instance", instance, "--limit", "10", "--cursor", cursor!)
    expect(next.jobs.map((job: { id: string }) => job.id)).toEqual(pending.slice(10, 20))
  })

  it("get, cancel and replay print key: value lines and --json the encoded answer, with exit 3 and 5 on their errors", async () => {
    const instance = "jobs-single"
    const { dead, pending } = await seed({ instance, pending: 2, dead: 2 })

    const shown = fieldsOf(await ok("jobs", "get", pending[0]!, "--instance", instance))
    expect(shown).toMatchObject({
      id: pending[0],
      function: "admin:echo",
      state: "pending",
      attempt: "0 of 5",
      pool: "-",
      "last error": "-",
      args: "{\"text\":\"n0\"}",
      result: "-"
    })
    expect(await json("jobs", "get", dead[0]!, "--instance", instance)).toMatchObject({
      id: dead[0],
      state: "deadLettered",
      attempt: 1,
      maxAttempts: 1,
      lastError: expect.stringContaining("always fails")
    })

    expect(fieldsOf(await ok("jobs", "cancel", pending[0]!, "--instance", instance)))
      .toEqual({ outcome: "canceled", id: pending[0], "children canceled": "0" })
    expect(await json("jobs", "cancel", pending[0]!, "--instance", instance))
      .toEqual({ _tag: "AlreadyFinished", id: pending[0], state: "canceled" })
    expect(await json("jobs", "cancel", pending[1]!, "--instance", instance))
      .toEqual({ _tag: "Canceled", id: pending[1], children: 0 })

    const notReplayable = await admin("jobs", "replay", pending[0]!, "--instance", instance)
    expect(notReplayable).toMatchObject({ code: 5, stdout: "" })
    expect(notReplayable.stderr).toMatch(new RegExp(`^lunora-scheduler: JobNotReplayable: job ${pending[0]} cannot be replayed: .+\\n$`))

    const replayed = fieldsOf(await ok("jobs", "replay", dead[0]!, "--instance", instance))
    expect(replayed).toMatchObject({ id: dead[0], function: "admin:fail" })
    expect(["pending", "inProgress", "deadLettered"]).toContain(replayed.state)
    const again = await json("jobs", "replay", dead[1]!, "--instance", instance)
    expect(again).toMatchObject({ id: dead[1], functionPath: "admin:fail", maxAttempts: 1 })
    expect(["pending", "inProgress", "deadLettered"]).toContain(again.state)

    const missing = await admin("jobs", "get", "job_0_000000000000000000", "--instance", instance)
    expect(missing).toEqual({
      code: 3,
      stdout: "",
      stderr: "lunora-scheduler: JobNotFound: job job_0_000000000000000000 not found\n"
    })
    expect((await admin("jobs", "cancel", "job_0_000000000000000000", "--instance", instance)).code).toBe(3)
  })

  it("purge without --id purges in rounds of --limit until a round purges none, printing the count so far", async () => {
    const instance = "jobs-purge"
    const { dead, pending } = await seed({ instance, pending: 1, dead: 6 })

    expect(await json("jobs", "purge", "--instance", instance, "--id", dead[0]!, "--id", dead[1]!)).toEqual({ purged: 2 })
    expect((await admin("jobs", "get", dead[0]!, "--instance", instance)).code).toBe(3)

    const rounds = await admin("jobs", "purge", "--instance", instance, "--limit", "3", "--function", "admin:echo")
    expect(rounds).toEqual({ code: 0, stdout: "purged 0 dead letters\n", stderr: "" })

    const purged = await admin("jobs", "purge", "--instance", instance, "--limit", "3")
    expect(purged).toEqual({ code: 0, stdout: "purged 4 dead letters\n", stderr: "purged 3 so far\npurged 4 so far\n" })
    expect(rows(await ok("jobs", "ls", "--instance", instance)).map((row) => row[0])).toEqual(pending)
  })
})

describe("lunora-scheduler crons ls and trigger", { timeout: 30_000 }, () => {
  it("lists the crons as a table and --json, triggers one, and exits 5 while its run is live, 3 for an unknown cron", async () => {
    const instance = "crons"
    await seed({ instance, crons: true })

    const table = await ok("crons", "ls", "--instance", instance)
    expect(table.split("\n")[0]).toMatch(/^NAME +SCHEDULE +FUNCTION +NEXT RUN +LAST RUN +LAST OUTCOME +LAST STATE$/)
    const byName = rows(table).sort((a, b) => a[0]!.localeCompare(b[0]!))
    expect(byName.map(([name, schedule, functionPath, , lastRun, lastOutcome, lastState]) =>
      [name, schedule, functionPath, lastRun, lastOutcome, lastState]
    )).toEqual([
      ["daily echo", "0 9 * * * (UTC)", "admin:echo", "-", "-", "-"],
      ["slow hourly", "every 1h", "admin:slow", "-", "-", "-"]
    ])
    expect(byName[0]![3]).toMatch(/T09:00:00\.000Z$/)

    const listed = await json<ReadonlyArray<{ name: string; schedule: unknown; lastJobId: unknown }>>("crons", "ls", "--instance", instance)
    expect(listed.map((cron) => cron.name).sort()).toEqual(["daily echo", "slow hourly"])
    expect(listed.find((cron) => cron.name === "slow hourly")).toMatchObject({ schedule: { _tag: "Interval", ms: 3_600_000 }, lastJobId: null })

    const triggered = await json<{ id: string }>("crons", "trigger", "slow hourly", "--instance", instance)
    expect(triggered.id).toMatch(/^job_/)
    const again = await admin("crons", "trigger", "slow hourly", "--instance", instance)
    expect(again.code).toBe(5)
    expect(again.stderr).toBe(
      `lunora-scheduler: CronRunInProgress: cron "slow hourly" was not triggered: its run ${triggered.id} is still pending or in progress\n`
    )
    expect(fieldsOf(await ok("crons", "trigger", "daily echo", "--instance", instance))).toMatchObject({ cron: "daily echo" })

    expect(await admin("crons", "trigger", "nope", "--instance", instance)).toEqual({
      code: 3,
      stdout: "",
      stderr: "lunora-scheduler: CronNotFound: no cron named \"nope\" is declared\n"
    })
  })
})

describe("lunora-scheduler pools", { timeout: 30_000 }, () => {
  it("lists, shows, resizes, resumes and pauses a pool, with exit 3 for an unknown pool and 2 for a bad size", async () => {
    const instance = "pools"
    await seed({ instance, pool: { name: "exports", maxConcurrency: 2, paused: true, queued: 3 } })

    const table = await ok("pools", "ls", "--instance", instance)
    expect(table).toMatch(/^NAME +CAP +IN FLIGHT +QUEUED +PAUSED +DEAD LETTERS\n/)
    expect(rows(table)).toEqual([["exports", "2", "0", "3", "yes", "0"]])
    expect(await json("pools", "ls", "--instance", instance)).toEqual([
      expect.objectContaining({ name: "exports", maxConcurrency: 2, paused: true, inFlight: 0, queued: 3, deadLettered: 0 })
    ])

    expect(fieldsOf(await ok("pools", "status", "exports", "--instance", instance))).toMatchObject({
      name: "exports",
      "max concurrency": "2",
      paused: "yes",
      queued: "3"
    })
    expect(await json("pools", "status", "exports", "--instance", instance))
      .toMatchObject({ name: "exports", maxConcurrency: 2, paused: true, queued: 3, oldestQueuedAt: expect.any(String) })
    expect(fieldsOf(await ok("pools", "resize", "exports", "4", "--instance", instance)))
      .toMatchObject({ "max concurrency": "4", paused: "yes" })
    expect(await json("pools", "resize", "exports", "5", "--instance", instance))
      .toMatchObject({ name: "exports", maxConcurrency: 5, paused: true })
    expect(fieldsOf(await ok("pools", "resume", "exports", "--instance", instance)))
      .toMatchObject({ paused: "no", "max concurrency": "5" })
    expect(fieldsOf(await ok("pools", "pause", "exports", "--instance", instance))).toMatchObject({ paused: "yes" })

    expect(await admin("pools", "status", "ghost", "--instance", instance)).toEqual({
      code: 3,
      stdout: "",
      stderr: "lunora-scheduler: PoolNotFound: no workpool named \"ghost\": declare it with a maxConcurrency first\n"
    })
    const refused = await admin("pools", "resize", "exports", "0", "--instance", instance)
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(/^lunora-scheduler: InvalidInput: .*maxConcurrency must be an integer from 1 to 1000\n$/)
  })

  it("cancel-queued cancels a paused pool's queued jobs and prints how many, --json { canceled }, exit 3 for an unknown pool", async () => {
    const instance = "pools-cancel"
    const { pooled } = await seed({ instance, pool: { name: "backlog", maxConcurrency: 1, paused: true, queued: 4 } })
    expect(pooled).toHaveLength(4)
    expect(await ok("pools", "cancel-queued", "backlog", "--instance", instance)).toBe("canceled 4 queued jobs of backlog\n")
    expect(await json("pools", "status", "backlog", "--instance", instance)).toMatchObject({ queued: 0, inFlight: 0 })
    for (const id of pooled) {
      expect(await json("jobs", "get", id, "--instance", instance)).toMatchObject({ id, state: "canceled" })
    }
    expect(await json("pools", "cancel-queued", "backlog", "--instance", instance)).toEqual({ canceled: 0 })
    expect((await admin("pools", "cancel-queued", "ghost", "--instance", instance)).code).toBe(3)
  })
})

describe("lunora-scheduler stats", { timeout: 30_000 }, () => {
  it("counts the jobs of the instance \"default\" without --instance, as key: value lines and --json", async () => {
    await seed({ instance: "default", pending: 2, pool: { name: "counted", maxConcurrency: 1, paused: true, queued: 0 } })
    expect(fieldsOf(await ok("stats"))).toEqual({
      instance: "default",
      pending: "2",
      "in progress": "0",
      success: "0",
      failed: "0",
      canceled: "0",
      "dead-lettered": "0",
      crons: "0",
      pools: "1"
    })
    expect(await json("stats", "--instance", "default")).toEqual({
      instance: "default",
      jobs: { pending: 2, inProgress: 0, success: 0, failed: 0, canceled: 0, deadLettered: 0 },
      crons: 0,
      pools: 1
    })
  })
})

describe("lunora-scheduler operator exit codes", { timeout: 30_000 }, () => {
  it("exits 4 with a wrong token, never printing it", async () => {
    const wrong = await cli("stats", "--url", origin, "--token", "not-the-token")
    expect(wrong).toEqual({ code: 4, stdout: "", stderr: "lunora-scheduler: Unauthorized: the admin token is missing or wrong\n" })
    expect((await cli("jobs", "get", "job_0_000000000000000000", "--url", origin, "--token", "not-the-token")).code).toBe(4)
  })

  it("exits 2 on a bad --limit, a missing token or a --url that is not http(s), before sending anything", async () => {
    for (const limit of ["0", "1001", "abc"]) {
      const ran = await admin("jobs", "ls", "--limit", limit)
      expect([limit, ran.code, ran.stdout]).toEqual([limit, 2, ""])
      expect(ran.stderr).not.toBe("")
    }
    expect((await admin("jobs", "purge", "--limit", "0")).code).toBe(2)
    expect((await admin("jobs", "ls", "--state", "sleeping")).code).toBe(2)
    const missing = await cli("stats", "--url", origin)
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain("--token")
    expect(await cli("stats", "--url", "ftp://example.com", "--token", TOKEN)).toEqual({
      code: 2,
      stdout: "",
      stderr: "lunora-scheduler: InvalidInput: --url must be an http(s) URL, got \"ftp://example.com\"\n"
    })
    expect((await admin("jobs")).code).toBe(2)
  })

  it("exits 6 when nothing listens at --url", async () => {
    const port = await closedPort()
    const ran = await cli("stats", "--url", `http://127.0.0.1:${port}`, "--token", TOKEN)
    expect(ran.code).toBe(6)
    expect(ran.stdout).toBe("")
    expect(ran.stderr).toMatch(new RegExp(`^lunora-scheduler: WorkerUnreachable: cannot reach http://127\\.0\\.0\\.1:${port}: .+\\n$`))
  })

  it("exits 6 when no answer comes within --timeout, and 2 on a --timeout that is not a positive duration", async () => {
    // a server that takes the request and never answers it
    const silent = Http.createServer(() => undefined)
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve))
    const port = (silent.address() as { readonly port: number }).port
    try {
      const started = Date.now()
      const ran = await cli("stats", "--url", `http://127.0.0.1:${port}`, "--token", TOKEN, "--timeout", "300 millis")
      expect(Date.now() - started).toBeLessThan(10_000)
      expect(ran).toEqual({
        code: 6,
        stdout: "",
        stderr: `lunora-scheduler: WorkerUnreachable: cannot reach http://127.0.0.1:${port}: no answer within 300ms\n`
      })
    } finally {
      silent.closeAllConnections()
      await new Promise((resolve) => silent.close(resolve))
    }
    for (const timeout of ["0 seconds", "soon", "-1 seconds"]) {
      const ran = await admin("stats", "--timeout", timeout)
      expect([timeout, ran.code, ran.stdout]).toEqual([timeout, 2, ""])
    }
    expect(await json("stats", "--instance", "timed", "--timeout", "10 seconds")).toMatchObject({ instance: "timed" })
  })

  it("exits 6 when the Worker at --url does not serve the admin API", async () => {
    // under /elsewhere the Worker answers every route 404 "not found", not the admin API's JobNotFound
    const ran = await cli("jobs", "get", "x", "--url", `${origin}/elsewhere`, "--token", TOKEN)
    expect(ran.code).toBe(6)
    expect(ran.stderr).toMatch(/^lunora-scheduler: UnexpectedResponse: /)
  })

  it("takes the URL and the token from LUNORA_SCHEDULER_URL and LUNORA_SCHEDULER_TOKEN when the options are absent", async () => {
    try {
      process.env.LUNORA_SCHEDULER_URL = origin
      process.env.LUNORA_SCHEDULER_TOKEN = TOKEN
      const ran = await cli("stats", "--instance", "from-env", "--json")
      expect(ran).toMatchObject({ code: 0, stderr: "" })
      expect(JSON.parse(ran.stdout)).toMatchObject({ instance: "from-env", jobs: { pending: 0 } })
      // an option wins over the environment
      expect((await cli("stats", "--token", "not-the-token")).code).toBe(4)
      process.env.LUNORA_SCHEDULER_TOKEN = "not-the-token"
      expect((await cli("stats")).code).toBe(4)
    } finally {
      delete process.env.LUNORA_SCHEDULER_URL
      delete process.env.LUNORA_SCHEDULER_TOKEN
    }
  })
})
