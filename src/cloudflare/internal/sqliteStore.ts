/**
 * The scheduler's `Store` over Durable Object SQLite (`ctx.storage.sql`).
 * Every look-up is an index lookup; `transaction` is
 * `ctx.storage.transactionSync`, which nests as savepoints.
 *
 * @since 0.1.0
 */
import type { DurableObjectStorage } from "@cloudflare/workers-types/latest"
import type { JobState } from "../../Job.js"
import type { CronRecord, JobRecord, PoolRecord, Store } from "../../internal/engine/store.js"

const CREATE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS _lunora_migrations (
  version INTEGER PRIMARY KEY,
  applied_at INTEGER NOT NULL
)`

const SELECT_SCHEMA_VERSION = "SELECT coalesce(max(version), 0) AS version FROM _lunora_migrations"

const RECORD_MIGRATION =
  "INSERT INTO _lunora_migrations (version, applied_at) VALUES (?, CAST(unixepoch('subsec') * 1000 AS INTEGER))"

/**
 * Applied in order, each once, in one transaction with its version record; a
 * migration only adds (tables and indexes `IF NOT EXISTS`, nullable columns).
 */
const MIGRATIONS: ReadonlyArray<ReadonlyArray<string>> = [
  [
    `CREATE TABLE IF NOT EXISTS _lunora_jobs (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE,
      function_path TEXT NOT NULL,
      args TEXT NOT NULL,
      state TEXT NOT NULL,
      run_at INTEGER NOT NULL,
      scheduled_for INTEGER NOT NULL,
      created_at INTEGER NOT NULL,
      started_at INTEGER,
      completed_at INTEGER,
      attempt INTEGER NOT NULL,
      retry_delays_ms TEXT NOT NULL,
      dead_letter INTEGER NOT NULL CHECK (dead_letter IN (0, 1)),
      key TEXT,
      shard_key TEXT,
      last_error TEXT,
      result TEXT
    )`,
    "CREATE INDEX IF NOT EXISTS _lunora_jobs_timeline ON _lunora_jobs (state, run_at, seq)",
    `CREATE UNIQUE INDEX IF NOT EXISTS _lunora_jobs_live_key ON _lunora_jobs (key)
      WHERE key IS NOT NULL AND state IN ('pending', 'inProgress')`,
    "CREATE INDEX IF NOT EXISTS _lunora_jobs_by_state ON _lunora_jobs (state, seq)",
    "CREATE INDEX IF NOT EXISTS _lunora_jobs_by_function ON _lunora_jobs (function_path, seq)",
    "CREATE INDEX IF NOT EXISTS _lunora_jobs_by_function_state ON _lunora_jobs (function_path, state, seq)"
  ],
  ["CREATE TABLE IF NOT EXISTS _lunora_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)"],
  [
    `CREATE TABLE IF NOT EXISTS _lunora_crons (
      name TEXT PRIMARY KEY,
      schedule TEXT NOT NULL,
      function_path TEXT NOT NULL,
      args TEXT NOT NULL,
      next_run_at INTEGER NOT NULL,
      last_run_at INTEGER,
      last_job_id TEXT,
      last_outcome TEXT,
      skipped INTEGER NOT NULL
    )`,
    "CREATE INDEX IF NOT EXISTS _lunora_crons_due ON _lunora_crons (next_run_at, name)"
  ],
  [
    "ALTER TABLE _lunora_jobs ADD COLUMN pool TEXT",
    "CREATE INDEX IF NOT EXISTS _lunora_jobs_pool_timeline ON _lunora_jobs (pool, state, run_at, seq)",
    `CREATE TABLE IF NOT EXISTS _lunora_pools (
      name TEXT PRIMARY KEY,
      max_concurrency INTEGER NOT NULL,
      declared_max_concurrency INTEGER NOT NULL,
      paused INTEGER NOT NULL CHECK (paused IN (0, 1)),
      created_at INTEGER NOT NULL
    )`
  ],
  [
    "ALTER TABLE _lunora_jobs ADD COLUMN target TEXT",
    "ALTER TABLE _lunora_crons ADD COLUMN target TEXT"
  ],
  [
    "ALTER TABLE _lunora_jobs ADD COLUMN parent_id TEXT",
    "ALTER TABLE _lunora_jobs ADD COLUMN cancel_requested INTEGER CHECK (cancel_requested IN (0, 1))",
    `CREATE INDEX IF NOT EXISTS _lunora_jobs_pending_children ON _lunora_jobs (parent_id, seq)
      WHERE parent_id IS NOT NULL AND state = 'pending'`
  ],
  ["ALTER TABLE _lunora_pools ADD COLUMN pull INTEGER NOT NULL DEFAULT 0 CHECK (pull IN (0, 1))"]
]

/** The columns a job is inserted with (`COLUMN_VALUES` says what a record writes in each). */
const JOB_COLUMNS =
  "id, function_path, args, state, run_at, scheduled_for, created_at, started_at, completed_at, attempt, " +
  "retry_delays_ms, dead_letter, key, shard_key, pool, target, parent_id, cancel_requested, last_error, result"

/** A bound value for each of `columns`: the next ones, or those numbered from `from`. */
const placeholders = (columns: string, from?: number) =>
  columns.split(", ").map((_, i) => (from === undefined ? "?" : `?${from + i}`)).join(", ")

/** Each of `columns` read from a `json_each` row, a JSON array of their values in order. */
const extracted = (columns: string) => columns.split(", ").map((_, i) => `value ->> ${i}`).join(", ")

const INSERT_JOB = `INSERT INTO _lunora_jobs (${JOB_COLUMNS}) VALUES (${placeholders(JOB_COLUMNS)})`

/**
 * Many jobs in one statement: each row a JSON array of the columns in
 * order, inserted in the array's order, so their seqs are consecutive and
 * end at `last_insert_rowid()` (no RETURNING, which costs about as much as
 * the insert).
 */
const INSERT_JOBS = `INSERT INTO _lunora_jobs (${JOB_COLUMNS})
SELECT ${extracted(JOB_COLUMNS)}
FROM json_each(?) ORDER BY key`

/** What a new job stores beyond the columns every new job has alike: `INSERT_FRESH_JOBS` extracts only these from each row. */
const FRESH_COLUMNS = "id, function_path, args, run_at, created_at, retry_delays_ms, dead_letter, key, shard_key, pool, target, parent_id"

/** Where `run_at` is among `FRESH_COLUMNS`: a new job is scheduled for its run time. */
const FRESH_RUN_AT = FRESH_COLUMNS.split(", ").indexOf("run_at")

/** The columns alike in every new job, and their values: pending, never run, due when scheduled for. */
const FRESH_ALIKE = "scheduled_for, state, attempt, cancel_requested"

/** What each of a run of new jobs has of its own; the rest of `FRESH_COLUMNS` the run shares (`FRESH_SHARED`). */
const FRESH_OWN = "id, args, run_at, key"

/** What a run of new jobs shares, as jobs submitted together do (what to run, when and how submitted, where). */
const FRESH_SHARED = FRESH_COLUMNS.split(", ").filter((column) => !FRESH_OWN.split(", ").includes(column)).join(", ")

/**
 * A run of new jobs: each row a JSON array of its own columns, the shared
 * ones bound once (`?2`, …), the columns alike in all literals. Each value
 * read from a row costs a parse of it: 4 instead of 12 is about a quarter
 * less time for the insert.
 */
const INSERT_FRESH_JOBS = `INSERT INTO _lunora_jobs (${FRESH_OWN}, ${FRESH_SHARED}, ${FRESH_ALIKE})
SELECT ${extracted(FRESH_OWN)}, ${placeholders(FRESH_SHARED, 2)},
  value ->> ${FRESH_OWN.split(", ").indexOf("run_at")}, 'pending', 0, 0
FROM json_each(?1) ORDER BY key`

/** One new job, as `INSERT_FRESH_JOBS` stores each. */
const INSERT_FRESH_JOB = `INSERT INTO _lunora_jobs (${FRESH_COLUMNS}, ${FRESH_ALIKE})
VALUES (${placeholders(FRESH_COLUMNS)}, ?${FRESH_RUN_AT + 1}, 'pending', 0, 0)`

/** Whether a job is new as `INSERT_FRESH_JOBS` stores it. */
const isFresh = (job: Omit<JobRecord, "seq">) =>
  job.state === "pending" && job.attempt === 0 && job.scheduledFor === job.runAt && job.startedAt === null &&
  job.completedAt === null && !job.cancelRequested && job.lastError === null && job.result === null

/** The seq of the last job an insert stored. */
const LAST_SEQ = "SELECT last_insert_rowid() AS seq"

/**
 * The JSON text one `INSERT_JOBS` binds is kept under this many characters
 * (at most three bytes each: below a value's 2 MB); a job whose row alone
 * is over `MAX_BATCHED_ROW_CHARS` is inserted by itself, its payload bound
 * as its own value.
 */
const MAX_INSERT_CHARS = 600_000
const MAX_BATCHED_ROW_CHARS = 100_000

/** Every column but the id: what `UPDATE_JOB` writes. */
const MUTABLE_COLUMNS = JOB_COLUMNS.split(", ").slice(1).join(", ")

const UPDATE_JOB = `UPDATE _lunora_jobs SET ${MUTABLE_COLUMNS.split(", ").map((column) => `${column} = ?`).join(", ")}
WHERE id = ?`

/** A job's progress: what `updateMany` writes, after its id. */
const PROGRESS_COLUMNS = [
  "state",
  "run_at",
  "scheduled_for",
  "started_at",
  "completed_at",
  "attempt",
  "cancel_requested",
  "last_error",
  "result"
] as const

/**
 * Many jobs' progress in one statement: each row a JSON array of the id,
 * then the `PROGRESS_COLUMNS` whose values differ among the jobs, in order;
 * a column all of them have alike is bound once (`?2`, …), as a run of new
 * jobs binds what it shares. Each value read from a row costs a parse of it:
 * a batch leased or finished together shares most (about a quarter less
 * time for the update). `shared` has a bit per column, in order.
 */
const updateProgressOf = (shared: number): string => {
  let own = 1
  let bound = 2
  const sets = PROGRESS_COLUMNS.map((column, i) =>
    (shared & (1 << i)) !== 0 ? `${column} = ?${bound++}` : `${column} = row.value ->> ${own++}`
  )
  return `UPDATE _lunora_jobs SET ${sets.join(", ")}
FROM json_each(?1) AS row
WHERE _lunora_jobs.id = row.value ->> 0`
}

/** `updateProgressOf` by its `shared` bits: a text made once (and a statement prepared once by workerd). */
const UPDATE_PROGRESS = new Map<number, string>()

const progressOf = (job: JobRecord) => [
  job.id,
  job.state,
  job.runAt,
  job.scheduledFor,
  job.startedAt,
  job.completedAt,
  job.attempt,
  job.cancelRequested ? 1 : 0,
  job.lastError,
  job.result
]

const CHANGES = "SELECT changes() AS n"

/**
 * The columns a job row is read with, named (not `*`): a raw row's values
 * are in this order whatever the table's, so `ROW_AT` places them once.
 */
const ROW_COLUMNS = `seq, ${JOB_COLUMNS}`

/** Where each of `ROW_COLUMNS` is in a raw row. */
const ROW_AT = Object.fromEntries(ROW_COLUMNS.split(", ").map((column, i) => [column, i])) as {
  readonly [K in keyof JobRow]: number
}

const SELECT_JOBS = `SELECT ${ROW_COLUMNS} FROM _lunora_jobs WHERE id IN (SELECT value FROM json_each(?))`

const DELETE_JOB = "DELETE FROM _lunora_jobs WHERE id = ?"

const SELECT_JOB = `SELECT ${ROW_COLUMNS} FROM _lunora_jobs WHERE id = ?`

const SELECT_LIVE_BY_KEY = `SELECT ${ROW_COLUMNS} FROM _lunora_jobs WHERE key = ? AND state IN ('pending', 'inProgress')`

const SELECT_PENDING_CHILDREN =
  `SELECT ${ROW_COLUMNS} FROM _lunora_jobs WHERE parent_id = ? AND state = 'pending' ORDER BY seq`

const SELECT_DUE = `SELECT ${ROW_COLUMNS} FROM _lunora_jobs WHERE state = ? AND run_at <= ? ORDER BY run_at, seq`

const SELECT_NEXT_RUN_AT = "SELECT run_at FROM _lunora_jobs WHERE state = ? ORDER BY run_at, seq LIMIT 1"

const COUNT_STATE = "SELECT count(*) AS n FROM _lunora_jobs WHERE state = ?"

// `pool IS ?` matches NULL for a null binding, and is an index equality either way
const SELECT_READY =
  `SELECT ${ROW_COLUMNS} FROM _lunora_jobs WHERE pool IS ? AND state = 'pending' AND run_at <= ? ORDER BY run_at, seq`

const SELECT_NEXT_READY_AT =
  "SELECT run_at FROM _lunora_jobs WHERE pool IS ? AND state = 'pending' ORDER BY run_at, seq LIMIT 1"

const COUNT_IN_POOL = "SELECT count(*) AS n FROM _lunora_jobs WHERE pool IS ? AND state = ?"

const PUT_POOL = `INSERT OR REPLACE INTO _lunora_pools (
  name, max_concurrency, declared_max_concurrency, paused, created_at, pull
) VALUES (?, ?, ?, ?, ?, ?)`

type PoolRow = {
  readonly name: string
  readonly max_concurrency: number
  readonly declared_max_concurrency: number
  readonly paused: number
  readonly created_at: number
  readonly pull: number
}

const fromPoolRow = (row: PoolRow): PoolRecord => ({
  name: row.name,
  maxConcurrency: row.max_concurrency,
  declaredMaxConcurrency: row.declared_max_concurrency,
  paused: row.paused !== 0,
  createdAt: row.created_at,
  ...(row.pull !== 0 ? { pull: true } : {})
})

const LIST = `SELECT ${ROW_COLUMNS} FROM _lunora_jobs WHERE seq > ? ORDER BY seq`

const LIST_BY_STATE = `SELECT ${ROW_COLUMNS} FROM _lunora_jobs WHERE state = ? AND seq > ? ORDER BY seq`

const LIST_BY_FUNCTION = `SELECT ${ROW_COLUMNS} FROM _lunora_jobs WHERE function_path = ? AND seq > ? ORDER BY seq`

const LIST_BY_FUNCTION_STATE = `SELECT ${ROW_COLUMNS} FROM _lunora_jobs WHERE function_path = ? AND state = ? AND seq > ? ORDER BY seq`

/**
 * `query` with a literal `LIMIT` (a bound one costs SQLite three to four
 * times as much): each limit is its own statement text, and a scheduler
 * uses a few. `limit` is the engine's own number: written as an integer,
 * and left out when it has none (an unbounded read).
 */
const limited = (query: string, limit: number) => {
  const rows = Math.floor(limit)
  return Number.isSafeInteger(rows) ? `${query} LIMIT ${rows}` : query
}

const PUT_CRON = `INSERT OR REPLACE INTO _lunora_crons (
  name, schedule, function_path, args, next_run_at, last_run_at, last_job_id, last_outcome, skipped, target
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

type CronRow = {
  readonly name: string
  readonly schedule: string
  readonly function_path: string
  readonly args: string
  readonly next_run_at: number
  readonly last_run_at: number | null
  readonly last_job_id: string | null
  readonly last_outcome: string | null
  readonly skipped: number
  readonly target: string | null
}

const fromCronRow = (row: CronRow): CronRecord => ({
  name: row.name,
  schedule: row.schedule,
  functionPath: row.function_path,
  args: row.args,
  nextRunAt: row.next_run_at,
  lastRunAt: row.last_run_at,
  lastJobId: row.last_job_id,
  lastOutcome: row.last_outcome,
  skipped: row.skipped,
  target: row.target
})

type JobRow = {
  readonly seq: number
  readonly id: string
  readonly function_path: string
  readonly args: string
  readonly state: string
  readonly run_at: number
  readonly scheduled_for: number
  readonly created_at: number
  readonly started_at: number | null
  readonly completed_at: number | null
  readonly attempt: number
  readonly retry_delays_ms: string
  readonly dead_letter: number
  readonly key: string | null
  readonly shard_key: string | null
  readonly pool: string | null
  readonly target: string | null
  readonly parent_id: string | null
  readonly cancel_requested: number | null
  readonly last_error: string | null
  readonly result: string | null
}

/** Stored retry delays; a value damaged outside the engine reads as none (the job's next failure is its last). */
const parseDelays = (text: string): ReadonlyArray<number> => {
  try {
    const delays: unknown = JSON.parse(text)
    return Array.isArray(delays) && delays.every((delay) => Number.isSafeInteger(delay) && delay >= 0) ? delays : []
  } catch {
    return []
  }
}

/**
 * A raw row (the values of `ROW_COLUMNS` in order, as `cursor.raw()` gives
 * them: about half the price of a row as an object, whose keys workerd makes
 * per row) read as a record.
 */
const fromRaw = (row: ReadonlyArray<unknown>): JobRecord => {
  const column = <K extends keyof JobRow>(name: K) => row[ROW_AT[name]] as JobRow[K]
  return {
    id: column("id"),
    seq: column("seq"),
    functionPath: column("function_path"),
    args: column("args"),
    state: column("state") as JobState,
    runAt: column("run_at"),
    scheduledFor: column("scheduled_for"),
    createdAt: column("created_at"),
    startedAt: column("started_at"),
    completedAt: column("completed_at"),
    attempt: column("attempt"),
    retryDelaysMs: parseDelays(column("retry_delays_ms")),
    deadLetter: column("dead_letter") !== 0,
    key: column("key"),
    shardKey: column("shard_key"),
    pool: column("pool"),
    target: column("target"),
    parentId: column("parent_id"),
    cancelRequested: column("cancel_requested") === 1,
    lastError: column("last_error"),
    result: column("result")
  }
}

/** What a record writes in each column of its row. */
const COLUMN_VALUES: Readonly<Record<string, (job: Omit<JobRecord, "seq">) => unknown>> = {
  id: (job) => job.id,
  function_path: (job) => job.functionPath,
  args: (job) => job.args,
  state: (job) => job.state,
  run_at: (job) => job.runAt,
  scheduled_for: (job) => job.scheduledFor,
  created_at: (job) => job.createdAt,
  started_at: (job) => job.startedAt,
  completed_at: (job) => job.completedAt,
  attempt: (job) => job.attempt,
  retry_delays_ms: (job) => JSON.stringify(job.retryDelaysMs),
  dead_letter: (job) => (job.deadLetter ? 1 : 0),
  key: (job) => job.key,
  shard_key: (job) => job.shardKey,
  pool: (job) => job.pool,
  target: (job) => job.target,
  parent_id: (job) => job.parentId,
  cancel_requested: (job) => (job.cancelRequested ? 1 : 0),
  last_error: (job) => job.lastError,
  result: (job) => job.result
}

/** The values of `columns` (comma-separated names) for a record, in their order. */
const valuesOf = (columns: string) => {
  const values = columns.split(", ").map((column) => COLUMN_VALUES[column]!)
  return (job: Omit<JobRecord, "seq">) => values.map((value) => value(job))
}
const jobValues = valuesOf(JOB_COLUMNS)
const freshValues = valuesOf(FRESH_COLUMNS)
const ownValues = valuesOf(FRESH_OWN)
const sharedValues = valuesOf(FRESH_SHARED)
/** The values of `UPDATE_JOB`: every column but the id, then the id. */
const updateValues = valuesOf(`${MUTABLE_COLUMNS}, id`)

/**
 * Brings the scheduler's tables up to the latest schema version (or to
 * `upTo`), applying each missing migration once, in order, in one
 * transaction. Idempotent.
 *
 * @since 0.1.0
 * @category migrations
 */
export const migrate = (storage: DurableObjectStorage, upTo: number = MIGRATIONS.length): void =>
  storage.transactionSync(() => {
    const sql = storage.sql
    sql.exec(CREATE_MIGRATIONS_TABLE)
    const current = sql.exec<{ version: number }>(SELECT_SCHEMA_VERSION).one().version
    MIGRATIONS.forEach((statements, index) => {
      const version = index + 1
      if (version <= current || version > upTo) return
      for (const statement of statements) sql.exec(statement)
      sql.exec(RECORD_MIGRATION, version)
    })
  })

/**
 * A `Store` over a Durable Object's SQLite storage; migrates it first.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (storage: DurableObjectStorage): Store => {
  migrate(storage)
  const sql = storage.sql
  const rows = (query: string, ...bindings: Array<unknown>): ReadonlyArray<JobRecord> => {
    const cursor = sql.exec(query, ...bindings)
    // workerd's raw iterator has the cursor's `toArray` (its types say only an iterator)
    const raw = (cursor.raw() as unknown as { toArray(): Array<ReadonlyArray<unknown>> }).toArray()
    return raw.map(fromRaw)
  }
  const first = (query: string, ...bindings: Array<unknown>): JobRecord | undefined => rows(query, ...bindings)[0]

  const lastSeq = () => sql.exec<{ seq: number }>(LAST_SEQ).one().seq

  /** One job in one statement: its seq. */
  const insertOne = (job: Omit<JobRecord, "seq">): number => {
    if (isFresh(job)) sql.exec(INSERT_FRESH_JOB, ...freshValues(job))
    else sql.exec(INSERT_JOB, ...jobValues(job))
    return lastSeq()
  }

  const update = (job: JobRecord): void => {
    // no RETURNING: a row it does not return costs about half; the rows written say whether the job was there
    if (sql.exec(UPDATE_JOB, ...updateValues(job)).rowsWritten === 0) {
      throw new Error(`no job ${job.id} to update`)
    }
  }

  return {
    transaction: (f) => storage.transactionSync(f),
    insert: (job) => ({ ...job, seq: insertOne(job) }),
    insertMany: (jobs) => {
      if (jobs.length === 1) return [{ ...jobs[0]!, seq: insertOne(jobs[0]!) }]
      const seqs = new Array<number>(jobs.length)
      const rows: Array<string> = []
      let chars = 0
      let from = 0
      let fresh = true
      /** What the run of new jobs in `rows` shares (`FRESH_SHARED`). */
      let shared: ReadonlyArray<unknown> = []
      const flush = (to: number) => {
        if (rows.length > 0) {
          const text = `[${rows.join(",")}]`
          if (fresh) sql.exec(INSERT_FRESH_JOBS, text, ...shared)
          else sql.exec(INSERT_JOBS, text)
          const last = lastSeq()
          for (let i = from; i < to; i++) seqs[i] = last - (to - 1 - i)
        }
        rows.length = 0
        chars = 0
        from = to
      }
      // in order, so that seqs ascend in it
      jobs.forEach((job, i) => {
        // a run of new jobs, or of others, goes in one statement
        if (isFresh(job) !== fresh) {
          flush(i)
          fresh = !fresh
        }
        if (fresh) {
          const values = sharedValues(job)
          if (rows.length > 0 && values.some((value, k) => value !== shared[k])) flush(i)
          shared = values
        }
        const row = JSON.stringify(fresh ? ownValues(job) : jobValues(job))
        if (row.length > MAX_BATCHED_ROW_CHARS) {
          flush(i)
          seqs[i] = insertOne(job)
          from = i + 1
          return
        }
        if (chars + row.length > MAX_INSERT_CHARS) flush(i)
        rows.push(row)
        chars += row.length + 1
      })
      flush(jobs.length)
      return jobs.map((job, i) => ({ ...job, seq: seqs[i]! }))
    },
    update,
    updateMany: (jobs) => {
      if (jobs.length === 0) return
      if (jobs.length === 1) return update(jobs[0]!)
      const progress = jobs.map(progressOf)
      const first = progress[0]!
      // a bit per progress column all jobs have alike, bound once; the others go in each job's row
      let shared = 0
      for (let i = 1; i < first.length; i++) {
        if (progress.every((values) => values[i] === first[i])) shared |= 1 << (i - 1)
      }
      let statement = UPDATE_PROGRESS.get(shared)
      if (statement === undefined) UPDATE_PROGRESS.set(shared, statement = updateProgressOf(shared))
      const sharedValues = first.filter((_, i) => i > 0 && (shared & (1 << (i - 1))) !== 0)
      let written = 0
      const rows: Array<string> = []
      let chars = 0
      const flush = () => {
        if (rows.length > 0) {
          sql.exec(statement, `[${rows.join(",")}]`, ...sharedValues)
          // rows it changed (`rowsWritten` counts index entries too)
          written += sql.exec<{ n: number }>(CHANGES).one().n
        }
        rows.length = 0
        chars = 0
      }
      for (const values of progress) {
        const row = JSON.stringify(values.filter((_, i) => i === 0 || (shared & (1 << (i - 1))) === 0))
        if (chars + row.length > MAX_INSERT_CHARS) flush()
        rows.push(row)
        chars += row.length + 1
      }
      flush()
      if (written !== jobs.length) throw new Error(`${jobs.length - written} of ${jobs.length} jobs to update are not stored`)
    },
    remove: (id) => {
      sql.exec(DELETE_JOB, id)
    },
    get: (id) => first(SELECT_JOB, id),
    getMany: (ids) => (ids.length === 0 ? [] : rows(SELECT_JOBS, JSON.stringify(ids))),
    getLiveByKey: (key) => first(SELECT_LIVE_BY_KEY, key),
    pendingChildren: (parentId) => rows(SELECT_PENDING_CHILDREN, parentId),
    due: (state, until, limit) => (limit <= 0 ? [] : rows(limited(SELECT_DUE, limit), state, until)),
    nextRunAt: (state) => sql.exec<{ run_at: number }>(SELECT_NEXT_RUN_AT, state).toArray()[0]?.run_at,
    list: ({ afterSeq = 0, functionPath, limit, state }) => {
      if (limit <= 0) return []
      if (state === undefined) {
        return functionPath === undefined
          ? rows(limited(LIST, limit), afterSeq)
          : rows(limited(LIST_BY_FUNCTION, limit), functionPath, afterSeq)
      }
      return functionPath === undefined
        ? rows(limited(LIST_BY_STATE, limit), state, afterSeq)
        : rows(limited(LIST_BY_FUNCTION_STATE, limit), functionPath, state, afterSeq)
    },
    count: (state) => sql.exec<{ n: number }>(COUNT_STATE, state).one().n,
    ready: (pool, until, limit) => (limit <= 0 ? [] : rows(limited(SELECT_READY, limit), pool, until)),
    nextReadyAt: (pool) => sql.exec<{ run_at: number }>(SELECT_NEXT_READY_AT, pool).toArray()[0]?.run_at,
    countInPool: (pool, state) => sql.exec<{ n: number }>(COUNT_IN_POOL, pool, state).one().n,
    putPool: (pool) => {
      sql.exec(
        PUT_POOL,
        pool.name,
        pool.maxConcurrency,
        pool.declaredMaxConcurrency,
        pool.paused ? 1 : 0,
        pool.createdAt,
        pool.pull === true ? 1 : 0
      )
    },
    getPool: (name) =>
      sql.exec<PoolRow>("SELECT * FROM _lunora_pools WHERE name = ?", name).toArray().map(fromPoolRow)[0],
    listPools: () => sql.exec<PoolRow>("SELECT * FROM _lunora_pools ORDER BY name").toArray().map(fromPoolRow),
    putCron: (cron) => {
      sql.exec(
        PUT_CRON,
        cron.name,
        cron.schedule,
        cron.functionPath,
        cron.args,
        cron.nextRunAt,
        cron.lastRunAt,
        cron.lastJobId,
        cron.lastOutcome,
        cron.skipped,
        cron.target
      )
    },
    removeCron: (name) => {
      sql.exec("DELETE FROM _lunora_crons WHERE name = ?", name)
    },
    getCron: (name) =>
      sql.exec<CronRow>("SELECT * FROM _lunora_crons WHERE name = ?", name).toArray().map(fromCronRow)[0],
    listCrons: () => sql.exec<CronRow>("SELECT * FROM _lunora_crons ORDER BY name").toArray().map(fromCronRow),
    dueCrons: (until, limit) =>
      limit <= 0
        ? []
        : sql.exec<CronRow>(limited("SELECT * FROM _lunora_crons WHERE next_run_at <= ? ORDER BY next_run_at, name", limit), until)
          .toArray().map(fromCronRow),
    nextCronAt: () =>
      sql.exec<{ next_run_at: number }>("SELECT next_run_at FROM _lunora_crons ORDER BY next_run_at, name LIMIT 1")
        .toArray()[0]?.next_run_at,
    setting: (name) => readSetting(storage, name),
    putSetting: (name, value) => writeSetting(storage, name, value)
  }
}

/**
 * Reads a setting of this scheduler instance (such as where it dispatches).
 *
 * @since 0.1.0
 * @category settings
 */
export const readSetting = (storage: DurableObjectStorage, name: string): string | undefined =>
  storage.sql.exec<{ value: string }>("SELECT value FROM _lunora_settings WHERE name = ?", name).toArray()[0]?.value

/**
 * Writes a setting of this scheduler instance.
 *
 * @since 0.1.0
 * @category settings
 */
export const writeSetting = (storage: DurableObjectStorage, name: string, value: string): void => {
  storage.sql.exec(
    "INSERT INTO _lunora_settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    name,
    value
  )
}

const LIVE_STATES = ["pending", "inProgress"] as const
const FINISHED_STATES = ["success", "failed", "canceled", "deadLettered"] as const
/** The latest epoch millisecond a `Date` can hold. */
const MAX_DATE_MS = 8_640_000_000_000_000

// a run time that is not a number sorts after every number (SQLite orders TEXT and BLOB after INTEGER and REAL), so
// it is above the bound like one too late for a Date: each side is one index range
const SELECT_DAMAGED_ABOVE = "SELECT id FROM _lunora_jobs WHERE state = ? AND run_at > ?"
const SELECT_DAMAGED_BELOW = "SELECT id FROM _lunora_jobs WHERE state = ? AND run_at < ?"
const DEAD_LETTER_DAMAGED =
  "UPDATE _lunora_jobs SET state = 'deadLettered', run_at = ?, completed_at = ?, last_error = ? WHERE id = ?"
const RESET_DAMAGED = "UPDATE _lunora_jobs SET run_at = ? WHERE id = ?"

/**
 * Repairs job records whose run time is not a time (written by an older
 * version, or by hand): a live one is dead-lettered with the reason, a
 * finished one gets `now` (swept or kept as its state says). Such a record
 * could never be leased, and would hold the alarm. Returns how many were
 * repaired; the look-ups are index ranges, so a healthy store costs a few
 * empty searches.
 *
 * @since 0.1.0
 * @category migrations
 */
export const quarantine = (storage: DurableObjectStorage, now: number): number =>
  storage.transactionSync(() => {
    const sql = storage.sql
    let repaired = 0
    for (const state of [...LIVE_STATES, ...FINISHED_STATES]) {
      const damaged = [
        ...sql.exec<{ id: string }>(SELECT_DAMAGED_ABOVE, state, MAX_DATE_MS).toArray(),
        ...sql.exec<{ id: string }>(SELECT_DAMAGED_BELOW, state, -MAX_DATE_MS).toArray()
      ]
      for (const { id } of damaged) {
        if (state === "pending" || state === "inProgress") {
          sql.exec(DEAD_LETTER_DAMAGED, now, now, "the stored run time was not a time; the job was not run", id)
        } else sql.exec(RESET_DAMAGED, now, id)
        repaired++
      }
    }
    return repaired
  })
