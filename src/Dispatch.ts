/**
 * The app's side of the dispatch round trip: the endpoint the `SchedulerDO`
 * calls when a job is due. It checks the signature, decodes the payload with
 * the job's Schema, runs the handler registered with `Job.toLayer`, and
 * answers with the status that decides the outcome: 2xx succeeded, 4xx
 * rejected (no retry), anything else a failed attempt (retried).
 *
 * @since 0.1.0
 */
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { type DeclaredCrons, declaredPaths, describeUnknown, unknownPaths } from "./internal/domain/declared.js"
import { messageOf } from "./internal/domain/failure.js"
import { contextOf } from "./internal/domain/job.js"
import {
  BodyTooLarge,
  DISPATCH_PATH,
  DispatchBody,
  type DispatchReply,
  macOf,
  MAX_REQUEST_BYTES,
  readText,
  REPLY_HEADER,
  SeenRequests,
  SIGNATURE_HEADER,
  signReply,
  verify
} from "./internal/runtime/wire.js"
import * as JobRegistry from "./JobRegistry.js"

/**
 * The path the Durable Object posts to: `/_lunora/scheduler/dispatch`.
 *
 * @since 0.1.0
 * @category constants
 */
export const path: typeof DISPATCH_PATH = DISPATCH_PATH

/**
 * The largest dispatch request the endpoint reads (a payload at its 1 MiB
 * limit and 64 KiB for the rest); a larger one is answered 413 unread.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxRequestBytes: number = MAX_REQUEST_BYTES

/**
 * The part of the `SchedulerDO` namespace binding the endpoint uses to
 * confirm a dispatch with the Durable Object that sent it.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConfirmingNamespace {
  readonly idFromString: (id: string) => unknown
  readonly get: (id: never) => unknown
}

export type {
  /**
   * Crons an app declares, as the dispatch endpoint's `crons` option takes
   * them: a `cronJobs()` value, or an array of one-function triggers
   * (`createCronTrigger({ schedule, fn })`) and `cronJobs()` values.
   *
   * @since 0.1.0
   * @category models
   */
  DeclaredCrons
} from "./internal/domain/declared.js"

/**
 * Options of the dispatch endpoint.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The secret shared with the `SchedulerDO` (its `LUNORA_SCHEDULER_SECRET`). */
  readonly secret: Redacted.Redacted<string> | string
  /**
   * The `SchedulerDO` namespace binding (`env.SCHEDULER`), or several when
   * the app binds more than one. With it, before a handler runs, the
   * endpoint asks the `SchedulerDO` that sent the request whether that
   * attempt is in flight and unconfirmed: a replayed request is refused (409)
   * in every isolate, at the price of one call to the Durable Object per
   * dispatch. Without it, replays are refused per isolate.
   */
  readonly namespace?: ConfirmingNamespace | ReadonlyArray<ConfirmingNamespace> | undefined
  /**
   * The crons the app declares, so that a typo'd function path fails fast
   * rather than silently never firing: a `cronJobs()` value, an array of
   * one-function triggers (`createCronTrigger({ schedule, fn })`,
   * `createCronTrigger({ cron, functionPath })`), or both in one array.
   * The first time the endpoint answers with a set of handlers (once per
   * built handler layer), it looks every declared path up in them. When one
   * has no handler, it logs an error naming each such path and its cron or
   * trigger, and answers every signed dispatch 500 with that reason (a failed
   * attempt, retried under the job's policy, so nothing dead-letters for it)
   * until a deploy registers the handler or mends the path. A value that is
   * neither crons nor triggers throws a `TypeError` here.
   */
  readonly crons?: DeclaredCrons | undefined
}

interface Confirming {
  readonly confirmDispatch: (lease: string, id: string, attempt: number) => Promise<boolean>
}

const decodeBody = Schema.decodeEither(Schema.parseJson(DispatchBody))

/** Requests this isolate has run, by signature: a replay of one runs nothing. */
const seen = new SeenRequests()

const encoder = new TextEncoder()

/**
 * The request's body as text, at most `MAX_REQUEST_BYTES`: read from the web
 * `Request`'s stream when the server is one of the web's (a Worker's), and
 * stopped as soon as it is too long; on another server (Node's), read by the
 * server under its body-size limit, then measured.
 */
const bodyOf = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<string, unknown> =>
  request.source instanceof Request
    ? readText(request.source.body, MAX_REQUEST_BYTES)
    : request.text.pipe(
      HttpIncomingMessage.withMaxBodySize(Option.some(MAX_REQUEST_BYTES)),
      Effect.filterOrFail(
        (text) => text.length <= MAX_REQUEST_BYTES / 3 || encoder.encode(text).byteLength <= MAX_REQUEST_BYTES,
        () => new BodyTooLarge(MAX_REQUEST_BYTES)
      )
    )

const unsigned = (body: DispatchReply, status: number) => HttpServerResponse.unsafeJson(body, { status })

/**
 * The endpoint as an `@effect/platform` `HttpApp`: mount it at `Dispatch.path`
 * in a router, or turn it into a fetch handler with `Dispatch.toFetchHandler`.
 *
 * Answers 200 with the encoded result; 401 to a bad or stale signature
 * (nothing runs); 409 to a replayed request, or one the `SchedulerDO` does
 * not confirm (nothing runs); 413 to a body over `maxRequestBytes` (unread);
 * 400 to a malformed body and 422 to an unknown function or a payload
 * failing its Schema (the job dead-letters at once); 500 when the handler
 * failed (the attempt is retried under the job's policy), and to every
 * signed request while a declared cron (`options.crons`) has no handler.
 * Every answer to a signed request carries the endpoint's own signature
 * (`x-lunora-reply`): the `SchedulerDO` counts no other answer as an outcome.
 *
 * @since 0.1.0
 * @category constructors
 */
export const httpApp = (
  options: Options
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, HttpServerRequest.HttpServerRequest | JobRegistry.JobRegistry> => {
  const secret = Redacted.isRedacted(options.secret) ? options.secret : Redacted.make(options.secret)
  const namespaces: ReadonlyArray<ConfirmingNamespace> = options.namespace === undefined
    ? []
    : Array.isArray(options.namespace)
    ? options.namespace
    : [options.namespace as ConfirmingNamespace]
  /** The sender's stub in the first namespace its id belongs to (an id of another namespace is refused by it). */
  const senderOf = (scheduler: string): Confirming | undefined => {
    for (const namespace of namespaces) {
      let id: unknown
      try {
        id = namespace.idFromString(scheduler)
      } catch {
        continue
      }
      return namespace.get(id as never) as Confirming
    }
    return undefined
  }
  const crons = options.crons
  // checked now, read again when a registry is checked: a `cronJobs()` builder may gain crons until then
  if (crons !== undefined) declaredPaths(crons)
  /** Per registry (one per built handler layer): why the endpoint refuses every job, or `null`. */
  const problems = new WeakMap<object, string | null>()
  const misconfigured: Effect.Effect<string | null, never, JobRegistry.JobRegistry> = crons === undefined
    ? Effect.succeed(null)
    : Effect.flatMap(JobRegistry.JobRegistry, (registry) => {
      const known = problems.get(registry)
      if (known !== undefined) return Effect.succeed(known)
      const unknown = unknownPaths(declaredPaths(crons), (functionPath) => Option.isSome(registry.lookup(functionPath)))
      const problem = unknown.length === 0
        ? null
        : `${describeUnknown(unknown)}: the dispatch endpoint refuses every job until each declared cron has a handler`
      problems.set(registry, problem)
      return problem === null ? Effect.succeed(null) : Effect.as(Effect.logError(problem), problem)
    })
  return Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (request.method !== "POST") return unsigned({ error: "dispatch takes POST" }, 405)
    const tooLarge = unsigned({ error: `the request is over ${MAX_REQUEST_BYTES} bytes` }, 413)
    if (Number(request.headers["content-length"] ?? 0) > MAX_REQUEST_BYTES) return tooLarge
    const text = yield* Effect.either(bodyOf(request))
    if (Either.isLeft(text) && text.left instanceof BodyTooLarge) return tooLarge
    const body = Either.getOrElse(text, () => "")
    const header = request.headers[SIGNATURE_HEADER]
    const now = yield* Clock.currentTimeMillis
    if (!(yield* verify(secret, header, body, now))) return unsigned({ error: "bad or stale signature" }, 401)
    const mac = macOf(header)!
    const reply = (answer: DispatchReply, status: number) => {
      const text = JSON.stringify(answer)
      return Effect.map(signReply(secret, mac, status, text), (signature) =>
        HttpServerResponse.text(text, { status, contentType: "application/json", headers: { [REPLY_HEADER]: signature } }))
    }
    const problem = yield* misconfigured
    if (problem !== null) return yield* reply({ error: problem }, 500)
    if (!seen.firstSight(mac, now)) return yield* reply({ error: "a replayed request: nothing ran" }, 409)
    const decoded = decodeBody(body)
    if (Either.isLeft(decoded)) {
      return yield* reply({ error: `malformed dispatch body: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}` }, 400)
    }
    const { args, attempt, functionPath, id, lease, scheduler } = decoded.right
    if (namespaces.length > 0 && scheduler !== null && lease !== null) {
      const sender = senderOf(scheduler)
      if (sender === undefined) {
        return yield* reply({ error: "the SchedulerDO that sent this is in none of the endpoint's namespaces: add its namespace to the Dispatch options" }, 503)
      }
      const confirmed = yield* Effect.tryPromise(() => sender.confirmDispatch(lease, id, attempt)).pipe(Effect.either)
      if (Either.isLeft(confirmed)) {
        return yield* reply({ error: `the SchedulerDO could not confirm the dispatch: ${messageOf(confirmed.left.error)}` }, 503)
      }
      if (confirmed.right !== true) {
        return yield* reply({ error: "the SchedulerDO did not confirm this dispatch (a replay, or its attempt has ended): nothing ran" }, 409)
      }
    }
    const outcome = yield* JobRegistry.run(functionPath, args, contextOf(decoded.right)).pipe(Effect.annotateLogs({ jobId: id, functionPath, attempt }))
    switch (outcome._tag) {
      case "Succeeded":
        return yield* reply({ result: outcome.result }, 200)
      case "Rejected":
        yield* Effect.logWarning("dispatch rejected", outcome.reason).pipe(Effect.annotateLogs({ jobId: id, functionPath }))
        return yield* reply({ error: outcome.reason }, 422)
      case "Failed":
        yield* Effect.logWarning(`attempt ${attempt} failed`, outcome.error).pipe(
          Effect.annotateLogs({ jobId: id, functionPath })
        )
        return yield* reply({ error: outcome.error }, 500)
    }
  }).pipe(Effect.withSpan("Dispatch.handle", { captureStackTrace: false }))
}

/**
 * A plain `fetch` handler for a Worker: answers `Dispatch.path` with
 * `httpApp`, and 404 elsewhere. `layer` provides the handlers (`Job.toLayer`)
 * and what they need; it is built once, on the first request.
 *
 * ```ts
 * const dispatch = Dispatch.toFetchHandler(AppLayer, { secret: env.LUNORA_SCHEDULER_SECRET })
 * export default {
 *   fetch: (request) => new URL(request.url).pathname === Dispatch.path ? dispatch(request) : app(request)
 * }
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const toFetchHandler = <E>(
  layer: Layer.Layer<JobRegistry.JobRegistry, E>,
  options: Options
): (request: Request) => Promise<Response> => {
  const app = httpApp(options)
  const { handler } = HttpApp.toWebHandlerLayer(
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
      new URL(request.url, "http://localhost").pathname === DISPATCH_PATH
        ? app
        : Effect.succeed(HttpServerResponse.text("not found", { status: 404 }))),
    layer
  )
  return (request) => handler(request)
}

/**
 * `toFetchHandler` with the handlers' registry made here: `layer` registers
 * them (`Layer.mergeAll(A.toLayer(...), B.toLayer(...))`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const toFetchHandlerWith = <E>(
  handlers: Layer.Layer<never, E, JobRegistry.JobRegistry>,
  options: Options
): (request: Request) => Promise<Response> =>
  toFetchHandler(handlers.pipe(Layer.provideMerge(JobRegistry.layer)), options)
