/**
 * The Queues-backed workpool: `enqueue` sends a job to a Cloudflare Queue,
 * and the Worker's `queue()` handler (`createQueueConsumer` from
 * `@lunora/scheduler/cloudflare`) dispatches each message through the same
 * wire contract as the `SchedulerDO`, then acks it, retries it after the
 * delay its policy gives, or dead-letters it.
 *
 * Pick it over the Durable Object `Workpool` for throughput and fan-out, when
 * no hard cap on concurrency, durable FIFO order, status, cancel or pause is
 * needed: Queues scales consumers on its own, delivers at least once, delays
 * in whole seconds up to 24 hours, and keeps no record of a job once acked.
 * A job's `key` is delivered to its handler (an idempotency key) but does not
 * dedupe.
 *
 * @since 0.1.0
 */
import type * as DateTime from "effect/DateTime"
import type * as Duration from "effect/Duration"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import type { Outcome } from "./internal/runtime/dispatcher.js"
import { messageOf } from "./internal/domain/failure.js"
import { utf8Length } from "./internal/domain/payload.js"
import { prepare, type RunOptions, type ScheduleError, type Submission } from "./internal/engine/submission.js"
import * as Engine from "./internal/engine/engine.js"
import { type DispatchBody, dispatchBody } from "./internal/runtime/wire.js"
import * as Job from "./Job.js"
import * as Retry from "./Retry.js"
import { InvalidOptions, InvalidPayload, InvalidTime, SchedulerUnavailable } from "./SchedulerError.js"

/**
 * The longest delay Queues accepts, when sending or retrying: 24 hours.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_DELAY_SECONDS = 86_400

/**
 * The largest message `enqueue` sends, in bytes of its JSON text. Queues
 * takes 128 KB (of 1000 bytes) including about 100 bytes of metadata; the
 * rest is left for the `lastError` a dead letter adds.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_MESSAGE_BYTES = 110_000

/**
 * The most messages one `sendBatch` takes; `enqueueMany` sends in chunks.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_BATCH_MESSAGES = 100

/**
 * The most bytes one `sendBatch` takes; `enqueueMany` sends in chunks.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_BATCH_BYTES = 256_000

/**
 * The body of a queue message: one job, with its retry plan and everything
 * the dispatch body needs. Sent as JSON (`contentType: "json"`).
 *
 * @since 0.1.0
 * @category models
 */
export const QueueMessage = Schema.Struct({
  /** The version of this shape; a consumer retries (never drops) a version it does not know. */
  version: Schema.Literal(1),
  id: Job.JobId,
  functionPath: Job.FunctionPath,
  /** The payload, encoded with the job's Schema. */
  args: Schema.Unknown,
  /** When the first attempt was due, epoch milliseconds. */
  scheduledFor: Schema.NonNegative,
  /** The delays before attempts 2, 3, ...: the job's retry policy, stepped at `enqueue`. */
  retryDelaysMs: Schema.Array(Schema.NonNegativeInt).pipe(Schema.maxItems(Retry.MAX_ATTEMPTS - 1)),
  /** Whether exhaustion dead-letters the job (default) or just ends it, acked and logged. */
  deadLetter: Schema.Boolean,
  key: Schema.NullOr(Schema.String),
  shardKey: Schema.NullOr(Schema.String)
}).annotations({ identifier: "QueueMessage" })

/**
 * @since 0.1.0
 * @category models
 */
export type QueueMessage = typeof QueueMessage.Type

/**
 * What the consumer sends to its `deadLetterQueue`: the message, why its last
 * attempt failed, and how many deliveries it had.
 *
 * @since 0.1.0
 * @category models
 */
export const DeadLetter = Schema.Struct({
  ...QueueMessage.fields,
  lastError: Schema.String,
  attempts: Schema.Int
}).annotations({ identifier: "QueueDeadLetter" })

/**
 * @since 0.1.0
 * @category models
 */
export type DeadLetter = typeof DeadLetter.Type

/**
 * The body of one dispatch request (the wire contract's), which a
 * `Dispatcher` posts to the app.
 *
 * @since 0.1.0
 * @category models
 */
export type { DispatchBody }

/**
 * What one attempt came to: success with the encoded result, or a failure
 * that is `retryable` (5xx, timeout, network) or not (a rejection).
 *
 * @since 0.1.0
 * @category models
 */
export type DeliveryOutcome = Outcome

/**
 * How the consumer delivers one attempt; `httpDispatcher` from
 * `@lunora/scheduler/cloudflare` posts it, signed, to the app. Never fails: a
 * failure is an outcome.
 *
 * @since 0.1.0
 * @category models
 */
export interface Dispatcher {
  readonly deliver: (body: DispatchBody) => Effect.Effect<DeliveryOutcome>
}

/**
 * The part of a Cloudflare `Queue` producer binding the pool uses.
 *
 * @since 0.1.0
 * @category models
 */
export interface QueueProducer {
  readonly send: (
    body: unknown,
    options?: { contentType?: "json"; delaySeconds?: number }
  ) => Promise<unknown>
  readonly sendBatch: (
    messages: Iterable<{ body: unknown; contentType?: "json"; delaySeconds?: number }>
  ) => Promise<unknown>
}

/**
 * Options of `enqueue`: when the job runs (`after` a delay or `at` a time, at
 * most 24 hours ahead; neither means now), its `retry` policy (delays are
 * rounded up to whole seconds and capped at 24 hours), `deadLetter`,
 * `shardKey`, and `key` (delivered to the handler; it does not dedupe).
 *
 * @since 0.1.0
 * @category models
 */
export interface EnqueueOptions extends RunOptions {
  readonly after?: Duration.DurationInput | undefined
  readonly at?: DateTime.DateTime | Date | number | undefined
}

/**
 * One job of `enqueueMany`: a job, its payload, and when it should run.
 *
 * @since 0.1.0
 * @category models
 */
export type { Submission }

/**
 * The errors `enqueue` refuses with (nothing is sent), or
 * `SchedulerUnavailable` when the queue did not take the message.
 *
 * @since 0.1.0
 * @category models
 */
export type { ScheduleError }

/**
 * A job the queue took.
 *
 * @since 0.1.0
 * @category models
 */
export interface Enqueued {
  readonly id: Job.JobId
}

/**
 * @since 0.1.0
 * @category tags
 */
export class QueueWorkpool extends Context.Tag("@lunora/scheduler/QueueWorkpool")<QueueWorkpool, {
  /** Sends `job` to the queue, to run after its delay; the payload is checked against the job's Schema first. */
  readonly enqueue: <R extends Job.Ref>(
    job: R,
    payload: Job.Payload<R>,
    options?: EnqueueOptions
  ) => Effect.Effect<Enqueued, ScheduleError>
  /**
   * Checks every job, then sends them with `sendBatch` in chunks of at most
   * 100 messages and 256 KB: any refusal sends nothing; a failing chunk
   * leaves the chunks before it sent (the error says how many).
   */
  readonly enqueueMany: (submissions: ReadonlyArray<Submission>) => Effect.Effect<ReadonlyArray<Enqueued>, ScheduleError>
}>() {}

/**
 * Options of the pool: the producer binding of the queue (`env.JOBS`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly queue: QueueProducer
}

/**
 * A delay in whole seconds as Queues takes it: rounded up (a job never runs
 * early) and capped at `MAX_DELAY_SECONDS`.
 *
 * @since 0.1.0
 * @category delays
 */
export const delaySeconds = (millis: number): number =>
  Number.isFinite(millis) ? Math.min(MAX_DELAY_SECONDS, Math.max(0, Math.ceil(millis / 1000))) : MAX_DELAY_SECONDS

/**
 * How many attempts a job's policy gives it: its retry delays and the first.
 *
 * @since 0.1.0
 * @category delays
 */
export const maxAttempts = (message: QueueMessage): number => Engine.maxAttempts(message)

/**
 * The delay, in seconds, before the attempt that follows failed attempt
 * `attempt` (1-based), from the job's policy.
 *
 * @since 0.1.0
 * @category delays
 */
export const retryDelaySeconds = (message: QueueMessage, attempt: number): number =>
  delaySeconds(Engine.retryDelayAfter(message, attempt, true) ?? 0)

/**
 * What the consumer does with a delivered message: `Ack` it, `Retry` it after
 * a delay, `DeadLetter` it, or `Fail` it (acked and logged, for a job with
 * `deadLetter: false`).
 *
 * @since 0.1.0
 * @category decisions
 */
export type Decision = Data.TaggedEnum<{
  Ack: {}
  Retry: { readonly delaySeconds: number; readonly error: string }
  DeadLetter: { readonly lastError: string }
  Fail: { readonly lastError: string }
}>

/**
 * The constructors of `Decision`, and `$match` over it.
 *
 * @since 0.1.0
 * @category decisions
 */
export const Decision = Data.taggedEnum<Decision>()

/**
 * The end of a job that will not be attempted again: a dead letter, unless
 * it was enqueued with `deadLetter: false`.
 *
 * @since 0.1.0
 * @category decisions
 */
export const exhausted = (message: QueueMessage, lastError: string): Decision =>
  message.deadLetter ? Decision.DeadLetter({ lastError }) : Decision.Fail({ lastError })

/**
 * The rule of the consumer, for delivery number `attempts` of a message: a
 * success is acked; a retryable failure with attempts left is retried after
 * its policy's delay; a rejection, or a failure of the last attempt, ends it.
 *
 * @since 0.1.0
 * @category decisions
 */
export const decide = (message: QueueMessage, attempts: number, outcome: DeliveryOutcome): Decision => {
  if (outcome.ok) return Decision.Ack()
  const delay = Engine.retryDelayAfter(message, attempts, outcome.retryable)
  if (delay !== undefined) return Decision.Retry({ delaySeconds: delaySeconds(delay), error: outcome.error })
  return exhausted(message, outcome.error)
}

/**
 * The dispatch body of delivery number `attempts` of a message. Its `pool` is
 * null: a handler's `pool` names a Durable Object `Workpool` whose cap its
 * own work counts against, and a queue has no cap.
 *
 * @since 0.1.0
 * @category decisions
 */
export const toDispatchBody = (message: QueueMessage, attempts: number): DispatchBody =>
  dispatchBody({ ...message, pool: null }, { attempt: attempts, lease: null, scheduler: null })

interface Prepared {
  readonly message: QueueMessage
  readonly delaySeconds: number
  readonly bytes: number
}

const showTime = (millis: number) => (Number.isFinite(millis) ? new Date(millis).toISOString() : String(millis))

const prepareMessage = (submission: Submission, now: number): Effect.Effect<Prepared, ScheduleError> =>
  Effect.gen(function*() {
    if (submission.after !== undefined && submission.at !== undefined) {
      return yield* new InvalidOptions({ reason: "give `after` or `at`, not both" })
    }
    const job = yield* prepare(submission, now)
    if (job.own !== undefined && job.own !== null) {
      return yield* new InvalidOptions({
        reason: `${job.functionPath} is a ${"webhook" in job.own ? "webhook" : "workflow"} job: schedule it with the Scheduler or a Workpool, whose SchedulerDO delivers it`
      })
    }
    const delayMs = job.runAt - now
    if (delayMs > MAX_DELAY_SECONDS * 1000) {
      return yield* new InvalidTime({
        input: showTime(job.runAt),
        reason: `more than ${MAX_DELAY_SECONDS / 3600} hours ahead, the longest delay of a Queues message`
      })
    }
    const message: QueueMessage = {
      version: 1,
      id: job.id as Job.JobId,
      functionPath: job.functionPath,
      args: JSON.parse(job.args),
      scheduledFor: job.runAt,
      retryDelaysMs: job.retryDelaysMs,
      deadLetter: job.deadLetter,
      key: job.key,
      shardKey: job.shardKey
    }
    const bytes = utf8Length(JSON.stringify(message))
    if (bytes > MAX_MESSAGE_BYTES) {
      return yield* new InvalidPayload({
        functionPath: job.functionPath,
        problem: "size",
        reason: `the queue message is ${bytes} bytes of JSON, over the limit of ${MAX_MESSAGE_BYTES}`
      })
    }
    return { message, delaySeconds: delaySeconds(delayMs), bytes }
  }).pipe(Effect.annotateLogs({ functionPath: Job.pathOf(submission.job) }))

/** What Queues adds to each message, and counts against the limits. */
const METADATA_BYTES = 100

/** Consecutive runs of at most `MAX_BATCH_MESSAGES` messages and `MAX_BATCH_BYTES` bytes, metadata included. */
const chunksOf = (prepared: ReadonlyArray<Prepared>): ReadonlyArray<ReadonlyArray<Prepared>> => {
  const chunks: Array<Array<Prepared>> = []
  let current: Array<Prepared> = []
  let bytes = 0
  for (const item of prepared) {
    const size = item.bytes + METADATA_BYTES
    if (current.length === MAX_BATCH_MESSAGES || (current.length > 0 && bytes + size > MAX_BATCH_BYTES)) {
      chunks.push(current)
      current = []
      bytes = 0
    }
    current.push(item)
    bytes += size
  }
  if (current.length > 0) chunks.push(current)
  return chunks
}

const isProducer = (u: unknown): u is QueueProducer =>
  Predicate.hasProperty(u, "send") && Predicate.isFunction(u.send) &&
  Predicate.hasProperty(u, "sendBatch") && Predicate.isFunction(u.sendBatch)

/**
 * Builds the pool over a queue producer binding. Refuses (`InvalidOptions`)
 * a `queue` that is not one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<QueueWorkpool["Type"], InvalidOptions> =>
  Effect.gen(function*() {
    const queue = options?.queue
    if (!isProducer(queue)) {
      return yield* new InvalidOptions({ reason: "queue must be a Queue producer binding (with send and sendBatch)" })
    }

    const enqueueMany = Effect.fn("QueueWorkpool.enqueueMany")(function*(submissions: ReadonlyArray<Submission>) {
      const now = yield* Clock.currentTimeMillis
      const prepared = yield* Effect.forEach(submissions, (submission) => prepareMessage(submission, now))
      let sent = 0
      for (const chunk of chunksOf(prepared)) {
        yield* Effect.tryPromise({
          try: () =>
            queue.sendBatch(chunk.map(({ delaySeconds, message }) => ({
              body: message,
              contentType: "json" as const,
              delaySeconds
            }))),
          catch: (cause) =>
            new SchedulerUnavailable({
              operation: "QueueWorkpool.enqueueMany",
              reason: `queue.sendBatch failed after ${sent} of ${prepared.length} messages were sent: ${
                messageOf(cause)
              }`,
              cause
            })
        })
        sent += chunk.length
      }
      return prepared.map(({ message }): Enqueued => ({ id: message.id }))
    })

    return QueueWorkpool.of({
      enqueue: (job, payload, options = {}) => {
        const { after, at, ...runOptions } = options
        return Effect.gen(function*() {
          const { delaySeconds, message } = yield* prepareMessage(
            { job, payload, after, at, options: runOptions },
            yield* Clock.currentTimeMillis
          )
          yield* Effect.tryPromise({
            try: () => queue.send(message, { contentType: "json", delaySeconds }),
            catch: (cause) =>
              new SchedulerUnavailable({
                operation: "QueueWorkpool.enqueue",
                reason: `queue.send failed: ${messageOf(cause)}`,
                cause
              })
          }).pipe(Effect.annotateLogs({ jobId: message.id }))
          const enqueued: Enqueued = { id: message.id }
          return enqueued
        }).pipe(Effect.withSpan("QueueWorkpool.enqueue", { attributes: { functionPath: Job.pathOf(job) } }))
      },
      enqueueMany
    })
  })

/**
 * The pool as a layer, over the queue producer binding.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<QueueWorkpool, InvalidOptions> =>
  Layer.effect(QueueWorkpool, make(options))
