/**
 * The consuming half of the Queues-backed pool: each delivered message is
 * decoded, dispatched through the wire contract, and settled (acked, retried
 * after its policy's delay, or dead-lettered) on its own, whatever happens to
 * the others of its batch.
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { TreeFormatter } from "effect/ParseResult"
import * as QueueWorkpool from "../../QueueWorkpool.js"
import { InvalidOptions } from "../../SchedulerError.js"
import * as Dispatcher from "./dispatcher.js"
import { describeCause, invalidOptions } from "../domain/failure.js"
import { DispatchTarget } from "./wire.js"

/** The part of a delivered `Message` the consumer uses. */
export interface DeliveredMessage {
  readonly id: string
  readonly body: unknown
  readonly attempts: number
  readonly ack: () => void
  readonly retry: (options?: { delaySeconds?: number }) => void
}

/** The part of a `MessageBatch` the consumer uses. */
export interface Batch {
  readonly queue: string
  readonly messages: ReadonlyArray<DeliveredMessage>
}

export interface ConsumerOptions {
  /** How each attempt is delivered: `httpDispatcher(...)`. */
  readonly dispatch: QueueWorkpool.Dispatcher
  /**
   * A producer binding of a dead-letter queue: an exhausted or rejected job is
   * sent there (with `lastError` and `attempts`) and acked. Without it, the
   * message is retried at once, so the queue's own `max_retries` hands it to
   * the queue's `dead_letter_queue`.
   */
  readonly deadLetterQueue?: QueueWorkpool.QueueProducer | undefined
  /** How many messages of a batch are dispatched at once. Default 6 (a Worker's simultaneous connections). */
  readonly concurrency?: number | undefined
}

export const DEFAULT_CONCURRENCY = 6

const ConsumerSettings = Schema.Struct({
  dispatch: Schema.declare(
    (u): u is QueueWorkpool.Dispatcher => Predicate.hasProperty(u, "deliver") && Predicate.isFunction(u.deliver),
    { message: () => "dispatch must be a dispatcher, such as httpDispatcher({ originUrl, secret })" }
  ),
  deadLetterQueue: Schema.optional(Schema.declare(
    (u): u is QueueWorkpool.QueueProducer => Predicate.hasProperty(u, "send") && Predicate.isFunction(u.send),
    { message: () => "deadLetterQueue must be a Queue producer binding" }
  )),
  concurrency: Schema.optional(Schema.Int.pipe(Schema.between(1, 100)))
})

/** Checks the consumer's options, refusing them with `InvalidOptions`. */
export const checkOptions = (options: ConsumerOptions): Either.Either<ConsumerOptions, InvalidOptions> =>
  Either.mapLeft(
    Schema.decodeUnknownEither(ConsumerSettings)(options),
    invalidOptions
  )

/** The secret that signs each request, as `secret` or by its documented other name, `adminToken`: one of the two. */
export type DispatchSecret =
  | { readonly secret: Redacted.Redacted<string> | string; readonly adminToken?: undefined }
  | { readonly adminToken: Redacted.Redacted<string> | string; readonly secret?: undefined }

export type HttpDispatcherOptions = {
  readonly originUrl?: string | undefined
  readonly fetcher?: { readonly fetch: (input: URL | string, init?: RequestInit) => Promise<Response> } | undefined
  readonly timeout?: Duration.DurationInput | undefined
} & DispatchSecret

export const DEFAULT_TIMEOUT: Duration.Duration = Duration.minutes(5)

const decodeTarget = Schema.decodeUnknownEither(DispatchTarget)

/** A dispatcher posting each attempt, signed with `secret`, to `originUrl` or through `fetcher`. */
export const makeHttpDispatcher = (
  options: HttpDispatcherOptions
): Either.Either<QueueWorkpool.Dispatcher, InvalidOptions> => {
  const { fetcher, originUrl } = options ?? {}
  if ((originUrl === undefined) === (fetcher === undefined)) {
    return Either.left(new InvalidOptions({ reason: "give either originUrl or fetcher (a service binding)" }))
  }
  let destination: Dispatcher.Destination
  if (originUrl !== undefined) {
    const target = decodeTarget({ originUrl })
    if (Either.isLeft(target)) return Either.left(invalidOptions(target.left))
    destination = Dispatcher.toOrigin(originUrl)
  } else {
    if (!Predicate.hasProperty(fetcher, "fetch") || !Predicate.isFunction(fetcher.fetch)) {
      return Either.left(new InvalidOptions({ reason: "fetcher must be a service binding (with fetch)" }))
    }
    destination = Dispatcher.throughBinding((input, init) => fetcher.fetch(input, init))
  }
  if (options.secret !== undefined && options.adminToken !== undefined) {
    return Either.left(new InvalidOptions({ reason: "give secret or adminToken (another name for it), not both" }))
  }
  const secret = options.secret ?? options.adminToken
  if (!Redacted.isRedacted(secret) && (!Predicate.isString(secret) || secret.length === 0)) {
    return Either.left(
      new InvalidOptions({ reason: "secret (or adminToken) must be a non-empty string (LUNORA_SCHEDULER_SECRET)" })
    )
  }
  const key = Redacted.isRedacted(secret) ? secret : Redacted.make(secret)
  const timeout = Option.getOrUndefined(Duration.decodeUnknown(options.timeout ?? DEFAULT_TIMEOUT))
  if (timeout === undefined || !Duration.isFinite(timeout) || Duration.lessThanOrEqualTo(timeout, Duration.zero)) {
    return Either.left(new InvalidOptions({ reason: "timeout must be a finite, positive duration" }))
  }
  return Either.right({
    deliver: (body) => Dispatcher.deliver(key, destination, body, timeout)
  })
}

const decodeMessage = Schema.decodeUnknownEither(QueueWorkpool.QueueMessage)

const attempt = (f: () => void) => Effect.try({ try: f, catch: (cause) => cause })

/** Whether the message was settled: acked or retried. */
type Settled = boolean

const ack = (message: DeliveredMessage): Effect.Effect<Settled> =>
  attempt(() => message.ack()).pipe(
    Effect.as(true),
    Effect.catchAll((cause) => Effect.as(Effect.logError("could not ack the message", cause), false))
  )

/** Retries after `delaySeconds` (the consumer's `retry_delay` when undefined), or at all if that is refused. */
const retry = (message: DeliveredMessage, delaySeconds?: number): Effect.Effect<Settled> =>
  attempt(() => (delaySeconds === undefined ? message.retry() : message.retry({ delaySeconds }))).pipe(
    Effect.orElse(() => attempt(() => message.retry())),
    Effect.as(true),
    Effect.catchAll((cause) => Effect.as(Effect.logError("could not retry the message", cause), false))
  )

const settle = (
  message: DeliveredMessage,
  job: QueueWorkpool.QueueMessage,
  decision: QueueWorkpool.Decision,
  options: ConsumerOptions
): Effect.Effect<Settled> => {
  const max = QueueWorkpool.maxAttempts(job)
  return QueueWorkpool.Decision.$match(decision, {
    Ack: () => ack(message),
    Retry: ({ delaySeconds, error }) =>
      Effect.zipRight(
        Effect.logWarning(`attempt ${message.attempts} of ${max} failed; retrying in ${delaySeconds} s`, error),
        retry(message, delaySeconds)
      ),
    Fail: ({ lastError }) =>
      Effect.zipRight(
        Effect.logWarning(`failed after attempt ${message.attempts} of ${max} (deadLetter: false); acked`, lastError),
        ack(message)
      ),
    DeadLetter: ({ lastError }) => {
      const deadLetterQueue = options.deadLetterQueue
      if (deadLetterQueue === undefined) {
        return Effect.zipRight(
          Effect.logError(
            `dead-lettered after attempt ${message.attempts} of ${max}; retried so the queue's max_retries hands it to its dead-letter queue`,
            lastError
          ),
          retry(message, 0)
        )
      }
      const deadLetter: QueueWorkpool.DeadLetter = { ...job, lastError, attempts: message.attempts }
      return Effect.tryPromise(() => deadLetterQueue.send(deadLetter, { contentType: "json" })).pipe(
        Effect.zipRight(Effect.logError(`dead-lettered after attempt ${message.attempts} of ${max}`, lastError)),
        Effect.zipRight(ack(message)),
        Effect.catchAll((error) =>
          Effect.zipRight(
            Effect.logError("could not send the dead letter; the message is retried", describeCause(Cause.fail(error.cause))),
            retry(message, 0)
          )
        )
      )
    }
  })
}

const handle = (message: DeliveredMessage, options: ConsumerOptions): Effect.Effect<Settled> =>
  Effect.gen(function*() {
    const decoded = decodeMessage(message.body)
    if (Either.isLeft(decoded)) {
      yield* Effect.logError(
        "malformed message: retried, never dropped, so the queue's max_retries hands it to its dead-letter queue",
        TreeFormatter.formatErrorSync(decoded.left)
      )
      return yield* retry(message)
    }
    const job = decoded.right
    const max = QueueWorkpool.maxAttempts(job)
    const decision = message.attempts > max
      ? QueueWorkpool.exhausted(job, `delivered again (delivery ${message.attempts}) after its last attempt (${max})`)
      : QueueWorkpool.decide(
        job,
        message.attempts,
        yield* options.dispatch.deliver(QueueWorkpool.toDispatchBody(job, message.attempts))
      )
    return yield* settle(message, job, decision, options).pipe(
      Effect.annotateLogs({ jobId: job.id, functionPath: job.functionPath })
    )
  }).pipe(
    Effect.catchAllCause((cause) =>
      Effect.zipRight(
        Effect.logError("the message could not be handled; it is retried", describeCause(cause)),
        retry(message)
      )
    ),
    Effect.annotateLogs({ messageId: message.id, attempt: message.attempts })
  )

/**
 * Handles every message of a batch, `concurrency` at a time; each is settled
 * on its own. Returns how many could be neither acked nor retried (the
 * caller then fails the invocation, so the platform retries them).
 */
export const consume = (batch: Batch, options: ConsumerOptions): Effect.Effect<number> =>
  Effect.forEach(batch.messages, (message) => handle(message, options), {
    concurrency: options.concurrency ?? DEFAULT_CONCURRENCY
  }).pipe(
    Effect.map((settled) => settled.filter((ok) => !ok).length),
    Effect.annotateLogs({ queue: batch.queue }),
    Effect.withSpan("QueueWorkpool.consume", { attributes: { queue: batch.queue, messages: batch.messages.length } })
  )
