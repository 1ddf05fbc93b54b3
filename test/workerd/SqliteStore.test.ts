/// <reference types="@cloudflare/workers-types" />
/// <reference types="@cloudflare/vitest-pool-workers" />
/**
 * The SQLite store on real Durable Object storage inside workerd: the shared
 * conformance suites, then what only SQLite has (migrations, the key index,
 * query plans).
 */
import { env, runInDurableObject } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { make, migrate, quarantine } from "../../src/cloudflare/internal/sqliteStore.js"
import type { Store } from "../../src/internal/engine/store.js"
import { engineConformance } from "../suites/engine.js"
import { record, storeConformance } from "../suites/store.js"

const freshObject = () => env.STORE_TEST.get(env.STORE_TEST.newUniqueId())

const inFreshObject = <A>(f: (storage: DurableObjectStorage) => A | Promise<A>): Promise<A> =>
  runInDurableObject(freshObject(), (_, state) => f(state.storage))

/** Each conformance body runs inside its own fresh Durable Object, on its real SQLite storage. */
const inFreshSqliteStore = (body: (store: Store) => void) => inFreshObject((storage) => body(make(storage)))

describe("SQLite store, one fresh Durable Object per test", () => {
  storeConformance("sqlite", inFreshSqliteStore)
  engineConformance("sqlite", inFreshSqliteStore)
})

type Plan = { readonly query: string; readonly details: ReadonlyArray<string> }

/** Passes every statement through to the real storage, and keeps its query plan. */
const recordingPlans = (storage: DurableObjectStorage) => {
  const plans: Array<Plan> = []
  const sql = {
    exec: (query: string, ...bindings: Array<unknown>) => {
      if (/^\s*(SELECT|UPDATE|DELETE)\b[\s\S]*\b_lunora_jobs\b/i.test(query)) {
        const details = storage.sql.exec<{ detail: string }>(`EXPLAIN QUERY PLAN ${query}`, ...bindings)
          .toArray()
          .map((row) => row.detail)
        plans.push({ query, details })
      }
      return storage.sql.exec(query, ...bindings)
    }
  }
  const recording = { sql, transactionSync: <T>(f: () => T): T => storage.transactionSync(f) }
  return { plans, storage: recording as unknown as DurableObjectStorage }
}

const exerciseEveryOperation = (store: Store) => {
  const a = store.insert(record("a", { key: "k", functionPath: "x:a" }))
  store.insert(record("b", { state: "success", runAt: 5_000 }))
  store.get("a")
  store.getLiveByKey("k")
  store.due("pending", 10_000, 10)
  store.nextRunAt("pending")
  store.count("pending")
  store.list({ limit: 10 })
  store.list({ limit: 10, afterSeq: a.seq })
  store.list({ limit: 10, state: "pending" })
  store.list({ limit: 10, functionPath: "x:a" })
  store.list({ limit: 10, state: "deadLettered", functionPath: "x:a" })
  store.insert(record("c", { pool: "p" }))
  store.ready(null, 10_000, 10)
  store.ready("p", 10_000, 10)
  store.nextReadyAt(null)
  store.nextReadyAt("p")
  store.countInPool(null, "inProgress")
  store.countInPool("p", "inProgress")
  store.insert(record("child", { parentId: "a" }))
  store.pendingChildren("a")
  store.update({ ...a, state: "inProgress" })
  store.remove("b")
}

describe("SQLite store", () => {
  it("migrates once: a second make records no version again", async () => {
    const versions = await inFreshObject((storage) => {
      const read = () => storage.sql.exec<{ version: number; applied_at: number }>(
        "SELECT version, applied_at FROM _lunora_migrations ORDER BY version"
      ).toArray()
      make(storage).insert(record("a"))
      const first = read()
      make(storage)
      migrate(storage)
      expect(read()).toEqual(first)
      expect(make(storage).get("a")?.id).toBe("a")
      return first.map((row) => row.version)
    })
    expect(versions).toEqual(versions.map((_, i) => i + 1))
    expect(versions.length).toBeGreaterThan(0)
  })

  it("upgrades a version 3 store to workpools, keeping its jobs (in no pool)", async () => {
    await inFreshObject((storage) => {
      migrate(storage, 3)
      storage.sql.exec(
        `INSERT INTO _lunora_jobs (id, function_path, args, state, run_at, scheduled_for, created_at, attempt,
          retry_delays_ms, dead_letter) VALUES ('old', 'x:old', '{}', 'pending', 5, 5, 0, 0, '[]', 1)`
      )
      const store = make(storage)
      expect(store.get("old")).toMatchObject({ id: "old", functionPath: "x:old", state: "pending", pool: null })
      expect(store.ready(null, 10, 10).map((job) => job.id)).toEqual(["old"])
      store.putPool({ name: "p", maxConcurrency: 1, declaredMaxConcurrency: 1, paused: false, createdAt: 0 })
      expect(store.listPools().map((pool) => pool.name)).toEqual(["p"])
    })
  })

  it("upgrades a version 4 store to per-job targets: its jobs and crons keep working, with no target", async () => {
    await inFreshObject((storage) => {
      migrate(storage, 4)
      storage.sql.exec(
        `INSERT INTO _lunora_jobs (id, function_path, args, state, run_at, scheduled_for, created_at, attempt,
          retry_delays_ms, dead_letter) VALUES ('old', 'x:old', '{}', 'pending', 5, 5, 0, 0, '[]', 1)`
      )
      const store = make(storage)
      expect(store.get("old")).toMatchObject({ id: "old", target: null })
      store.update({ ...store.get("old")!, target: "{\"binding\":\"SELF\"}" })
      expect(store.get("old")?.target).toBe("{\"binding\":\"SELF\"}")
    })
  })

  it("upgrades a version 5 store to parents: its jobs have none, and a job's pending children are found", async () => {
    await inFreshObject((storage) => {
      migrate(storage, 5)
      storage.sql.exec(
        `INSERT INTO _lunora_jobs (id, function_path, args, state, run_at, scheduled_for, created_at, attempt,
          retry_delays_ms, dead_letter) VALUES ('old', 'x:old', '{}', 'inProgress', 5, 5, 0, 1, '[]', 1)`
      )
      const store = make(storage)
      expect(store.get("old")).toMatchObject({ id: "old", parentId: null, cancelRequested: false })
      store.insert(record("young", { parentId: "old" }))
      expect(store.pendingChildren("old").map((job) => job.id)).toEqual(["young"])
      store.update({ ...store.get("old")!, cancelRequested: true })
      expect(store.get("old")?.cancelRequested).toBe(true)
    })
  })

  it("quarantine: a run time that is not a time dead-letters a live job, resets a finished one, and leaves the rest", async () => {
    await inFreshObject((storage) => {
      const store = make(storage)
      store.insert(record("healthy"))
      store.insert(record("text"))
      store.insert(record("huge", { state: "inProgress" }))
      store.insert(record("tiny"))
      store.insert(record("done", { state: "success" }))
      storage.sql.exec("UPDATE _lunora_jobs SET run_at = 'soon' WHERE id IN ('text', 'done')")
      storage.sql.exec("UPDATE _lunora_jobs SET run_at = 1e300 WHERE id = 'huge'")
      storage.sql.exec("UPDATE _lunora_jobs SET run_at = -1e300 WHERE id = 'tiny'")
      expect(quarantine(storage, 7_000)).toBe(4)
      for (const id of ["text", "huge", "tiny"]) {
        expect(store.get(id)).toMatchObject({ state: "deadLettered", runAt: 7_000, lastError: expect.stringContaining("not a time") })
      }
      expect(store.get("done")).toMatchObject({ state: "success", runAt: 7_000 })
      expect(store.get("healthy")).toMatchObject({ state: "pending", runAt: 1_000 })
      expect(quarantine(storage, 8_000)).toBe(0)
    })
  })

  it("reads a damaged retry plan as no retries rather than failing every read", async () => {
    await inFreshObject((storage) => {
      const store = make(storage)
      store.insert(record("a"))
      storage.sql.exec("UPDATE _lunora_jobs SET retry_delays_ms = 'abc' WHERE id = 'a'")
      expect(store.get("a")?.retryDelaysMs).toEqual([])
      expect(store.list({ limit: 10 }).map((job) => job.id)).toEqual(["a"])
    })
  })

  it("never reuses a seq, even after the newest job is removed", async () => {
    await inFreshObject((storage) => {
      const store = make(storage)
      store.insert(record("a"))
      const b = store.insert(record("b"))
      store.remove("b")
      expect(store.insert(record("c")).seq).toBeGreaterThan(b.seq)
    })
  })

  it("refuses two live jobs with one key, but not a live and a finished one", async () => {
    await inFreshObject((storage) => {
      const store = make(storage)
      const done = store.insert(record("done", { key: "k", state: "success" }))
      store.insert(record("old", { key: "k", state: "deadLettered" }))
      store.insert(record("live", { key: "k" }))
      expect(() => store.insert(record("twin", { key: "k", state: "inProgress" }))).toThrow(/UNIQUE constraint failed/)
      expect(() => store.update({ ...done, state: "pending" })).toThrow(/UNIQUE constraint failed/)
      expect(() =>
        store.transaction(() => {
          store.insert(record("other", { key: "k2" }))
          store.insert(record("twin", { key: "k" }))
        })
      ).toThrow(/UNIQUE constraint failed/)
      expect(store.get("other")).toBeUndefined()
      expect(store.get("done")?.state).toBe("success")
      expect(store.getLiveByKey("k")?.id).toBe("live")
      expect(store.list({ limit: 10 }).map((job) => job.id)).toEqual(["done", "old", "live"])
    })
  })

  it("answers every operation from an index, never a table scan or a sort", async () => {
    const plans = await inFreshObject((storage) => {
      const recording = recordingPlans(storage)
      exerciseEveryOperation(make(recording.storage))
      quarantine(recording.storage, 0)
      return recording.plans
    })
    expect(plans.length).toBeGreaterThan(10)
    for (const plan of plans) {
      expect(plan.details.length, plan.query).toBeGreaterThan(0)
      for (const detail of plan.details) {
        expect(detail, plan.query).toMatch(/^SEARCH _lunora_jobs USING (INTEGER PRIMARY KEY|(COVERING )?INDEX)/)
      }
    }
  })
})
