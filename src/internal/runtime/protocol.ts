/**
 * The `SchedulerDO`'s operations and the Schema of each one's arguments,
 * declared once. The Durable Object checks every call against these before
 * anything is read or written (the hot calls by plain checks of the same
 * rules, held to the Schema by a property test), so a malformed call (from a
 * client of another version, or a direct call on the stub) is refused with a
 * typed error and stores nothing.
 */
import { MAX_PULL_LEASE_MS, MIN_PULL_LEASE_MS } from "../engine/pools.js"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { CronSchedule, problemOf } from "../domain/cronSchedule.js"
import * as Job from "../../Job.js"
import * as Retry from "../../Retry.js"
import { InvalidOptions, InvalidPayload, InvalidTime } from "../../SchedulerError.js"
import type { Refusal } from "../domain/failure.js"
import type * as EngineOperations from "../engine/operations.js"
import { jsonTextProblem } from "../domain/payload.js"
import { MaxConcurrency, OPTION_TEXT_MAX, OptionText, POOL_NAME_PATTERN, PoolName } from "../domain/names.js"
import { FUNCTION_PATH_PATTERN, JOB_ID_PATTERN } from "../domain/job.js"
import { MAX_DELAY_MS } from "../domain/time.js"
import { MAX_SHARDS, ShardCount } from "../domain/shards.js"
import type { Sample } from "./metrics.js"
import { OwnTarget } from "../domain/targets.js"
import { BINDING_PATTERN, DispatchTarget, MAX_BATCH_JOBS, ORIGIN_URL_PATTERN } from "./wire.js"

/** The most jobs one call may store; `submit` and `enqueueMany` send larger batches in several calls. */
export const MAX_JOBS_PER_CALL = 10_000

/** The furthest epoch milliseconds from 0 that make a valid `Date`. */
const MAX_EPOCH_MILLIS = 8_640_000_000_000_000

/** Epoch milliseconds that make a valid `Date`. */
const EpochMillis = Schema.Number.pipe(
  Schema.int({ message: () => "a time is an integer number of epoch milliseconds" }),
  Schema.between(-MAX_EPOCH_MILLIS, MAX_EPOCH_MILLIS, { message: () => "a time must be a valid Date" })
)

/** JSON text the engine can keep: within the payload's size and depth limits. */
const JsonText = Schema.String.pipe(
  Schema.filter((text) => {
    const problem = jsonTextProblem(text)
    return problem === undefined || `${problem.problem}: ${problem.reason}`
  })
)

/** A job id as lookups take it: any short string (one that is not an id is simply not found). */
const LOOKUP_ID_MAX = 128
const LookupId = Schema.String.pipe(Schema.maxLength(LOOKUP_ID_MAX))

/** A dispatch request's lease, as the confirmations take it: any short string (one not in flight is not confirmed). */
const Lease = LookupId

const CronName = Schema.String.pipe(Schema.pattern(/^[\w .:\-/]{1,128}$/))

/** A job to store, as the services build it (`submission.prepare`). */
const NewJob = Schema.Struct({
  id: Job.JobId,
  functionPath: Job.FunctionPath,
  args: JsonText,
  runAt: EpochMillis,
  retryDelaysMs: Schema.Array(Schema.Int.pipe(Schema.between(0, MAX_DELAY_MS))).pipe(
    Schema.maxItems(Retry.MAX_ATTEMPTS - 1)
  ),
  deadLetter: Schema.Boolean,
  key: Schema.NullOr(OptionText),
  shardKey: Schema.NullOr(OptionText),
  pool: Schema.NullOr(PoolName),
  parentId: Schema.optional(Schema.NullOr(LookupId)),
  own: Schema.optional(Schema.NullOr(OwnTarget))
})

const NewJobs = Schema.Array(NewJob).pipe(Schema.maxItems(MAX_JOBS_PER_CALL))

const CronDefinition = Schema.Struct({
  name: CronName,
  schedule: CronSchedule.pipe(Schema.filter((schedule) => problemOf(schedule) ?? true)),
  functionPath: Job.FunctionPath,
  args: JsonText,
  own: Schema.optional(OwnTarget)
})

const Limit = Schema.Int.pipe(Schema.between(1, 1000))

/** How long a pulled job's lease lasts (ms). */
const PullLease = Schema.Int.pipe(Schema.between(MIN_PULL_LEASE_MS, MAX_PULL_LEASE_MS))

/** An alert as the `Alerts` service declares it. */
const AlertDefinition = Schema.Struct({
  name: CronName,
  trigger: Schema.Union(
    Schema.TaggedStruct("DeadLetter", { functionPath: Schema.NullOr(Job.FunctionPath) }),
    Schema.TaggedStruct("ErrorRate", {
      above: Schema.Number.pipe(Schema.greaterThanOrEqualTo(0), Schema.lessThan(1)),
      windowMs: Schema.Int.pipe(Schema.between(1_000, 86_400_000)),
      minAttempts: Schema.Int.pipe(Schema.between(1, 1_000_000)),
      functionPath: Schema.NullOr(Job.FunctionPath)
    })
  ),
  functionPath: Job.FunctionPath,
  retryDelaysMs: Schema.Array(Schema.Int.pipe(Schema.between(0, MAX_DELAY_MS))).pipe(Schema.maxItems(Retry.MAX_ATTEMPTS - 1))
})

/** Every operation, with the Schema of its arguments. */
export const Operations = {
  schedule: Schema.Tuple(DispatchTarget, NewJobs),
  cancel: Schema.Tuple(LookupId, Schema.optionalElement(Schema.UndefinedOr(PoolName))),
  get: Schema.Tuple(LookupId),
  list: Schema.Tuple(Schema.Struct({
    state: Schema.optional(Job.JobState),
    functionPath: Schema.optional(Schema.String.pipe(Schema.maxLength(201))),
    afterSeq: Schema.optional(Schema.NonNegativeInt),
    limit: Schema.Int.pipe(Schema.between(1, 1001))
  })),
  replay: Schema.Tuple(LookupId),
  purge: Schema.Tuple(Schema.Struct({
    ids: Schema.optional(Schema.Array(LookupId).pipe(Schema.maxItems(1000))),
    functionPath: Schema.optional(Schema.String.pipe(Schema.maxLength(201))),
    limit: Limit
  })),
  reconcileCrons: Schema.Tuple(
    DispatchTarget,
    Schema.Array(CronDefinition).pipe(
      Schema.maxItems(1000),
      Schema.filter((crons) => new Set(crons.map((cron) => cron.name)).size === crons.length || "cron names must be unique")
    ),
    Schema.optionalElement(Schema.UndefinedOr(Schema.Int.pipe(Schema.between(0, MAX_SHARDS - 1))))
  ),
  listCrons: Schema.Tuple(),
  triggerCron: Schema.Tuple(CronName),
  definePool: Schema.Tuple(
    PoolName,
    Schema.optionalElement(Schema.UndefinedOr(MaxConcurrency)),
    Schema.optionalElement(Schema.UndefinedOr(Schema.Boolean))
  ),
  updatePool: Schema.Tuple(
    PoolName,
    Schema.Struct({
      paused: Schema.optional(Schema.UndefinedOr(Schema.Boolean)),
      maxConcurrency: Schema.optional(Schema.UndefinedOr(MaxConcurrency))
    })
  ),
  enqueue: Schema.Tuple(DispatchTarget, PoolName, NewJobs),
  poolStatus: Schema.Tuple(PoolName),
  cancelQueued: Schema.Tuple(PoolName, Limit),
  leasePulled: Schema.Tuple(PoolName, Schema.Int.pipe(Schema.between(1, 100)), PullLease),
  heartbeatPulled: Schema.Tuple(PoolName, LookupId, Schema.Int.pipe(Schema.positive()), PullLease),
  reportPulled: Schema.Tuple(
    PoolName,
    Schema.Union(
      Schema.Struct({ id: LookupId, attempt: Schema.Int, ok: Schema.Literal(true), result: Schema.NullOr(JsonText) }),
      Schema.Struct({
        id: LookupId,
        attempt: Schema.Int,
        ok: Schema.Literal(false),
        retryable: Schema.Boolean,
        error: Schema.String.pipe(Schema.maxLength(16_384))
      })
    )
  ),
  reconcileAlerts: Schema.Tuple(
    DispatchTarget,
    Schema.Array(AlertDefinition).pipe(
      Schema.maxItems(100),
      Schema.filter((alerts) => new Set(alerts.map((alert) => alert.name)).size === alerts.length || "alert names must be unique")
    )
  ),
  listAlerts: Schema.Tuple(),
  listPools: Schema.Tuple(),
  stats: Schema.Tuple(),
  shards: Schema.Tuple(ShardCount, Schema.Boolean),
  census: Schema.Tuple(),
  metrics: Schema.Tuple(),
  confirmDispatch: Schema.Tuple(Lease, LookupId, Schema.Int),
  confirmDispatches: Schema.Tuple(
    Lease,
    Schema.Array(Schema.Tuple(LookupId, Schema.Int)).pipe(Schema.minItems(1), Schema.maxItems(MAX_BATCH_JOBS))
  )
} as const

export type Operation = keyof typeof Operations

/** The decoded arguments of an operation: for an engine operation, its own (`Operations.Args`), after the target if it takes one. */
export type Args<K extends Operation> = (typeof Operations)[K]["Type"]

/**
 * What an operation answers: the engine's result; for `metrics` the
 * object's metrics; for `confirmDispatch(es)` whether this is the first
 * sight of live attempts.
 */
export type Result<K extends Operation> = K extends EngineOperations.Name ? EngineOperations.Result<K>
  : K extends "metrics" ? ReadonlyArray<Sample>
  : boolean

/**
 * The RPC surface of `SchedulerDO`: plain data in, engine results out.
 * `confirmDispatch` is for the dispatch endpoint: true, once, while the
 * attempt sent with that lease is in flight; `confirmDispatches` the same
 * for a batch: true, once, when the lease's request carried exactly those
 * `[id, attempt]` pairs and is in flight.
 */
export type SchedulerRpc = { readonly [K in Operation]: (...args: Args<K>) => Promise<Result<K>> }

/** The Schemas and the engine agree: each engine operation decodes to its arguments, after the target if it takes one. */
type Agrees = {
  readonly [K in EngineOperations.Name]: Args<K> extends
    (K extends EngineOperations.Targeted ? readonly [DispatchTarget, ...EngineOperations.Args<K>] : Readonly<EngineOperations.Args<K>>)
    ? true
    : false
}
const agrees: { readonly [K in EngineOperations.Name]: true } = {} as Agrees
void agrees


const decoders = Object.fromEntries(
  Object.entries(Operations).map(([name, schema]) => [name, Schema.decodeUnknownEither(schema as Schema.Schema<unknown>)])
) as Record<Operation, (args: unknown) => Either.Either<unknown, ParseResult.ParseError>>

const pathText = (path: ReadonlyArray<PropertyKey>) =>
  path.map((key) => (typeof key === "number" ? `[${key}]` : `.${String(key)}`)).join("")

/**
 * The typed refusal for a parse error of `operation`'s arguments: about a
 * run time, `InvalidTime`; about a payload, `InvalidPayload`; else `InvalidOptions`.
 */
const refusalOf = (operation: Operation, error: ParseResult.ParseError): Refusal => {
  const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
  const path = issue?.path ?? []
  const where = `${operation} arguments${pathText(path)}`
  const message = issue?.message ?? ParseResult.TreeFormatter.formatErrorSync(error)
  if (path.includes("runAt")) return new InvalidTime({ input: where, reason: message })
  if (path.includes("args")) {
    return new InvalidPayload({
      functionPath: where,
      problem: message.startsWith("size:") ? "size" : "serialization",
      reason: message
    })
  }
  return new InvalidOptions({ reason: `${where}: ${message}` })
}

/** The properties of a job to store, each required (`true`) or optional (`false`), as `NewJob` declares them. */
const NEW_JOB_KEYS: Readonly<Record<string, boolean>> = Object.fromEntries(
  Object.entries(NewJob.fields).map(([name, field]) => [name, !Schema.isPropertySignature(field)])
)

const isLookupId = (value: unknown) => typeof value === "string" && value.length <= LOOKUP_ID_MAX
const isLease = isLookupId
const isAttempt = (pair: unknown) =>
  Array.isArray(pair) && pair.length === 2 && isLookupId(pair[0]) && Number.isSafeInteger(pair[1])
const isOptionText = (value: unknown) => typeof value === "string" && value.length >= 1 && value.length <= OPTION_TEXT_MAX
const isNullOr = (value: unknown, is: (value: unknown) => boolean) => value === null || is(value)
const isRetryDelay = (delay: unknown) => Number.isSafeInteger(delay) && (delay as number) >= 0 && (delay as number) <= MAX_DELAY_MS

/**
 * Whether `value` is a job the `NewJob` Schema takes exactly as it is, by
 * plain checks of the same rules: no property it would drop, and no own
 * target (which only the Schema checks). False says nothing: the Schema
 * decides, and gives the refusal. `test/protocol.test.ts` holds the two to
 * agreement.
 */
const isPlainNewJob = (value: unknown): boolean => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false
  const job = value as Record<string, unknown>
  let required = 0
  for (const key in job) {
    const isRequired = NEW_JOB_KEYS[key]
    if (isRequired === undefined || !Object.hasOwn(job, key)) return false
    if (isRequired) required++
  }
  const { args, deadLetter, functionPath, id, key, own, parentId, pool, retryDelaysMs, runAt, shardKey } = job
  return required === REQUIRED_JOB_KEYS &&
    typeof id === "string" && JOB_ID_PATTERN.test(id) &&
    typeof functionPath === "string" && FUNCTION_PATH_PATTERN.test(functionPath) &&
    typeof args === "string" && jsonTextProblem(args) === undefined &&
    Number.isSafeInteger(runAt) && Math.abs(runAt as number) <= MAX_EPOCH_MILLIS &&
    Array.isArray(retryDelaysMs) && retryDelaysMs.length <= Retry.MAX_ATTEMPTS - 1 && retryDelaysMs.every(isRetryDelay) &&
    typeof deadLetter === "boolean" &&
    isNullOr(key, isOptionText) && isNullOr(shardKey, isOptionText) &&
    isNullOr(pool, (name) => typeof name === "string" && POOL_NAME_PATTERN.test(name)) &&
    (parentId === undefined || isNullOr(parentId, isLookupId)) &&
    (own === undefined || own === null)
}
const REQUIRED_JOB_KEYS = Object.values(NEW_JOB_KEYS).filter(Boolean).length

/** Whether `value` is a `DispatchTarget` as it is, by plain checks (false: the Schema decides). */
const isPlainTarget = (value: unknown): boolean => {
  if (typeof value !== "object" || value === null) return false
  const keys = Object.keys(value)
  const text = (value as Record<string, unknown>)[keys[0]!]
  return keys.length === 1 && typeof text === "string" &&
    (keys[0] === "binding" ? BINDING_PATTERN.test(text) : keys[0] === "originUrl" && ORIGIN_URL_PATTERN.test(text))
}

/**
 * The arguments of `schedule` and `enqueue` (jobs are stored per call in
 * the hundreds) and of the confirmations (one per dispatch request) when
 * plain checks find them valid as they are, with no Schema decode: the
 * checks cost a fraction of one. `undefined` for any other operation, or
 * arguments the Schema must look at.
 */
const plainArgs = (operation: Operation, args: ReadonlyArray<unknown>): ReadonlyArray<unknown> | undefined => {
  if (operation === "confirmDispatch") {
    return args.length === 3 && isLease(args[0]) && isLookupId(args[1]) && Number.isSafeInteger(args[2]) ? args : undefined
  }
  if (operation === "confirmDispatches") {
    const attempts = args[1]
    return args.length === 2 && isLease(args[0]) && Array.isArray(attempts) && attempts.length >= 1 &&
        attempts.length <= MAX_BATCH_JOBS && attempts.every(isAttempt)
      ? args
      : undefined
  }
  const jobsAt = operation === "schedule" ? 1 : operation === "enqueue" ? 2 : undefined
  if (jobsAt === undefined || args.length !== jobsAt + 1 || !isPlainTarget(args[0])) return undefined
  if (jobsAt === 2 && !(typeof args[1] === "string" && POOL_NAME_PATTERN.test(args[1]))) return undefined
  const jobs = args[jobsAt]
  return Array.isArray(jobs) && jobs.length <= MAX_JOBS_PER_CALL && jobs.every(isPlainNewJob) ? args : undefined
}

/** Decodes `args` as the arguments of `operation`, or says why they are refused. */
export const decode = <K extends Operation>(operation: K, args: ReadonlyArray<unknown>): Either.Either<Args<K>, Refusal> => {
  // a trailing `undefined` is an argument left out
  let length = args.length
  while (length > 0 && args[length - 1] === undefined) length--
  const given = args.slice(0, length)
  const plain = plainArgs(operation, given)
  if (plain !== undefined) return Either.right(plain as Args<K>)
  return Either.mapBoth(decoders[operation](given), {
    onLeft: (error) => refusalOf(operation, error),
    onRight: (decoded) => decoded as Args<K>
  })
}
