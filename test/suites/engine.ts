/**
 * The rules of DESIGN.md "Semantics", tested on the engine over every store.
 */
import { describe, expect, it } from "vitest"
import * as CronSpec from "../../src/CronSpec.js"
import * as CronEngine from "../../src/internal/engine/crons.js"
import * as Engine from "../../src/internal/engine/engine.js"
import * as PoolEngine from "../../src/internal/engine/pools.js"
import type { WithStore } from "./store.js"

const config: Engine.EngineConfig = { leaseMs: 60_000, retentionMs: 3_600_000 }

export const newJob = (id: string, overrides: Partial<Engine.NewJob> = {}): Engine.NewJob => ({
  id,
  functionPath: "test:job",
  args: "{\"n\":1}",
  runAt: 1_000,
  retryDelaysMs: [10_000, 20_000],
  deadLetter: true,
  key: null,
  shardKey: null,
  pool: null,
  ...overrides
})

const claimedIds = (result: Engine.PollResult) => result.claimed.map((job) => job.id)

export const engineConformance = (name: string, withStore: WithStore) =>
  describe(`Engine: ${name}`, () => {
    it("runs nothing before its time, then leases due jobs in time order", () =>
      withStore((store) => {
        Engine.scheduleMany(store, config, 0, [newJob("b", { runAt: 2_000 }), newJob("a", { runAt: 1_000 }), newJob("c", { runAt: 2_000 })])
        expect(Engine.poll(store, config, 999, 10).claimed).toEqual([])
        expect(Engine.nextWakeAt(store)).toBe(1_000)
        const first = Engine.poll(store, config, 2_000, 2)
        expect(claimedIds(first)).toEqual(["a", "b"])
        expect(first.claimed[0]).toMatchObject({ state: "inProgress", attempt: 1, startedAt: 2_000, runAt: 62_000 })
        expect(store.get("a")?.state).toBe("inProgress")
        expect(claimedIds(Engine.poll(store, config, 2_000, 10))).toEqual(["c"])
      }))

    it("dedupes on a key while the job is live, and frees the key when it ends", () =>
      withStore((store) => {
        const first = Engine.schedule(store, config, 0, newJob("a", { key: "k" }))
        expect(first._tag).toBe("Created")
        const again = Engine.schedule(store, config, 0, newJob("b", { key: "k", runAt: 9_000 }))
        expect(again).toMatchObject({ _tag: "Existing", job: { id: "a", runAt: 1_000 } })
        expect(store.get("b")).toBeUndefined()
        const batch = Engine.scheduleMany(store, config, 0, [newJob("c", { key: "k2" }), newJob("d", { key: "k2" })])
        expect(batch.map((r) => [r._tag, r.job.id])).toEqual([["Created", "c"], ["Existing", "c"]])
        Engine.poll(store, config, 1_000, 10)
        expect(Engine.schedule(store, config, 1_000, newJob("e", { key: "k" }))._tag).toBe("Existing")
        Engine.complete(store, config, 1_500, "a", 1, null)
        expect(Engine.schedule(store, config, 1_500, newJob("f", { key: "k" }))).toMatchObject({ _tag: "Created", job: { id: "f" } })
      }))

    it("completes an attempt once; a stale report is ignored", () =>
      withStore((store) => {
        Engine.schedule(store, config, 0, newJob("a"))
        Engine.poll(store, config, 1_000, 10)
        expect(Engine.complete(store, config, 1_200, "a", 2, null)._tag).toBe("Stale")
        const done = Engine.complete(store, config, 1_200, "a", 1, "\"ok\"")
        expect(done).toMatchObject({ _tag: "Recorded", job: { state: "success", completedAt: 1_200, result: "\"ok\"" } })
        expect(Engine.complete(store, config, 1_300, "a", 1, null)._tag).toBe("Stale")
        expect(Engine.fail(store, config, 1_300, "a", 1, "late", true)._tag).toBe("Stale")
        expect(store.get("a")?.state).toBe("success")
      }))

    it("retries on the stored delays, then dead-letters with the last error", () =>
      withStore((store) => {
        Engine.schedule(store, config, 0, newJob("a"))
        Engine.poll(store, config, 1_000, 10)
        expect(Engine.fail(store, config, 1_100, "a", 1, "e1", true).job).toMatchObject({
          state: "pending",
          runAt: 11_100,
          scheduledFor: 11_100,
          lastError: "e1"
        })
        expect(Engine.poll(store, config, 11_099, 10).claimed).toEqual([])
        expect(Engine.poll(store, config, 11_100, 10).claimed[0]?.attempt).toBe(2)
        expect(Engine.fail(store, config, 11_200, "a", 2, "e2", true).job).toMatchObject({ state: "pending", runAt: 31_200 })
        Engine.poll(store, config, 31_200, 10)
        expect(Engine.fail(store, config, 31_300, "a", 3, "e3", true).job).toMatchObject({
          state: "deadLettered",
          attempt: 3,
          lastError: "e3",
          completedAt: 31_300
        })
      }))

    it("ends a job failed instead when it has no dead letter, and at once when not retryable", () =>
      withStore((store) => {
        Engine.scheduleMany(store, config, 0, [newJob("a", { retryDelaysMs: [], deadLetter: false }), newJob("b")])
        Engine.poll(store, config, 1_000, 10)
        expect(Engine.fail(store, config, 1_000, "a", 1, "boom", true).job?.state).toBe("failed")
        expect(Engine.fail(store, config, 1_000, "b", 1, "unknown function", false).job).toMatchObject({
          state: "deadLettered",
          attempt: 1,
          lastError: "unknown function"
        })
      }))

    it("counts an expired lease as a failed attempt", () =>
      withStore((store) => {
        Engine.schedule(store, config, 0, newJob("a"))
        Engine.poll(store, config, 1_000, 10)
        expect(Engine.nextWakeAt(store)).toBe(61_000)
        expect(Engine.poll(store, config, 60_999, 10).expired).toEqual([])
        const result = Engine.poll(store, config, 61_000, 10)
        expect(result.expired[0]).toMatchObject({ id: "a", state: "pending", runAt: 71_000 })
        expect(result.expired[0]?.lastError).toMatch(/lease expired/)
        expect(Engine.complete(store, config, 61_001, "a", 1, null)._tag).toBe("Stale")
      }))

    it("cancels pending jobs only, and says why not otherwise", () =>
      withStore((store) => {
        Engine.scheduleMany(store, config, 0, [newJob("a"), newJob("b"), newJob("c", { runAt: 5_000 })])
        Engine.poll(store, config, 1_000, 2)
        Engine.complete(store, config, 1_000, "b", 1, null)
        expect(Engine.cancel(store, config, 1_000, "c")).toMatchObject({ _tag: "Canceled", job: { state: "canceled" } })
        expect(Engine.cancel(store, config, 1_000, "a")._tag).toBe("TooLate")
        expect(Engine.cancel(store, config, 1_000, "b")).toMatchObject({ _tag: "AlreadyFinished", job: { state: "success" } })
        expect(Engine.cancel(store, config, 1_000, "c")).toMatchObject({ _tag: "AlreadyFinished", job: { state: "canceled" } })
        expect(Engine.cancel(store, config, 1_000, "zz")._tag).toBe("NotFound")
        expect(Engine.poll(store, config, 100_000, 10).claimed).toEqual([])
      }))

    it("cancel of a running job cancels its pending children and what it schedules until its attempt ends; it does not retry", () =>
      withStore((store) => {
        Engine.schedule(store, config, 0, newJob("parent"))
        Engine.schedule(store, config, 0, newJob("other"))
        expect(claimedIds(Engine.poll(store, config, 1_000, 10))).toEqual(["parent", "other"])
        Engine.scheduleMany(store, config, 1_100, [
          newJob("c1", { parentId: "parent", runAt: 50_000 }),
          newJob("c2", { parentId: "parent", runAt: 50_000 }),
          newJob("unrelated", { parentId: "other", runAt: 50_000 })
        ])
        const result = Engine.cancel(store, config, 1_200, "parent")
        expect(result).toMatchObject({ _tag: "TooLate", job: { state: "inProgress", cancelRequested: true }, children: 2 })
        expect([store.get("c1")?.state, store.get("c2")?.state, store.get("unrelated")?.state]).toEqual(["canceled", "canceled", "pending"])
        // scheduled by the canceled handler before its attempt ends: stored, and canceled at once
        const late = Engine.schedule(store, config, 1_300, newJob("c3", { parentId: "parent", runAt: 50_000 }))
        expect(late).toMatchObject({ _tag: "Created", job: { state: "canceled", parentId: "parent" } })
        // its attempt fails: canceled, not retried, with the error kept
        Engine.fail(store, config, 1_400, "parent", 1, "boom", true)
        expect(store.get("parent")).toMatchObject({ state: "canceled", lastError: "boom" })
        expect(Engine.poll(store, config, 100_000, 10).claimed.map((job) => job.id)).toEqual(["unrelated"])
      }))

    it("a running job canceled and then succeeding ends a success; its children stay canceled", () =>
      withStore((store) => {
        Engine.schedule(store, config, 0, newJob("parent"))
        Engine.poll(store, config, 1_000, 10)
        Engine.schedule(store, config, 1_100, newJob("child", { parentId: "parent", runAt: 5_000 }))
        expect(Engine.cancel(store, config, 1_200, "parent")).toMatchObject({ _tag: "TooLate", children: 1 })
        expect(Engine.complete(store, config, 1_300, "parent", 1, null)).toMatchObject({ job: { state: "success" } })
        expect(Engine.poll(store, config, 5_000, 10).claimed).toEqual([])
        expect(store.get("child")?.state).toBe("canceled")
      }))

    it("cancel of a pending job cancels its pending descendants, scheduled by earlier attempts", () =>
      withStore((store) => {
        Engine.schedule(store, config, 0, newJob("parent"))
        Engine.poll(store, config, 1_000, 10)
        Engine.scheduleMany(store, config, 1_100, [
          newJob("child", { parentId: "parent", runAt: 90_000 }),
          newJob("grandchild", { parentId: "child", runAt: 90_000 }),
          newJob("done", { parentId: "parent", runAt: 1_100 })
        ])
        Engine.fail(store, config, 1_200, "parent", 1, "retry me", true)
        expect(store.get("parent")?.state).toBe("pending")
        expect(Engine.cancel(store, config, 1_300, "parent")).toMatchObject({ _tag: "Canceled", children: 3 })
        expect(["child", "grandchild", "done"].map((id) => store.get(id)?.state)).toEqual(["canceled", "canceled", "canceled"])
        expect(store.pendingChildren("parent")).toEqual([])
      }))

    it("replays dead letters from the first attempt, unless the key is taken", () =>
      withStore((store) => {
        Engine.schedule(store, config, 0, newJob("a", { retryDelaysMs: [], key: "k" }))
        Engine.poll(store, config, 1_000, 10)
        expect(Engine.replay(store, 1_000, "a")._tag).toBe("NotReplayable")
        Engine.fail(store, config, 1_000, "a", 1, "boom", true)
        Engine.schedule(store, config, 1_000, newJob("b", { key: "k", runAt: 50_000 }))
        expect(Engine.replay(store, 2_000, "a")).toMatchObject({ _tag: "NotReplayable", reason: expect.stringMatching(/key/) })
        Engine.cancel(store, config, 2_000, "b")
        expect(Engine.replay(store, 3_000, "a")).toMatchObject({
          _tag: "Replayed",
          job: { state: "pending", attempt: 0, runAt: 3_000, lastError: "boom" }
        })
        expect(Engine.poll(store, config, 3_000, 10).claimed[0]).toMatchObject({ id: "a", attempt: 1 })
        expect(Engine.replay(store, 3_000, "zz")._tag).toBe("NotFound")
      }))

    it("sweeps finished jobs after retention but keeps dead letters until purged", () =>
      withStore((store) => {
        Engine.scheduleMany(store, config, 0, [
          newJob("ok"),
          newJob("dead", { retryDelaysMs: [], functionPath: "x:dead" }),
          newJob("dead2", { retryDelaysMs: [] }),
          newJob("gone", { runAt: 50_000 })
        ])
        Engine.poll(store, config, 1_000, 10)
        Engine.complete(store, config, 1_000, "ok", 1, null)
        Engine.fail(store, config, 1_000, "dead", 1, "x", true)
        Engine.fail(store, config, 1_000, "dead2", 1, "x", true)
        Engine.cancel(store, config, 1_000, "gone")
        expect(Engine.nextWakeAt(store)).toBe(1_000 + config.retentionMs)
        expect(Engine.poll(store, config, 1_000 + config.retentionMs - 1, 10).swept).toBe(0)
        expect(Engine.poll(store, config, 1_000 + config.retentionMs, 10).swept).toBe(2)
        expect(store.get("ok")).toBeUndefined()
        expect(store.get("gone")).toBeUndefined()
        expect(store.get("dead")?.state).toBe("deadLettered")
        expect(Engine.nextWakeAt(store)).toBeUndefined()
        expect(Engine.purge(store, { ids: ["dead2", "nope"], functionPath: "x:dead", limit: 10 })).toBe(0)
        expect(Engine.purge(store, { functionPath: "x:dead", limit: 10 })).toBe(1)
        expect(Engine.purge(store, { ids: ["dead2"], limit: 10 })).toBe(1)
        expect(store.list({ limit: 10 })).toEqual([])
      }))

    it("pages through a listing with a cursor", () =>
      withStore((store) => {
        Engine.scheduleMany(store, config, 0, Array.from({ length: 5 }, (_, i) => newJob(`j${i}`)))
        const first = Engine.list(store, { limit: 2 })
        expect(first.jobs.map((j) => j.id)).toEqual(["j0", "j1"])
        const second = Engine.list(store, { limit: 2, afterSeq: first.nextAfterSeq! })
        expect(second.jobs.map((j) => j.id)).toEqual(["j2", "j3"])
        const last = Engine.list(store, { limit: 2, afterSeq: second.nextAfterSeq! })
        expect(last).toMatchObject({ jobs: [{ id: "j4" }], nextAfterSeq: null })
      }))

    describe("pools", () => {
      const ids = (jobs: ReadonlyArray<{ readonly id: string }>) => jobs.map((job) => job.id)
      const enqueue = (store: Parameters<typeof Engine.claim>[0], pool: string, names: ReadonlyArray<string>, runAt = 0) => {
        const result = PoolEngine.enqueue(store, config, runAt, pool, names.map((id) => newJob(id, { runAt })))
        expect(result._tag).toBe("Enqueued")
      }

      it("defines a pool once; a runtime cap stays until the declared cap changes", () =>
        withStore((store) => {
          expect(PoolEngine.define(store, 0, "p", undefined)).toEqual({ _tag: "PoolNotFound" })
          expect(PoolEngine.define(store, 5, "p", 3)).toMatchObject({ _tag: "Defined", pool: { maxConcurrency: 3, createdAt: 5 } })
          expect(PoolEngine.update(store, "p", { maxConcurrency: 1, paused: true })).toMatchObject({
            pool: { maxConcurrency: 1, paused: true, declaredMaxConcurrency: 3 }
          })
          expect(PoolEngine.define(store, 6, "p", 3)).toMatchObject({ pool: { maxConcurrency: 1, paused: true } })
          expect(PoolEngine.define(store, 7, "p", undefined)).toMatchObject({ pool: { maxConcurrency: 1 } })
          expect(PoolEngine.define(store, 8, "p", 4)).toMatchObject({
            pool: { maxConcurrency: 4, declaredMaxConcurrency: 4, paused: true, createdAt: 5 }
          })
          expect(PoolEngine.update(store, "nope", { paused: false })).toEqual({ _tag: "PoolNotFound" })
        }))

      it("refuses to enqueue into an unknown pool and stores nothing", () =>
        withStore((store) => {
          expect(PoolEngine.enqueue(store, config, 0, "nope", [newJob("a"), newJob("b")])).toEqual({ _tag: "PoolNotFound" })
          expect(store.list({ limit: 10 })).toEqual([])
          expect(PoolEngine.cancelQueued(store, config, 0, "nope", 10)).toEqual({ _tag: "PoolNotFound" })
          expect(PoolEngine.status(store, 0, "nope")).toBeUndefined()
        }))

      it("keeps at most maxConcurrency in flight, in FIFO order; a completion frees its slot", () =>
        withStore((store) => {
          PoolEngine.define(store, 0, "p", 2)
          enqueue(store, "p", ["a", "b", "c", "d", "e"])
          expect(ids(Engine.claim(store, config, 10, 10))).toEqual(["a", "b"])
          expect(Engine.claim(store, config, 10, 10)).toEqual([])
          // a full pool's queue wakes nothing before the first lease ends
          expect(Engine.nextWakeAt(store)).toBe(10 + config.leaseMs)
          Engine.complete(store, config, 20, "b", 1, null)
          expect(Engine.nextWakeAt(store)).toBe(0)
          expect(ids(Engine.claim(store, config, 20, 10))).toEqual(["c"])
          Engine.fail(store, config, 30, "a", 1, "boom", true)
          // a's retry waits for its delay; d was due first
          expect(ids(Engine.claim(store, config, 30, 10))).toEqual(["d"])
          expect(PoolEngine.status(store, 30, "p")).toEqual({
            name: "p",
            maxConcurrency: 2,
            paused: false,
            inFlight: 2,
            queued: 2,
            deadLettered: 0,
            oldestQueuedAt: 0
          })
        }))

      it("frees the slot of a job whose lease expires, and retries it under its policy", () =>
        withStore((store) => {
          PoolEngine.define(store, 0, "p", 1)
          enqueue(store, "p", ["a", "b"])
          expect(ids(Engine.claim(store, config, 0, 10))).toEqual(["a"])
          const result = Engine.poll(store, config, config.leaseMs, 10)
          expect(ids(result.expired)).toEqual(["a"])
          expect(ids(result.claimed)).toEqual(["b"])
          expect(store.get("a")).toMatchObject({ state: "pending", runAt: config.leaseMs + 10_000 })
        }))

      it("starts nothing in a paused pool, finishes what runs, and resumes in order", () =>
        withStore((store) => {
          PoolEngine.define(store, 0, "p", 2)
          enqueue(store, "p", ["a", "b", "c"])
          expect(ids(Engine.claim(store, config, 0, 1))).toEqual(["a"])
          PoolEngine.update(store, "p", { paused: true })
          expect(Engine.claim(store, config, 0, 10)).toEqual([])
          expect(Engine.nextWakeAt(store)).toBe(config.leaseMs)
          Engine.complete(store, config, 1, "a", 1, null)
          // only the sweep of the finished job, not the paused queue
          expect(Engine.nextWakeAt(store)).toBe(1 + config.retentionMs)
          expect(PoolEngine.status(store, 1, "p")).toMatchObject({ paused: true, inFlight: 0, queued: 2 })
          PoolEngine.update(store, "p", { paused: false })
          expect(Engine.nextWakeAt(store)).toBe(0)
          expect(ids(Engine.claim(store, config, 2, 10))).toEqual(["b", "c"])
        }))

      it("holds back new starts after a lower cap until the pool is under it", () =>
        withStore((store) => {
          PoolEngine.define(store, 0, "p", 3)
          enqueue(store, "p", ["a", "b", "c", "d"])
          expect(ids(Engine.claim(store, config, 0, 10))).toEqual(["a", "b", "c"])
          PoolEngine.update(store, "p", { maxConcurrency: 1 })
          Engine.complete(store, config, 1, "a", 1, null)
          Engine.complete(store, config, 1, "b", 1, null)
          expect(Engine.claim(store, config, 1, 10)).toEqual([])
          Engine.complete(store, config, 2, "c", 1, null)
          expect(ids(Engine.claim(store, config, 2, 10))).toEqual(["d"])
        }))

      it("shares scarce slots: the lane with the fewest in flight goes first", () =>
        withStore((store) => {
          PoolEngine.define(store, 0, "big", 10)
          PoolEngine.define(store, 0, "small", 10)
          enqueue(store, "big", ["b1", "b2", "b3", "b4"])
          enqueue(store, "small", ["s1", "s2"], 5)
          Engine.scheduleMany(store, config, 0, [newJob("t1", { runAt: 9 }), newJob("t2", { runAt: 9 })])
          const order = Array.from({ length: 8 }, () => ids(Engine.claim(store, config, 10, 1))).flat()
          expect(order).toEqual(["b1", "s1", "t1", "b2", "s2", "t2", "b3", "b4"])
        }))

      it("cancels what a pool has queued in bounded batches, and only in that pool", () =>
        withStore((store) => {
          PoolEngine.define(store, 0, "p", 1)
          PoolEngine.define(store, 0, "q", 1)
          enqueue(store, "p", ["a", "b", "c", "d"])
          enqueue(store, "q", ["x"])
          Engine.claim(store, config, 0, 10)
          expect(Engine.cancel(store, config, 0, "x", "p")).toEqual({ _tag: "NotFound" })
          expect(PoolEngine.cancelQueued(store, config, 0, "p", 2)).toEqual({ _tag: "Canceled", canceled: 2, more: true })
          expect(PoolEngine.cancelQueued(store, config, 0, "p", 2)).toEqual({ _tag: "Canceled", canceled: 1, more: false })
          expect(store.get("a")?.state).toBe("inProgress")
          expect(["b", "c", "d"].map((id) => store.get(id)?.state)).toEqual(["canceled", "canceled", "canceled"])
          expect(store.get("x")?.state).toBe("inProgress")
          expect(PoolEngine.status(store, 0, "p")).toMatchObject({ inFlight: 1, queued: 0, oldestQueuedAt: null })
        }))
    })

    describe("crons", () => {
      const MINUTE = 60_000
      const every = (name: string, minutes: number) =>
        CronSpec.cronJobs().interval(name, { minutes }, "test:cron", {}).definitions

      it("an interval cron fires one interval after it is declared, or at once with firstRun: immediately", () =>
        withStore((store) => {
          const crons = CronSpec.cronJobs()
            .interval("later", { minutes: 10 }, "test:cron", {})
            .interval("now", { minutes: 10 }, "test:cron", {}, { firstRun: "immediately" })
          CronEngine.reconcile(store, 5 * MINUTE, crons.definitions)
          expect([store.getCron("later")?.nextRunAt, store.getCron("now")?.nextRunAt]).toEqual([15 * MINUTE, 5 * MINUTE])
          expect(CronEngine.fireDue(store, config, 5 * MINUTE, 100).fired.map((job) => job.runAt)).toEqual([5 * MINUTE])
          expect(store.getCron("now")?.nextRunAt).toBe(15 * MINUTE)
          // declaring the same set again (a redeploy) fires nothing more
          expect(CronEngine.reconcile(store, 6 * MINUTE, crons.definitions)).toEqual({ added: [], changed: [], removed: [] })
          expect(CronEngine.fireDue(store, config, 6 * MINUTE, 100).fired).toEqual([])
        }))

      it("a cron that cannot fire is recorded as failing and tried again a minute later; the others fire", () =>
        withStore((store) => {
          CronEngine.reconcile(store, 0, [...every("a", 10), ...every("c", 10)], "{\"binding\":\"SELF\"}")
          store.putCron({ ...store.getCron("a")!, name: "b", schedule: "{\"_tag\":" })
          const result = CronEngine.fireDue(store, config, 10 * MINUTE, 100)
          expect(result.fired.map((job) => job.key)).toEqual([`cron:a:${10 * MINUTE}`, `cron:c:${10 * MINUTE}`])
          expect(result.fired.map((job) => job.target)).toEqual(["{\"binding\":\"SELF\"}", "{\"binding\":\"SELF\"}"])
          expect(result.failed.map((cron) => cron.name)).toEqual(["b"])
          expect(store.getCron("b")).toMatchObject({ nextRunAt: 10 * MINUTE + CronEngine.CRON_RETRY_MS, lastOutcome: expect.stringMatching(/^error: /) })
          // it fails alone each minute, and never stops the next fires of the others
          expect(CronEngine.fireDue(store, config, 11 * MINUTE, 100).failed.map((cron) => cron.name)).toEqual(["b"])
          const later = CronEngine.fireDue(store, config, 20 * MINUTE, 100)
          expect(later.skipped.map((cron) => cron.name)).toEqual(["a", "c"])
          expect(later.failed.map((cron) => cron.name)).toEqual(["b"])
        }))

      it("a cron whose schedule has no next time after reconcile is recorded as failing, not thrown", () =>
        withStore((store) => {
          const impossible = [{ name: "never", schedule: { _tag: "Expression" as const, expression: "0 0 30 2 *", timeZone: "UTC", fields: { ...CronSpec.expression("0 0 30 1 *").fields, month: [2] } }, functionPath: "test:cron", args: "{}" }]
          expect(CronEngine.reconcile(store, 0, impossible).added).toEqual(["never"])
          expect(store.getCron("never")).toMatchObject({ nextRunAt: CronEngine.CRON_RETRY_MS, lastOutcome: expect.stringMatching(/^error: no next fire/) })
        }))

      it("a record stored without its fields keeps its next fire when its crons are declared again", () =>
        withStore((store) => {
          const declared = [{ name: "hourly", schedule: CronSpec.expression("0 * * * *"), functionPath: "test:cron", args: "{}" }]
          CronEngine.reconcile(store, 0, declared)
          const stored = store.getCron("hourly")!
          store.putCron({ ...stored, schedule: JSON.stringify({ _tag: "Expression", expression: "0 * * * *", timeZone: "UTC" }) })
          expect(CronEngine.reconcile(store, 30 * MINUTE, declared).changed).toEqual(["hourly"])
          expect(store.getCron("hourly")).toEqual(stored)
          expect(CronEngine.fireDue(store, config, 60 * MINUTE, 100).fired.map((job) => job.runAt)).toEqual([60 * MINUTE])
        }))

      it("trigger starts nothing while the cron's last run is live, scheduled or triggered", () =>
        withStore((store) => {
          CronEngine.reconcile(store, 0, every("t", 10))
          const [scheduled] = CronEngine.fireDue(store, config, 10 * MINUTE, 100).fired
          expect(CronEngine.trigger(store, config, 10 * MINUTE + 5, "t")).toEqual({ _tag: "InProgress", job: scheduled })
          Engine.claim(store, config, 10 * MINUTE, 10)
          expect(CronEngine.trigger(store, config, 10 * MINUTE + 6, "t")._tag).toBe("InProgress")
          Engine.complete(store, config, 10 * MINUTE + 7, scheduled!.id, 1, null)
          const manual = CronEngine.trigger(store, config, 10 * MINUTE + 8, "t")
          expect(manual._tag).toBe("Triggered")
          expect(CronEngine.trigger(store, config, 10 * MINUTE + 9, "t")).toEqual({ _tag: "InProgress", job: (manual as { job: unknown }).job })
          expect(CronEngine.trigger(store, config, 0, "missing")).toEqual({ _tag: "NotFound" })
        }))
    })
  })

