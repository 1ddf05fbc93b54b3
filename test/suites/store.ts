/**
 * The `Store` contract, run over every store: memory in Node, SQLite inside
 * workerd.
 */
import { describe, expect, it } from "vitest"
import type { CronRecord, JobRecord, PoolRecord, Store } from "../../src/internal/engine/store.js"

export const record = (id: string, overrides: Partial<Omit<JobRecord, "seq">> = {}): Omit<JobRecord, "seq"> => ({
  id,
  functionPath: "test:job",
  args: "{}",
  state: "pending",
  runAt: 1_000,
  scheduledFor: 1_000,
  createdAt: 0,
  startedAt: null,
  completedAt: null,
  attempt: 0,
  retryDelaysMs: [30_000, 60_000],
  deadLetter: true,
  key: null,
  shardKey: null,
  pool: null,
  target: null,
  parentId: null,
  cancelRequested: false,
  lastError: null,
  result: null,
  ...overrides
})

/**
 * Runs a test body against a fresh, empty store: synchronously for the memory
 * store, inside a fresh Durable Object for SQLite.
 */
export type WithStore = (body: (store: Store) => void) => void | Promise<void>

/** A fresh memory-style store per body. */
export const freshStore = (make: () => Store): WithStore => (body) => body(make())

const ids = (jobs: ReadonlyArray<JobRecord>) => jobs.map((job) => job.id)

export const storeConformance = (name: string, withStore: WithStore) =>
  describe(`Store conformance: ${name}`, () => {
    it("round-trips every field and assigns increasing seq", () =>
      withStore((store) => {
        const full = record("a", {
          args: "{\"userId\":\"u-1\",\"n\":[1,2.5,null]}",
          state: "inProgress",
          startedAt: 5,
          completedAt: null,
          attempt: 2,
          retryDelaysMs: [],
          deadLetter: false,
          key: "k",
          shardKey: "s",
          target: "{\"originUrl\":\"https://app.example.com\"}",
          lastError: "boom ✓",
          result: "\"ok\""
        })
        const a = store.insert(full)
        const b = store.insert(record("b"))
        expect(b.seq).toBeGreaterThan(a.seq)
        expect(store.get("a")).toEqual({ ...full, seq: a.seq })
        expect(store.get("missing")).toBeUndefined()
      }))

    it("rolls back a nested transaction that throws, keeping the outer one's writes", () =>
      withStore((store) => {
        store.transaction(() => {
          store.insert(record("outer"))
          expect(() =>
            store.transaction(() => {
              store.insert(record("inner"))
              store.update({ ...store.get("outer")!, state: "success" })
              throw new Error("inner rollback")
            })
          ).toThrow("inner rollback")
          store.insert(record("after"))
        })
        expect(store.list({ limit: 10 }).map((job) => [job.id, job.state])).toEqual([["outer", "pending"], ["after", "pending"]])
        expect(store.due("pending", 10_000, 10).map((job) => job.id)).toEqual(["outer", "after"])
        expect(store.count("success")).toBe(0)
      }))

    it("refuses a duplicate id", () =>
      withStore((store) => {
        store.insert(record("a"))
        expect(() => store.insert(record("a"))).toThrow()
        expect(store.list({ limit: 10 })).toHaveLength(1)
      }))

    it("answers due look-ups by (runAt, seq) within a state, up to until and limit", () =>
      withStore((store) => {
        store.insert(record("late", { runAt: 3_000 }))
        store.insert(record("tie-1", { runAt: 2_000 }))
        store.insert(record("early", { runAt: 1_000 }))
        store.insert(record("tie-2", { runAt: 2_000 }))
        store.insert(record("running", { runAt: 500, state: "inProgress" }))
        expect(ids(store.due("pending", 2_000, 10))).toEqual(["early", "tie-1", "tie-2"])
        expect(ids(store.due("pending", 10_000, 2))).toEqual(["early", "tie-1"])
        expect(ids(store.due("pending", 999, 10))).toEqual([])
        expect(ids(store.due("inProgress", 10_000, 10))).toEqual(["running"])
        expect(store.due("pending", 10_000, 0)).toEqual([])
        expect(store.nextRunAt("pending")).toBe(1_000)
        expect(store.nextRunAt("inProgress")).toBe(500)
        expect(store.nextRunAt("success")).toBeUndefined()
        expect(store.count("pending")).toBe(4)
      }))

    it("inserts many in order, seqs ascending, every field as given; a big payload too", () =>
      withStore((store) => {
        const before = store.insert(record("first"))
        const odd = record("odd", {
          args: JSON.stringify({ text: "quotes \" and \\ and é ✓ \u0000", n: 1.5 }),
          state: "canceled",
          startedAt: 5,
          completedAt: 6,
          attempt: 2,
          retryDelaysMs: [],
          deadLetter: false,
          key: "k",
          shardKey: "s",
          pool: "p",
          target: "{\"binding\":\"SELF\"}",
          parentId: "first",
          cancelRequested: true,
          lastError: "boom",
          result: "null"
        })
        const big = record("big", { args: JSON.stringify({ blob: "x".repeat(300_000) }) })
        const many = [record("m1"), odd, big, record("m2"), ...Array.from({ length: 120 }, (_, i) => record(`r${i}`))]
        const stored = store.insertMany(many)
        expect(ids(stored)).toEqual(many.map((job) => job.id))
        const seqs = stored.map((job) => job.seq)
        expect(seqs[0]).toBeGreaterThan(before.seq)
        expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
        expect(new Set(seqs).size).toBe(seqs.length)
        for (const job of stored) expect(store.get(job.id)).toEqual(job)
        expect(store.get("odd")).toMatchObject({ ...odd })
        expect(store.get("big")?.args.length).toBe(big.args.length)
        expect(store.insertMany([])).toEqual([])
      }))

    it("round-trips a new job inserted alone, and one inserted with others, every field as it was", () =>
      withStore((store) => {
        const fields = {
          args: "{\"n\":1}",
          runAt: 7_000,
          scheduledFor: 7_000,
          createdAt: 6_000,
          retryDelaysMs: [1, 2, 3],
          deadLetter: false,
          key: "k",
          shardKey: "s",
          pool: "p",
          target: "{\"binding\":\"SELF\"}",
          parentId: "parent"
        }
        const alone = store.insert(record("alone", fields))
        expect(store.get("alone")).toEqual(alone)
        expect(alone).toMatchObject(fields)
        const [first, second] = store.insertMany([record("first", { ...fields, key: "k2" }), record("second", { ...fields, key: "k3" })])
        expect(store.get("first")).toEqual(first)
        expect(store.get("second")).toEqual(second)
        expect(second).toMatchObject({ ...fields, key: "k3" })
        expect([alone.seq, first!.seq, second!.seq]).toEqual([alone.seq, alone.seq + 1, alone.seq + 2])
      }))

    it("new jobs inserted together keep each their own fields where they differ in what jobs submitted together share", () =>
      withStore((store) => {
        const variants = [
          {},
          { functionPath: "other:job" },
          { createdAt: 5 },
          { retryDelaysMs: [9] },
          { deadLetter: false },
          { shardKey: "s2" },
          { pool: "p2" },
          { target: "{\"binding\":\"OTHER\"}" },
          { parentId: "parent-2" }
        ]
        // alike neighbours, then each variant between two plain ones
        const jobs = [record("same-1"), record("same-2"), ...variants.flatMap((fields, i) => [record(`v${i}`, fields), record(`after-v${i}`)])]
        const stored = store.insertMany(jobs)
        expect(ids(stored)).toEqual(jobs.map((job) => job.id))
        for (const [i, job] of jobs.entries()) expect(store.get(job.id)).toEqual({ ...job, seq: stored[i]!.seq })
        const seqs = stored.map((job) => job.seq)
        expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i))
      }))

    it("inserts many or none: a duplicate id fails the call, inside a transaction nothing is stored", () =>
      withStore((store) => {
        store.insert(record("taken"))
        expect(() => store.transaction(() => store.insertMany([record("fresh"), record("taken")]))).toThrow()
        expect(store.get("fresh")).toBeUndefined()
        expect(ids(store.list({ limit: 10 }))).toEqual(["taken"])
      }))

    it("re-indexes on update and forgets on remove", () =>
      withStore((store) => {
        const a = store.insert(record("a", { runAt: 1_000 }))
        store.update({ ...a, state: "inProgress", runAt: 9_000, attempt: 1 })
        expect(store.due("pending", 10_000, 10)).toEqual([])
        expect(ids(store.due("inProgress", 10_000, 10))).toEqual(["a"])
        expect(store.get("a")?.attempt).toBe(1)
        expect(store.get("a")?.seq).toBe(a.seq)
        store.remove("a")
        expect(store.get("a")).toBeUndefined()
        expect(store.due("inProgress", 10_000, 10)).toEqual([])
        expect(store.count("inProgress")).toBe(0)
        expect(store.list({ limit: 10 })).toEqual([])
        // a record that is not stored cannot be updated: an update that finds nothing throws, and stores nothing
        expect(() => store.update({ ...a, state: "success" })).toThrow(/no job a to update/)
        expect(store.get("a")).toBeUndefined()
      }))

    it("reads and writes many jobs' progress at once; a job not stored fails the call, writing none in a transaction", () =>
      withStore((store) => {
        const [a, b, c] = store.insertMany([record("a", { key: "ka" }), record("b"), record("c")])
        expect(ids([...store.getMany(["c", "missing", "a"])].sort((x, y) => x.seq - y.seq))).toEqual(["a", "c"])
        expect(store.getMany([])).toEqual([])
        const started = [a!, b!, c!].map((job) => ({ ...job, state: "inProgress" as const, attempt: 1, startedAt: 5, runAt: 600 }))
        store.updateMany(started)
        for (const job of started) expect(store.get(job.id)).toEqual(job)
        expect(ids(store.due("inProgress", 600, 10))).toEqual(["a", "b", "c"])
        expect(store.getLiveByKey("ka")?.state).toBe("inProgress")
        const done = { ...started[0]!, state: "success" as const, completedAt: 9, runAt: 99, result: "\"ok\"", lastError: "once" }
        const retry = { ...started[1]!, state: "pending" as const, runAt: 700, scheduledFor: 700, cancelRequested: true }
        store.updateMany([done, retry])
        expect(store.get("a")).toEqual(done)
        expect(store.get("b")).toEqual(retry)
        expect(store.getLiveByKey("ka")).toBeUndefined()
        expect(ids(store.due("pending", 700, 10))).toEqual(["b"])
        const before = store.get("c")
        expect(() =>
          store.transaction(() => store.updateMany([{ ...started[2]!, state: "failed" }, { ...started[2]!, id: "gone" }]))
        ).toThrow()
        expect(store.get("c")).toEqual(before)
        store.updateMany([])
      }))

    it("finds a key only while its job is live", () =>
      withStore((store) => {
        const a = store.insert(record("a", { key: "k" }))
        expect(store.getLiveByKey("k")?.id).toBe("a")
        store.update({ ...a, state: "inProgress" })
        expect(store.getLiveByKey("k")?.id).toBe("a")
        store.update({ ...a, state: "success", runAt: 99 })
        expect(store.getLiveByKey("k")).toBeUndefined()
        store.insert(record("b", { key: "k" }))
        expect(store.getLiveByKey("k")?.id).toBe("b")
        expect(store.getLiveByKey("other")).toBeUndefined()
      }))

    it("lists by seq with filters and a cursor", () =>
      withStore((store) => {
        const inserted = ["a", "b", "c", "d", "e"].map((id, i) =>
          store.insert(record(id, { functionPath: i % 2 === 0 ? "x:even" : "x:odd", state: i < 3 ? "pending" : "success" }))
        )
        expect(ids(store.list({ limit: 10 }))).toEqual(["a", "b", "c", "d", "e"])
        expect(ids(store.list({ limit: 2 }))).toEqual(["a", "b"])
        expect(ids(store.list({ limit: 10, afterSeq: inserted[1]!.seq }))).toEqual(["c", "d", "e"])
        expect(ids(store.list({ limit: 10, functionPath: "x:even" }))).toEqual(["a", "c", "e"])
        expect(ids(store.list({ limit: 10, state: "success" }))).toEqual(["d", "e"])
        expect(ids(store.list({ limit: 10, state: "pending", functionPath: "x:odd" }))).toEqual(["b"])
        expect(store.list({ limit: 0 })).toEqual([])
      }))

    it("rolls a transaction back when it throws, and nests", () =>
      withStore((store) => {
        const a = store.insert(record("a", { key: "k" }))
        expect(() =>
          store.transaction(() => {
            store.insert(record("b"))
            store.update({ ...a, state: "canceled", runAt: 5 })
            store.transaction(() => store.remove("a"))
            throw new Error("abort")
          })
        ).toThrow("abort")
        expect(store.get("b")).toBeUndefined()
        expect(store.get("a")).toEqual(a)
        expect(store.getLiveByKey("k")?.id).toBe("a")
        expect(ids(store.due("pending", 10_000, 10))).toEqual(["a"])
        expect(store.transaction(() => store.insert(record("c")).id)).toBe("c")
        expect(store.get("c")).toBeDefined()
      }))

    it("answers ready look-ups and counts per pool, the scheduled jobs being the null pool", () =>
      withStore((store) => {
        store.insert(record("s2", { runAt: 2_000 }))
        store.insert(record("p1", { pool: "p", runAt: 1_500 }))
        store.insert(record("s1", { runAt: 1_000 }))
        store.insert(record("p2", { pool: "p", runAt: 1_500 }))
        store.insert(record("q1", { pool: "q", runAt: 500 }))
        store.insert(record("p-running", { pool: "p", state: "inProgress", runAt: 100 }))
        store.insert(record("p-dead", { pool: "p", state: "deadLettered" }))
        expect(ids(store.ready(null, 10_000, 10))).toEqual(["s1", "s2"])
        expect(ids(store.ready("p", 10_000, 10))).toEqual(["p1", "p2"])
        expect(ids(store.ready("p", 10_000, 1))).toEqual(["p1"])
        expect(ids(store.ready("p", 1_499, 10))).toEqual([])
        expect(ids(store.ready("nope", 10_000, 10))).toEqual([])
        expect(store.nextReadyAt(null)).toBe(1_000)
        expect(store.nextReadyAt("q")).toBe(500)
        expect(store.nextReadyAt("nope")).toBeUndefined()
        expect(store.countInPool("p", "pending")).toBe(2)
        expect(store.countInPool("p", "inProgress")).toBe(1)
        expect(store.countInPool("p", "deadLettered")).toBe(1)
        expect(store.countInPool(null, "pending")).toBe(2)
        expect(store.countInPool(null, "inProgress")).toBe(0)
        store.update({ ...store.get("p1")!, state: "inProgress" })
        expect(store.countInPool("p", "inProgress")).toBe(2)
        expect(ids(store.ready("p", 10_000, 10))).toEqual(["p2"])
        store.remove("p2")
        expect(store.nextReadyAt("p")).toBeUndefined()
        expect(ids(store.due("pending", 10_000, 10))).toEqual(["q1", "s1", "s2"])
      }))

    it("keeps pools: put replaces by name, listed by name, rollback", () =>
      withStore((store) => {
        const pool = (name: string, maxConcurrency: number): PoolRecord => ({
          name,
          maxConcurrency,
          declaredMaxConcurrency: maxConcurrency,
          paused: false,
          createdAt: 7
        })
        expect(store.listPools()).toEqual([])
        store.putPool(pool("b", 2))
        store.putPool(pool("a", 1))
        store.putPool({ ...pool("b", 5), paused: true, declaredMaxConcurrency: 2 })
        expect(store.getPool("b")).toEqual({ ...pool("b", 5), paused: true, declaredMaxConcurrency: 2 })
        expect(store.getPool("c")).toBeUndefined()
        expect(store.listPools().map((p) => p.name)).toEqual(["a", "b"])
        expect(() =>
          store.transaction(() => {
            store.putPool(pool("a", 9))
            store.putPool(pool("c", 3))
            throw new Error("rollback")
          })
        ).toThrow("rollback")
        expect(store.listPools()).toEqual([pool("a", 1), { ...pool("b", 5), paused: true, declaredMaxConcurrency: 2 }])
      }))

    it("keeps crons: put replaces by name, due by (nextRunAt, name), removal, rollback", () =>
      withStore((store) => {
        const cron = (name: string, nextRunAt: number): CronRecord => ({
          name,
          schedule: "{\"_tag\":\"Interval\",\"ms\":60000}",
          functionPath: "test:cron",
          args: "{}",
          nextRunAt,
          lastRunAt: null,
          lastJobId: null,
          lastOutcome: null,
          skipped: 0,
          target: null
        })
        expect(store.nextCronAt()).toBeUndefined()
        store.putCron(cron("b", 300))
        store.putCron(cron("a", 300))
        store.putCron(cron("c", 100))
        const fired = { lastRunAt: 100, lastJobId: "j", lastOutcome: "fired", skipped: 2, target: "{\"binding\":\"SELF\"}" }
        store.putCron({ ...cron("c", 200), ...fired })
        expect(store.getCron("c")).toEqual({ ...cron("c", 200), ...fired })
        expect(store.listCrons().map((c) => c.name)).toEqual(["a", "b", "c"])
        expect(store.dueCrons(300, 10).map((c) => c.name)).toEqual(["c", "a", "b"])
        expect(store.dueCrons(299, 10).map((c) => c.name)).toEqual(["c"])
        expect(store.dueCrons(300, 2).map((c) => c.name)).toEqual(["c", "a"])
        expect(store.nextCronAt()).toBe(200)
        expect(() =>
          store.transaction(() => {
            store.removeCron("c")
            store.putCron(cron("d", 50))
            throw new Error("rollback")
          })
        ).toThrow("rollback")
        expect(store.listCrons().map((c) => c.name)).toEqual(["a", "b", "c"])
        store.removeCron("c")
        expect(store.getCron("c")).toBeUndefined()
        expect(store.nextCronAt()).toBe(300)
      }))

    it("keeps settings: put replaces by name, rollback", () =>
      withStore((store) => {
        expect(store.setting("shards")).toBeUndefined()
        store.putSetting("shards", "4")
        store.putSetting("shard", "2")
        store.putSetting("shards", "8")
        expect([store.setting("shards"), store.setting("shard")]).toEqual(["8", "2"])
        expect(() =>
          store.transaction(() => {
            store.putSetting("shards", "16")
            store.putSetting("other", "x")
            throw new Error("rollback")
          })
        ).toThrow("rollback")
        expect([store.setting("shards"), store.setting("other")]).toEqual(["8", undefined])
      }))
  })
