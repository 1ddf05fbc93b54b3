/**
 * The operator commands of `lunora-scheduler`: clients of the admin API
 * (`Admin.Api`) that a Worker serves under `Admin.prefix`. `jobs` (ls, get,
 * cancel, replay, purge), `crons ls` and `crons trigger` (subcommands of the
 * codegen command `crons`), `pools` (ls, status, pause, resume, resize,
 * cancel-queued) and `stats`, each with `--url` (env `LUNORA_SCHEDULER_URL`),
 * `--token` (env `LUNORA_SCHEDULER_TOKEN`; never printed), `--instance`
 * (default `"default"`), `--timeout` (per request, default 30 seconds) and
 * `--json` (the API's encoded answer on stdout).
 *
 * Exit codes: 0 done; 2 usage or bad input (`InvalidOptions`, `InvalidInput`);
 * 3 not found (`JobNotFound`, `PoolNotFound`, `CronNotFound`); 4
 * `Unauthorized`; 5 conflict (`JobNotReplayable`, `CronRunInProgress`); 6
 * unavailable (`SchedulerUnavailable`, `WorkerUnreachable`, `UnexpectedResponse`).
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import type * as HttpApiError from "@effect/platform/HttpApiError"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import type * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as Admin from "../Admin.js"
import * as CronRegistry from "../CronRegistry.js"
import * as Job from "../Job.js"
import * as Scheduler from "../Scheduler.js"
import type {
  CronNotFound,
  CronRunInProgress,
  InvalidOptions,
  JobNotFound,
  JobNotReplayable,
  PoolNotFound,
  SchedulerUnavailable
} from "../SchedulerError.js"
import * as Workpool from "../Workpool.js"

// ---------------------------------------------------------------------------
// errors

const messageOf = (error: unknown) => error instanceof Error ? error.message : String(error)

/** The messages of an error and of its causes, `: `-joined (`fetch failed: connect ECONNREFUSED 127.0.0.1:8787`). */
const causeText = (error: unknown): string => {
  const parts: Array<string> = []
  for (let current = error, depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    const text = messageOf(current)
    if (text !== "" && !parts.includes(text)) parts.push(text)
    current = (current as { readonly cause?: unknown }).cause
  }
  return parts.join(": ")
}

/** One line: the message of an error, its line breaks folded. */
const oneLine = (text: string) => text.replace(/\s*\n\s*/g, " ").trim()

/**
 * The command line or what it would send was refused before anything was
 * sent: a `--url` that is not an http(s) URL, or a value the admin API's
 * schemas refuse (an instance or pool name, a `maxConcurrency`).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidInput extends Data.TaggedError("InvalidInput")<{
  readonly reason: string
}> {
  override get message(): string {
    return this.reason
  }
}

/**
 * No answer from the Worker at `--url`: nothing listens there, the name does
 * not resolve, the connection broke, or no answer came within `--timeout`.
 *
 * @since 0.1.0
 * @category errors
 */
export class WorkerUnreachable extends Data.TaggedError("WorkerUnreachable")<{
  readonly url: string
  readonly reason: string
}> {
  override get message(): string {
    return `cannot reach ${this.url}: ${this.reason}`
  }
}

/**
 * The Worker at `--url` answered, but not as the admin API does (an
 * unexpected status or body: the admin API is not mounted at
 * `Admin.prefix`, or the Worker failed).
 *
 * @since 0.1.0
 * @category errors
 */
export class UnexpectedResponse extends Data.TaggedError("UnexpectedResponse")<{
  readonly url: string
  readonly status: number | undefined
  readonly reason: string
}> {
  override get message(): string {
    const status = this.status === undefined ? "" : ` (HTTP ${this.status})`
    return `${this.url} did not answer as the admin API${status}: ${this.reason}`
  }
}

/**
 * A command group (`jobs`, `pools`) was given without one of its subcommands.
 *
 * @since 0.1.0
 * @category errors
 */
export class MissingSubcommand extends Data.TaggedError("MissingSubcommand")<{
  readonly command: string
  readonly subcommands: ReadonlyArray<string>
}> {
  override get message(): string {
    return `usage: lunora-scheduler ${this.command} <${this.subcommands.join("|")}> ... (see lunora-scheduler ${this.command} --help)`
  }
}

/**
 * What an operator command can fail with: the admin API's typed errors and
 * this module's.
 *
 * @since 0.1.0
 * @category errors
 */
export type AdminError =
  | JobNotFound
  | JobNotReplayable
  | PoolNotFound
  | CronNotFound
  | CronRunInProgress
  | InvalidOptions
  | SchedulerUnavailable
  | Admin.Unauthorized
  | HttpApiError.HttpApiDecodeError
  | InvalidInput
  | WorkerUnreachable
  | UnexpectedResponse

/**
 * The exit code of each error of an operator command, by its tag.
 *
 * @since 0.1.0
 * @category errors
 */
export const exitCodes: { readonly [Tag in AdminError["_tag"]]: number } = {
  InvalidInput: 2,
  InvalidOptions: 2,
  HttpApiDecodeError: 2,
  JobNotFound: 3,
  PoolNotFound: 3,
  CronNotFound: 3,
  Unauthorized: 4,
  JobNotReplayable: 5,
  CronRunInProgress: 5,
  SchedulerUnavailable: 6,
  WorkerUnreachable: 6,
  UnexpectedResponse: 6
}

/**
 * Whether a command's failure is one of `AdminError`.
 *
 * @since 0.1.0
 * @category errors
 */
export const isAdminError = (error: { readonly _tag: string }): error is AdminError => Object.hasOwn(exitCodes, error._tag)

/**
 * Prints an operator command's failure to stderr, as one line naming it
 * (`lunora-scheduler: JobNotFound: job … not found`), and succeeds with its
 * exit code.
 *
 * @since 0.1.0
 * @category errors
 */
export const report = (error: AdminError): Effect.Effect<number> =>
  Effect.as(Console.error(`lunora-scheduler: ${error._tag}: ${oneLine(error.message)}`), exitCodes[error._tag])

// ---------------------------------------------------------------------------
// the connection

type Client = Effect.Effect.Success<ReturnType<typeof Admin.client>>

type ApiError = Exclude<AdminError, InvalidInput | WorkerUnreachable | UnexpectedResponse>

/** What every operator command takes. */
interface Common {
  readonly url: string
  readonly token: Redacted.Redacted<string>
  readonly instance: string
  readonly timeout: Duration.Duration
  readonly json: boolean
}

/** A `--timeout`: a positive, finite Effect duration ("30 seconds", "500 millis"). */
const TimeoutFromText = Schema.transformOrFail(Schema.String, Schema.DurationFromSelf, {
  strict: true,
  decode: (text, _, ast) =>
    Option.match(Option.filter(Duration.decodeUnknown(text), (d) => Duration.isFinite(d) && Duration.greaterThan(d, Duration.zero)), {
      onNone: () => ParseResult.fail(new ParseResult.Type(ast, text, `--timeout must be a positive duration such as "30 seconds", got ${JSON.stringify(text)}`)),
      onSome: ParseResult.succeed
    }),
  encode: (duration) => ParseResult.succeed(Duration.format(duration))
})

const common = {
  url: Options.text("url").pipe(
    Options.withPseudoName("origin"),
    Options.withFallbackConfig(Config.string("LUNORA_SCHEDULER_URL")),
    Options.withDescription(
      "The origin of the Worker that mounts the admin API (https://app.example.com); " +
        "default: the environment variable LUNORA_SCHEDULER_URL."
    )
  ),
  token: Options.redacted("token").pipe(
    Options.withPseudoName("token"),
    Options.withFallbackConfig(Config.redacted("LUNORA_SCHEDULER_TOKEN")),
    Options.withDescription(
      "The admin token (the Worker's LUNORA_SCHEDULER_ADMIN_TOKEN), sent as a bearer token and never printed; " +
        "default: the environment variable LUNORA_SCHEDULER_TOKEN (prefer it: an option shows in the process list)."
    )
  ),
  instance: Options.text("instance").pipe(
    Options.withPseudoName("name"),
    Options.withDefault("default"),
    Options.withDescription("The scheduler instance (its instanceName).")
  ),
  timeout: Options.text("timeout").pipe(
    Options.withPseudoName("duration"),
    Options.withSchema(TimeoutFromText),
    Options.withDefault(Duration.seconds(30)),
    Options.withDescription("How long one request of the admin API may take (\"30 seconds\", \"2 minutes\"); default 30 seconds.")
  ),
  json: Options.boolean("json").pipe(
    Options.withDescription("Print the admin API's answer, encoded, as JSON on stdout instead of text.")
  )
} as const

/** The `--url` as the client's base: an http(s) URL, without a trailing slash. */
const baseOf = (url: string): Effect.Effect<string, InvalidInput> => {
  let parsed: URL | undefined
  try {
    parsed = new URL(url)
  } catch {
    parsed = undefined
  }
  if (parsed === undefined || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
    return Effect.fail(new InvalidInput({ reason: `--url must be an http(s) URL, got ${JSON.stringify(url)}` }))
  }
  return Effect.succeed(parsed.href.replace(/\/+$/, ""))
}

const issuesOf = (error: ParseResult.ParseError) =>
  ParseResult.ArrayFormatter.formatErrorSync(error)
    .map((issue) => (issue.path.length === 0 ? issue.message : `${issue.path.join(".")}: ${issue.message}`))
    .join("; ")

/** A call of the admin API, its transport and decoding failures told apart from the API's own errors. */
type Call = <A>(
  request: (client: Client) => Effect.Effect<A, ApiError | HttpClientError.HttpClientError | ParseResult.ParseError>
) => Effect.Effect<A, AdminError>

/** The admin API at `--url` with the token, over `fetch`. */
const connect = (options: Common): Effect.Effect<Call, InvalidInput> =>
  Effect.gen(function*() {
    const url = yield* baseOf(options.url)
    // a ParseError before the request was answered is the input's; after, the answer's
    const answered = yield* Ref.make(false)
    const http = HttpClient.tap(yield* HttpClient.HttpClient, () => Ref.set(answered, true))
    const client = yield* Effect.provideService(Admin.client({ url, token: options.token }), HttpClient.HttpClient, http)
    const call: Call = (request) =>
      Effect.zipRight(Ref.set(answered, false), request(client)).pipe(
        Effect.timeoutFail({
          duration: options.timeout,
          onTimeout: () => new WorkerUnreachable({ url, reason: `no answer within ${Duration.format(options.timeout)}` })
        }),
        Effect.catchTags({
          RequestError: (error) => Effect.fail(new WorkerUnreachable({ url, reason: causeText(error.cause ?? error) })),
          ResponseError: (error) =>
            Effect.fail(
              new UnexpectedResponse({ url, status: error.response.status, reason: error.description ?? error.reason })
            ),
          ParseError: (error) =>
            Effect.flatMap(Ref.get(answered), (after) =>
              Effect.fail(
                after
                  ? new UnexpectedResponse({ url, status: undefined, reason: issuesOf(error) })
                  : new InvalidInput({ reason: issuesOf(error) })
              ))
        })
      )
    return call
  }).pipe(Effect.provide(Admin.clientLayer))

// ---------------------------------------------------------------------------
// output

/** Prints `value`: encoded with `schema` as JSON with `--json`, else as `text` gives it. */
const output = <A, I>(json: boolean, schema: Schema.Schema<A, I>, value: A, text: (value: A) => string) =>
  json
    ? Effect.flatMap(Effect.orDie(Schema.encode(schema)(value)), (encoded) => Console.log(JSON.stringify(encoded, null, 2)))
    : Console.log(text(value))

/** Columns padded to their widest cell, two spaces apart. */
const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]!))).join("  ")
  return [header, ...rows].map(line).join("\n")
}

/** `key: value` lines, the values aligned. */
const fields = (pairs: ReadonlyArray<readonly [string, string]>): string => {
  const width = Math.max(...pairs.map(([key]) => key.length)) + 1
  return pairs.map(([key, value]) => `${`${key}:`.padEnd(width)} ${value}`).join("\n")
}

const NONE = "-"
const time = (at: DateTime.Utc) => DateTime.formatIso(at)
const optional = <A>(value: Option.Option<A>, show: (a: A) => string = String) =>
  Option.match(value, { onNone: () => NONE, onSome: show })
const yesNo = (value: boolean) => (value ? "yes" : "no")

const scheduleText = (schedule: CronRegistry.CronInfo["schedule"]) =>
  schedule._tag === "Interval"
    ? `every ${Duration.format(Duration.millis(schedule.ms))}`
    : `${schedule.expression} (${schedule.timeZone})`

const jobsTable = (jobs: ReadonlyArray<Job.JobInfo>) =>
  jobs.length === 0 ? "no jobs" : table(
    ["ID", "STATE", "FUNCTION", "SCHEDULED FOR", "ATTEMPT", "POOL"],
    jobs.map((job) => [
      job.id,
      job.state,
      job.functionPath,
      time(job.scheduledFor),
      `${job.attempt}/${job.maxAttempts}`,
      optional(job.pool)
    ])
  )

const jobFields = (job: Job.JobInfo) =>
  fields([
    ["id", job.id],
    ["function", job.functionPath],
    ["state", job.state],
    ["scheduled for", time(job.scheduledFor)],
    ["created at", time(job.createdAt)],
    ["started at", optional(job.startedAt, time)],
    ["completed at", optional(job.completedAt, time)],
    ["attempt", `${job.attempt} of ${job.maxAttempts}`],
    ["key", optional(job.key)],
    ["shard key", optional(job.shardKey)],
    ["pool", optional(job.pool)],
    ["parent", optional(job.parentId)],
    ["last error", optional(job.lastError, oneLine)],
    ["args", JSON.stringify(job.args)],
    ["result", optional(job.result, (result) => JSON.stringify(result))]
  ])

const cancelFields = (result: Scheduler.CancelResult) =>
  fields(
    result._tag === "Canceled"
      ? [["outcome", "canceled"], ["id", result.id], ["children canceled", String(result.children)]]
      : result._tag === "TooLate"
      ? [["outcome", "too late: the job is in progress"], ["id", result.id], ["children canceled", String(result.children)]]
      : [["outcome", `already finished (${result.state})`], ["id", result.id]]
  )

const cronsTable = (crons: ReadonlyArray<CronRegistry.CronInfo>) =>
  crons.length === 0 ? "no crons" : table(
    ["NAME", "SCHEDULE", "FUNCTION", "NEXT RUN", "LAST RUN", "LAST OUTCOME", "LAST STATE"],
    crons.map((cron) => [
      cron.name,
      scheduleText(cron.schedule),
      cron.functionPath,
      time(cron.nextRunAt),
      optional(cron.lastRunAt, time),
      optional(cron.lastOutcome),
      optional(cron.lastRunState)
    ])
  )

const poolsTable = (pools: ReadonlyArray<Workpool.PoolStatus>) =>
  pools.length === 0 ? "no pools" : table(
    ["NAME", "CAP", "IN FLIGHT", "QUEUED", "PAUSED", "DEAD LETTERS"],
    pools.map((pool) => [
      pool.name,
      String(pool.maxConcurrency),
      String(pool.inFlight),
      String(pool.queued),
      yesNo(pool.paused),
      String(pool.deadLettered)
    ])
  )

const poolFields = (pool: Workpool.PoolStatus) =>
  fields([
    ["name", pool.name],
    ["max concurrency", String(pool.maxConcurrency)],
    ["paused", yesNo(pool.paused)],
    ["in flight", String(pool.inFlight)],
    ["queued", String(pool.queued)],
    ["dead letters", String(pool.deadLettered)],
    ["oldest queued", optional(pool.oldestQueuedAt, time)],
    ["oldest waited", optional(pool.oldestQueuedAge, Duration.format)]
  ])

const statsFields = (stats: Admin.Stats) =>
  fields([
    ["instance", stats.instance],
    ["pending", String(stats.jobs.pending)],
    ["in progress", String(stats.jobs.inProgress)],
    ["success", String(stats.jobs.success)],
    ["failed", String(stats.jobs.failed)],
    ["canceled", String(stats.jobs.canceled)],
    ["dead-lettered", String(stats.jobs.deadLettered)],
    ["crons", String(stats.crons)],
    ["pools", String(stats.pools)]
  ])

const plural = (count: number, one: string, many: string) => `${count} ${count === 1 ? one : many}`

// ---------------------------------------------------------------------------
// jobs

const Limit = Schema.Int.pipe(Schema.between(1, 1000, { message: () => "--limit must be an integer from 1 to 1000" }))

const limitOption = Options.integer("limit").pipe(Options.withSchema(Limit))

const functionOption = Options.text("function").pipe(
  Options.withPseudoName("path"),
  Options.optional,
  Options.withDescription("Only the jobs of this function path (\"namespace:function\").")
)

const idArg = Args.text({ name: "id" }).pipe(Args.withDescription("The job's id."))

/** The defined fields of `fields`, for a schema whose fields are optional (`exactOptionalPropertyTypes`). */
const defined = <A extends Record<string, unknown>>(fields: A) =>
  Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as {
    readonly [K in keyof A]?: Exclude<A[K], undefined>
  }

/**
 * `jobs ls`: a page of an instance's jobs (filtered by `--state` and
 * `--function`), or with `--all` every page, following the cursors, with a
 * progress line per page on stderr.
 *
 * @since 0.1.0
 * @category commands
 */
export const jobsList = Command.make(
  "ls",
  {
    ...common,
    state: Options.choice("state", Job.JobState.literals).pipe(
      Options.optional,
      Options.withDescription("Only the jobs in this state.")
    ),
    functionPath: functionOption,
    limit: limitOption.pipe(
      Options.optional,
      Options.withDescription("Jobs per page, 1 to 1000 (the API's default: 100).")
    ),
    cursor: Options.text("cursor").pipe(
      Options.optional,
      Options.withDescription("Go on from the page whose cursor this is (the filters are the cursor's).")
    ),
    all: Options.boolean("all").pipe(Options.withDescription("Every page, following the cursors to the end."))
  },
  Effect.fn("lunora-scheduler.jobs.ls")(function*(options) {
    const call = yield* connect(options)
    const path = { instance: options.instance }
    const filter = defined({
      state: Option.getOrUndefined(options.state),
      functionPath: Option.getOrUndefined(options.functionPath),
      limit: Option.getOrUndefined(options.limit)
    })
    const first = yield* call((client) =>
      client.jobs.list({ path, urlParams: { ...filter, ...defined({ cursor: Option.getOrUndefined(options.cursor) }) } })
    )
    if (!options.all) {
      yield* output(options.json, Scheduler.JobPage, first, (page) => jobsTable(page.jobs))
      if (!options.json && Option.isSome(first.cursor)) {
        yield* Console.error(`more jobs: --cursor ${first.cursor.value} (or --all)`)
      }
      return
    }
    const jobs = [...first.jobs]
    let cursor = first.cursor
    let pages = 1
    yield* Console.error(`page ${pages}: ${plural(first.jobs.length, "job", "jobs")} (${jobs.length} so far)`)
    while (Option.isSome(cursor)) {
      const next = cursor.value
      // a cursor carries its page's filter: only the page size goes with it
      const page = yield* call((client) => client.jobs.list({ path, urlParams: { ...defined({ limit: filter.limit }), cursor: next } }))
      jobs.push(...page.jobs)
      cursor = page.cursor
      pages++
      yield* Console.error(`page ${pages}: ${plural(page.jobs.length, "job", "jobs")} (${jobs.length} so far)`)
    }
    yield* output(options.json, Scheduler.JobPage, new Scheduler.JobPage({ jobs, cursor: Option.none() }), (page) => jobsTable(page.jobs))
  })
).pipe(Command.withDescription("Lists an instance's jobs, in the order they were scheduled."))

/**
 * `jobs get <id>`: one job.
 *
 * @since 0.1.0
 * @category commands
 */
export const jobsGet = Command.make(
  "get",
  { ...common, id: idArg },
  Effect.fn("lunora-scheduler.jobs.get")(function*(options) {
    const call = yield* connect(options)
    const job = yield* call((client) => client.jobs.get({ path: { instance: options.instance, id: options.id } }))
    yield* output(options.json, Job.JobInfo, job, jobFields)
  })
).pipe(Command.withDescription("Shows one job: its state, times, attempts, payload, result and last error."))

/**
 * `jobs cancel <id>`: cancels a pending job (and its pending children).
 *
 * @since 0.1.0
 * @category commands
 */
export const jobsCancel = Command.make(
  "cancel",
  { ...common, id: idArg },
  Effect.fn("lunora-scheduler.jobs.cancel")(function*(options) {
    const call = yield* connect(options)
    const result = yield* call((client) => client.jobs.cancel({ path: { instance: options.instance, id: options.id } }))
    yield* output(options.json, Scheduler.CancelResult, result, cancelFields)
  })
).pipe(
  Command.withDescription(
    "Cancels a pending job and the pending jobs its handler scheduled. A job in progress or finished is left as it " +
      "is (the outcome says so; the exit code is 0)."
  )
)

/**
 * `jobs replay <id>`: runs a dead-lettered or failed job again.
 *
 * @since 0.1.0
 * @category commands
 */
export const jobsReplay = Command.make(
  "replay",
  { ...common, id: idArg },
  Effect.fn("lunora-scheduler.jobs.replay")(function*(options) {
    const call = yield* connect(options)
    const job = yield* call((client) => client.jobs.replay({ path: { instance: options.instance, id: options.id } }))
    yield* output(options.json, Job.JobInfo, job, jobFields)
  })
).pipe(
  Command.withDescription(
    "Runs a dead-lettered (or failed) job again from its first attempt, now; exit 5 (JobNotReplayable) for any other."
  )
)

const PURGE_BATCH = 1000

const Purged = Schema.Struct({ purged: Schema.Int })

/**
 * `jobs purge`: deletes dead letters, the given `--id`s or, in rounds of up
 * to `--limit` (default 1000) until a round purges none, all of them (of
 * one function with `--function`), with a progress line per round on stderr.
 *
 * @since 0.1.0
 * @category commands
 */
export const jobsPurge = Command.make(
  "purge",
  {
    ...common,
    functionPath: functionOption,
    limit: limitOption.pipe(
      Options.withDefault(PURGE_BATCH),
      Options.withDescription("Dead letters per round, 1 to 1000.")
    ),
    ids: Options.text("id").pipe(
      Options.repeated,
      Options.withDescription("Only this dead letter (repeat for several); without it, every dead letter, in rounds.")
    )
  },
  Effect.fn("lunora-scheduler.jobs.purge")(function*(options) {
    const call = yield* connect(options)
    const path = { instance: options.instance }
    const functionPath = defined({ functionPath: Option.getOrUndefined(options.functionPath) })
    const purge = (payload: Scheduler.PurgeQuery) =>
      Effect.map(call((client) => client.jobs.purge({ path, payload })), (answer) => answer.purged)
    let total = 0
    if (options.ids.length > 0) {
      const batches = Math.ceil(options.ids.length / PURGE_BATCH)
      for (let start = 0; start < options.ids.length; start += PURGE_BATCH) {
        total += yield* purge({ ...functionPath, ids: options.ids.slice(start, start + PURGE_BATCH) })
        if (batches > 1) yield* Console.error(`purged ${total} so far`)
      }
    } else {
      for (;;) {
        const purged = yield* purge({ ...functionPath, limit: options.limit })
        if (purged === 0) break
        total += purged
        yield* Console.error(`purged ${total} so far`)
      }
    }
    yield* output(options.json, Purged, { purged: total }, ({ purged }) =>
      `purged ${plural(purged, "dead letter", "dead letters")}`)
  })
).pipe(
  Command.withDescription(
    "Deletes dead letters: the given --id ones, or all of them (of one --function), in rounds of up to --limit " +
      "until a round purges none, printing the count so far to stderr after each."
  )
)

/**
 * `jobs`: the job commands.
 *
 * @since 0.1.0
 * @category commands
 */
export const jobs = Command.make(
  "jobs",
  {},
  () => new MissingSubcommand({ command: "jobs", subcommands: ["ls", "get", "cancel", "replay", "purge"] })
).pipe(
  Command.withDescription("Lists, shows, cancels, replays and purges the jobs of a scheduler instance."),
  Command.withSubcommands([jobsList, jobsGet, jobsCancel, jobsReplay, jobsPurge])
)

// ---------------------------------------------------------------------------
// crons

/**
 * `crons ls`: an instance's crons and their last runs.
 *
 * @since 0.1.0
 * @category commands
 */
export const cronsList = Command.make(
  "ls",
  common,
  Effect.fn("lunora-scheduler.crons.ls")(function*(options) {
    const call = yield* connect(options)
    const crons = yield* call((client) => client.crons.list({ path: { instance: options.instance } }))
    yield* output(options.json, Schema.Array(CronRegistry.CronInfo), crons, cronsTable)
  })
).pipe(Command.withDescription("Lists the crons an instance holds: schedule, next run, and the last run's outcome."))

const Triggered = Schema.Struct({ id: Job.JobId })

/**
 * `crons trigger <name>`: runs a cron now.
 *
 * @since 0.1.0
 * @category commands
 */
export const cronsTrigger = Command.make(
  "trigger",
  { ...common, name: Args.text({ name: "name" }).pipe(Args.withDescription("The cron's name.")) },
  Effect.fn("lunora-scheduler.crons.trigger")(function*(options) {
    const call = yield* connect(options)
    const triggered = yield* call((client) =>
      client.crons.trigger({ path: { instance: options.instance }, payload: { name: options.name } })
    )
    yield* output(options.json, Triggered, triggered, ({ id }) => fields([["cron", options.name], ["job", id]]))
  })
).pipe(
  Command.withDescription(
    "Runs a cron now, outside its schedule: its job's id. Exit 5 (CronRunInProgress) while a run is pending or in progress."
  )
)

// ---------------------------------------------------------------------------
// pools

const poolArg = Args.text({ name: "name" }).pipe(Args.withDescription("The pool's name."))

/**
 * `pools ls`: an instance's pools.
 *
 * @since 0.1.0
 * @category commands
 */
export const poolsList = Command.make(
  "ls",
  common,
  Effect.fn("lunora-scheduler.pools.ls")(function*(options) {
    const call = yield* connect(options)
    const pools = yield* call((client) => client.pools.list({ path: { instance: options.instance } }))
    yield* output(options.json, Schema.Array(Workpool.PoolStatus), pools, poolsTable)
  })
).pipe(Command.withDescription("Lists an instance's pools: cap, in flight, queued, paused, dead letters."))

const poolCommand = (
  name: "status" | "pause" | "resume",
  description: string,
  request: (client: Client, path: { readonly instance: string; readonly name: string }) => Effect.Effect<
    Workpool.PoolStatus,
    ApiError | HttpClientError.HttpClientError | ParseResult.ParseError
  >
) =>
  Command.make(
    name,
    { ...common, name: poolArg },
    Effect.fn(`lunora-scheduler.pools.${name}`)(function*(options) {
      const call = yield* connect(options)
      const status = yield* call((client) => request(client, { instance: options.instance, name: options.name }))
      yield* output(options.json, Workpool.PoolStatus, status, poolFields)
    })
  ).pipe(Command.withDescription(description))

/**
 * `pools status <name>`: one pool.
 *
 * @since 0.1.0
 * @category commands
 */
export const poolsStatus = poolCommand(
  "status",
  "Shows one pool: cap, paused, in flight, queued, dead letters, and how long the first in line has waited.",
  (client, path) => client.pools.status({ path })
)

/**
 * `pools pause <name>`: starts no more of the pool's jobs; those in flight finish.
 *
 * @since 0.1.0
 * @category commands
 */
export const poolsPause = poolCommand(
  "pause",
  "Pauses a pool: none of its queued jobs starts until it is resumed; those in flight finish. Shows it after.",
  (client, path) => client.pools.pause({ path })
)

/**
 * `pools resume <name>`: starts the pool's queued jobs again.
 *
 * @since 0.1.0
 * @category commands
 */
export const poolsResume = poolCommand(
  "resume",
  "Resumes a paused pool. Shows it after.",
  (client, path) => client.pools.resume({ path })
)

/**
 * `pools resize <name> <maxConcurrency>`: sets the pool's cap.
 *
 * @since 0.1.0
 * @category commands
 */
export const poolsResize = Command.make(
  "resize",
  {
    ...common,
    name: poolArg,
    maxConcurrency: Args.integer({ name: "maxConcurrency" }).pipe(
      Args.withDescription("How many of its jobs may run at once, 1 to 1000.")
    )
  },
  Effect.fn("lunora-scheduler.pools.resize")(function*(options) {
    const call = yield* connect(options)
    const status = yield* call((client) =>
      client.pools.resize({
        path: { instance: options.instance, name: options.name },
        payload: { maxConcurrency: options.maxConcurrency }
      })
    )
    yield* output(options.json, Workpool.PoolStatus, status, poolFields)
  })
).pipe(Command.withDescription("Sets how many of a pool's jobs may run at once. Shows it after."))

/**
 * `pools cancel-queued <name>`: cancels every queued job of the pool; those in flight finish.
 *
 * @since 0.1.0
 * @category commands
 */
export const poolsCancelQueued = Command.make(
  "cancel-queued",
  { ...common, name: poolArg },
  Effect.fn("lunora-scheduler.pools.cancel-queued")(function*(options) {
    const call = yield* connect(options)
    const result = yield* call((client) =>
      client.pools.cancelQueued({ path: { instance: options.instance, name: options.name } })
    )
    yield* output(
      options.json,
      Schema.Struct({ canceled: Schema.Int }),
      result,
      ({ canceled }) => `canceled ${canceled} queued ${canceled === 1 ? "job" : "jobs"} of ${options.name}`
    )
  })
).pipe(Command.withDescription("Cancels every queued job of a pool; the jobs in flight finish. Prints how many."))

/**
 * `pools`: the pool commands.
 *
 * @since 0.1.0
 * @category commands
 */
export const pools = Command.make(
  "pools",
  {},
  () =>
    new MissingSubcommand({ command: "pools", subcommands: ["ls", "status", "pause", "resume", "resize", "cancel-queued"] })
).pipe(
  Command.withDescription(
    "Lists, shows, pauses, resumes and resizes the workpools of a scheduler instance, and cancels their queued jobs."
  ),
  Command.withSubcommands([poolsList, poolsStatus, poolsPause, poolsResume, poolsResize, poolsCancelQueued])
)

// ---------------------------------------------------------------------------
// stats

/**
 * `stats`: how many jobs an instance holds in each state, and its crons and pools.
 *
 * @since 0.1.0
 * @category commands
 */
export const stats = Command.make(
  "stats",
  common,
  Effect.fn("lunora-scheduler.stats")(function*(options) {
    const call = yield* connect(options)
    const counts = yield* call((client) => client.stats.get({ path: { instance: options.instance } }))
    yield* output(options.json, Admin.Stats, counts, statsFields)
  })
).pipe(Command.withDescription("Counts an instance's jobs in each state, and its crons and pools."))
