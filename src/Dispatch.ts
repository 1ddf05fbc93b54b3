/**
 * The app's side of the dispatch round trip: the endpoint the `SchedulerDO`
 * calls when a job is due. It checks the signature, decodes the payload with
 * the job's Schema, runs the handler registered with `Job.toLayer`, and
 * answers with the status that decides the outcome: 2xx succeeded, 4xx
 * rejected (no retry), anything else a failed attempt (retried). A router
 * mounts the one app at `Dispatch.path` (one job a request) and at
 * `Dispatch.batchPath` (several jobs a request, one signed outcome line per
 * job); an app that does not serve the batch path still works, one request
 * per job.
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
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { type DeclaredCrons, declaredPaths, describeUnknown, unknownPaths } from "./internal/domain/declared.js"
import { messageOf } from "./internal/domain/failure.js"
import { contextOf } from "./internal/domain/job.js"
import type { SchedulerRpc } from "./internal/runtime/protocol.js"
import {
  BATCH_HEADER,
  BATCH_PATH,
  BATCH_VERSION,
  type BatchJob,
  BodyTooLarge,
  DISPATCH_PATH,
  DispatchBatch,
  DispatchBody,
  type DispatchReply,
  macOf,
  MAX_BATCH_JOBS,
  MAX_BATCH_REQUEST_BYTES,
  MAX_REQUEST_BYTES,
  outcomeLine,
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
 * The path the Durable Object posts a batch of due jobs to:
 * `/_lunora/scheduler/dispatch/batch`.
 *
 * @since 0.1.0
 * @category constants
 */
export const batchPath: typeof BATCH_PATH = BATCH_PATH

/**
 * The most jobs one batch request carries.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxBatchJobs: number = MAX_BATCH_JOBS

/**
 * The largest batch request the endpoint reads; a larger one is answered 413
 * unread.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxBatchRequestBytes: number = MAX_BATCH_REQUEST_BYTES

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

type Confirming = Pick<SchedulerRpc, "confirmDispatch" | "confirmDispatches">

const decodeBody = Schema.decodeEither(Schema.parseJson(DispatchBody))

const decodeBatch = Schema.decodeEither(Schema.parseJson(DispatchBatch))

/** Requests this isolate has run, by signature: a replay of one runs nothing. */
const seen = new SeenRequests()

const encoder = new TextEncoder()

/**
 * The request's body as text, at most `limit` bytes: read from the web
 * `Request`'s stream when the server is one of the web's (a Worker's), and
 * stopped as soon as it is too long; on another server (Node's), read by the
 * server under its body-size limit, then measured.
 */
const bodyOf = (request: HttpServerRequest.HttpServerRequest, limit: number): Effect.Effect<string, unknown> =>
  request.source instanceof Request
    ? readText(request.source.body, limit)
    : request.text.pipe(
      HttpIncomingMessage.withMaxBodySize(Option.some(limit)),
      Effect.filterOrFail(
        (text) => text.length <= limit / 3 || encoder.encode(text).byteLength <= limit,
        () => new BodyTooLarge(limit)
      )
    )

const unsigned = (body: DispatchReply, status: number) => HttpServerResponse.unsafeJson(body, { status })

const notFound = Effect.sync(() => HttpServerResponse.text("not found", { status: 404 }))

const pathnameOf = (url: string): string => new URL(url, "http://localhost").pathname

type Answer = readonly [status: number, answer: DispatchReply]

/**
 * Runs one job (as a dispatch body or a batch carries it) through its
 * handler: the status and answer a single dispatch of it gets, and each line
 * of a batch answer carries.
 */
const outcomeOf = (job: BatchJob): Effect.Effect<Answer, never, JobRegistry.JobRegistry> => {
  const { attempt, functionPath, id } = job
  return JobRegistry.run(functionPath, job.args, contextOf(job)).pipe(
    Effect.annotateLogs({ jobId: id, functionPath, attempt }),
    Effect.flatMap((outcome): Effect.Effect<Answer> => {
      switch (outcome._tag) {
        case "Succeeded":
          return Effect.succeed([200, { result: outcome.result }] as const)
        case "Rejected":
          return Effect.logWarning("dispatch rejected", outcome.reason).pipe(
            Effect.annotateLogs({ jobId: id, functionPath }),
            Effect.as([422, { error: outcome.reason }] as const)
          )
        case "Failed":
          return Effect.logWarning(`attempt ${attempt} failed`, outcome.error).pipe(
            Effect.annotateLogs({ jobId: id, functionPath }),
            Effect.as([500, { error: outcome.error }] as const)
          )
      }
    })
  )
}

type Handler = Effect.Effect<HttpServerResponse.HttpServerResponse, never, HttpServerRequest.HttpServerRequest | JobRegistry.JobRegistry>

/** The endpoint's two handlers: one job at `Dispatch.path`, a batch at `Dispatch.batchPath`. */
const handlers = (options: Options): { readonly single: Handler; readonly batch: Handler } => {
  const secret = Redacted.isRedacted(options.secret) ? options.secret : Redacted.make(options.secret)
  const namespaces: ReadonlyArray<ConfirmingNamespace> = options.namespace === undefined
    ? []
    : Array.isArray(options.namespace)
    ? options.namespace
    : [options.namespace as ConfirmingNamespace]
  /**
   * Which namespace each sender's id belongs to, once found: a namespace
   * refuses another's id by throwing, which costs more than the call itself.
   * (Stubs are made per request: one may not outlive its request's I/O.)
   */
  const namespaceOf = new Map<string, ConfirmingNamespace>()
  /** The sender's stub in the first namespace its id belongs to (an id of another namespace is refused by it). */
  const senderOf = (scheduler: string): Confirming | undefined => {
    const known = namespaceOf.get(scheduler)
    if (known !== undefined) return known.get(known.idFromString(scheduler) as never) as Confirming
    for (const namespace of namespaces) {
      let id: unknown
      try {
        id = namespace.idFromString(scheduler)
      } catch {
        continue
      }
      if (namespaceOf.size >= 10_000) namespaceOf.clear()
      namespaceOf.set(scheduler, namespace)
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

  type Reply = (answer: DispatchReply, status: number) => Effect.Effect<HttpServerResponse.HttpServerResponse>

  /**
   * What both paths check before they read the body's fields, in order: the
   * method, the size, the signature, the declared crons, a replay. `serve`
   * answers a request that passes them all.
   */
  const admitted = (
    limit: number,
    serve: (body: string, mac: string, reply: Reply) => Handler
  ): Handler =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      if (request.method !== "POST") return unsigned({ error: "dispatch takes POST" }, 405)
      const tooLarge = unsigned({ error: `the request is over ${limit} bytes` }, 413)
      if (Number(request.headers["content-length"] ?? 0) > limit) return tooLarge
      const text = yield* Effect.either(bodyOf(request, limit))
      if (Either.isLeft(text) && text.left instanceof BodyTooLarge) return tooLarge
      const body = Either.getOrElse(text, () => "")
      const header = request.headers[SIGNATURE_HEADER]
      const now = yield* Clock.currentTimeMillis
      if (!(yield* verify(secret, header, body, now))) return unsigned({ error: "bad or stale signature" }, 401)
      const mac = macOf(header)!
      const reply: Reply = (answer, status) => {
        const text = JSON.stringify(answer)
        return Effect.map(signReply(secret, mac, status, text), (signature) =>
          HttpServerResponse.text(text, { status, contentType: "application/json", headers: { [REPLY_HEADER]: signature } }))
      }
      const problem = yield* misconfigured
      if (problem !== null) return yield* reply({ error: problem }, 500)
      if (!seen.firstSight(mac, now)) return yield* reply({ error: "a replayed request: nothing ran" }, 409)
      return yield* serve(body, mac, reply)
    })

  /**
   * With a namespace, asks the `SchedulerDO` that sent the request to
   * confirm it (`ask`): the refusal to answer with when it does not, or
   * `undefined` when it does, or when there is no one to ask.
   */
  const confirmation = (
    scheduler: string | null,
    what: "dispatch" | "batch",
    ask: (sender: Confirming) => Promise<boolean>
  ): Effect.Effect<readonly [DispatchReply, number] | undefined> => {
    if (namespaces.length === 0 || scheduler === null) return Effect.succeed(undefined)
    const sender = senderOf(scheduler)
    if (sender === undefined) {
      return Effect.succeed([{
        error: "the SchedulerDO that sent this is in none of the endpoint's namespaces: add its namespace to the Dispatch options"
      }, 503])
    }
    return Effect.tryPromise(() => ask(sender)).pipe(
      Effect.match({
        onFailure: (error) => [{ error: `the SchedulerDO could not confirm the ${what}: ${messageOf(error.error)}` }, 503] as const,
        onSuccess: (confirmed) =>
          confirmed === true ? undefined : [{
            error: what === "dispatch"
              ? "the SchedulerDO did not confirm this dispatch (a replay, or its attempt has ended): nothing ran"
              : "the SchedulerDO did not confirm this batch (a replay, or one of its attempts has ended): nothing ran"
          }, 409] as const
      })
    )
  }

  const single = admitted(MAX_REQUEST_BYTES, (body, _mac, reply) =>
    Effect.gen(function*() {
      const decoded = decodeBody(body)
      if (Either.isLeft(decoded)) {
        return yield* reply({ error: `malformed dispatch body: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}` }, 400)
      }
      const { attempt, id, lease, scheduler } = decoded.right
      const refusal = lease === null
        ? undefined
        : yield* confirmation(scheduler, "dispatch", (sender) => sender.confirmDispatch(lease, id, attempt))
      if (refusal !== undefined) return yield* reply(...refusal)
      return yield* Effect.flatMap(outcomeOf(decoded.right), ([status, answer]) => reply(answer, status))
    })).pipe(Effect.withSpan("Dispatch.handle", { captureStackTrace: false }))

  const batch = admitted(MAX_BATCH_REQUEST_BYTES, (body, mac, reply) =>
    Effect.gen(function*() {
      const decoded = decodeBatch(body)
      if (Either.isLeft(decoded)) {
        return yield* reply({ error: `malformed batch body: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}` }, 400)
      }
      const { jobs, lease, scheduler } = decoded.right
      const refusal = yield* confirmation(
        scheduler,
        "batch",
        (sender) => sender.confirmDispatches(lease, jobs.map((job) => [job.id, job.attempt] as const))
      )
      if (refusal !== undefined) return yield* reply(...refusal)
      // each job on its own fiber, forked from this one (its logger, annotations and interruptibility: under
      // `toFetchHandler` a job runs to its end even when the answer is dropped, as a single dispatch does)
      const lines = yield* Queue.unbounded<string>()
      const running = yield* Scope.make()
      for (let index = 0; index < jobs.length; index++) {
        yield* outcomeOf(jobs[index]!).pipe(
          Effect.flatMap(([status, answer]) => Effect.promise(() => outcomeLine(secret, mac, index, status, JSON.stringify(answer)))),
          Effect.flatMap((line) => Queue.offer(lines, line)),
          Effect.forkIn(running)
        )
      }
      return HttpServerResponse.stream(
        Stream.fromQueue(lines).pipe(
          Stream.take(jobs.length),
          Stream.encodeText,
          Stream.ensuring(Scope.close(running, Exit.void))
        ),
        { contentType: "text/plain; charset=utf-8", headers: { [BATCH_HEADER]: String(BATCH_VERSION) } }
      )
    })).pipe(Effect.withSpan("Dispatch.batch", { captureStackTrace: false }))

  return { single, batch }
}

/**
 * The endpoint as an `@effect/platform` `HttpApp`: mount the same app at
 * `Dispatch.path` and at `Dispatch.batchPath` in a router, or turn it into a
 * fetch handler with `Dispatch.toFetchHandler`. A request whose path is
 * `Dispatch.batchPath` is a batch; any other is one job. An app that serves
 * only `Dispatch.path` still works: the `SchedulerDO` then sends one request
 * per job.
 *
 * One job: answers 200 with the encoded result; 401 to a bad or stale
 * signature (nothing runs); 409 to a replayed request, or one the
 * `SchedulerDO` does not confirm (nothing runs); 413 to a body over
 * `maxRequestBytes` (unread); 400 to a malformed body and 422 to an unknown
 * function or a payload failing its Schema (the job dead-letters at once);
 * 500 when the handler failed (the attempt is retried under the job's
 * policy), and to every signed request while a declared cron
 * (`options.crons`) has no handler. Every answer to a signed request carries
 * the endpoint's own signature (`x-lunora-reply`): the `SchedulerDO` counts
 * no other answer as an outcome.
 *
 * A batch (up to `maxBatchJobs` jobs, `maxBatchRequestBytes`) is refused as
 * a whole in the same terms (405, 413, 401, 500, 409, 400, 503), and
 * otherwise runs every job at once and answers 200 with `x-lunora-batch: 2`
 * and one signed line per job, `<index> <status> <mac> <body>`, streamed as
 * each job ends: the status and body a single dispatch of that job gets.
 *
 * @since 0.1.0
 * @category constructors
 */
export const httpApp = (
  options: Options
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, HttpServerRequest.HttpServerRequest | JobRegistry.JobRegistry> => {
  const { batch, single } = handlers(options)
  return Effect.flatMap(
    HttpServerRequest.HttpServerRequest,
    (request) => pathnameOf(request.url) === BATCH_PATH ? batch : single
  )
}

/**
 * A plain `fetch` handler for a Worker: answers `Dispatch.path` and
 * `Dispatch.batchPath` with `httpApp`, and 404 elsewhere. `layer` provides
 * the handlers (`Job.toLayer`) and what they need; it is built once, on the
 * first request.
 *
 * ```ts
 * const dispatch = Dispatch.toFetchHandler(AppLayer, { secret: env.LUNORA_SCHEDULER_SECRET })
 * export default {
 *   fetch: (request) => new URL(request.url).pathname.startsWith(Dispatch.path) ? dispatch(request) : app(request)
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
  const { batch, single } = handlers(options)
  const { handler } = HttpApp.toWebHandlerLayer(
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const pathname = pathnameOf(request.url)
      return pathname === DISPATCH_PATH ? single : pathname === BATCH_PATH ? batch : notFound
    }),
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
