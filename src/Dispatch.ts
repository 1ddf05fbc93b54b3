/**
 * The app's side of the dispatch round trip: the endpoint the `SchedulerDO`
 * calls when a job is due. It checks the signature, decodes the payload with
 * the job's Schema, runs the handler registered with `Job.toLayer`, and
 * answers with the status that decides the outcome (DESIGN.md "Wire contract").
 *
 * @since 0.1.0
 */
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Clock, DateTime, Effect, Either, Layer, Option, ParseResult, Redacted, Schema } from "effect"
import { DISPATCH_PATH, DispatchBody, type DispatchReply, SIGNATURE_HEADER, verify } from "./internal/wire.js"
import type { JobId } from "./Job.js"
import * as JobRegistry from "./JobRegistry.js"

/**
 * The path the Durable Object posts to: `/_lunora/scheduler/dispatch`.
 *
 * @since 0.1.0
 * @category constants
 */
export const path: typeof DISPATCH_PATH = DISPATCH_PATH

/**
 * Options of the dispatch endpoint.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The secret shared with the `SchedulerDO` (its `LUNORA_SCHEDULER_SECRET`). */
  readonly secret: Redacted.Redacted<string> | string
}

const reply = (body: DispatchReply, status: number) => HttpServerResponse.unsafeJson(body, { status })

const decodeBody = Schema.decodeEither(Schema.parseJson(DispatchBody))

/**
 * The endpoint as an `@effect/platform` `HttpApp`: mount it at `Dispatch.path`
 * in a router, or turn it into a fetch handler with `Dispatch.toFetchHandler`.
 *
 * Answers 200 with the encoded result; 401 to a bad or stale signature
 * (nothing runs); 400 to a malformed body and 422 to an unknown function or a
 * payload failing its Schema (the job dead-letters at once); 500 when the
 * handler failed (the attempt is retried under the job's policy).
 *
 * @since 0.1.0
 * @category constructors
 */
export const httpApp = (
  options: Options
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, HttpServerRequest.HttpServerRequest | JobRegistry.JobRegistry> => {
  const secret = Redacted.isRedacted(options.secret) ? options.secret : Redacted.make(options.secret)
  return Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (request.method !== "POST") return reply({ error: "dispatch takes POST" }, 405)
    const text = yield* Effect.orElseSucceed(request.text, () => "")
    const signed = yield* verify(secret, request.headers[SIGNATURE_HEADER], text, yield* Clock.currentTimeMillis)
    if (!signed) return reply({ error: "bad or stale signature" }, 401)
    const body = decodeBody(text)
    if (Either.isLeft(body)) {
      return reply({ error: `malformed dispatch body: ${ParseResult.TreeFormatter.formatErrorSync(body.left)}` }, 400)
    }
    const { args, attempt, functionPath, id, key, pool, scheduledFor, shardKey } = body.right
    const outcome = yield* JobRegistry.run(functionPath, args, {
      id: id as JobId,
      functionPath,
      attempt,
      scheduledFor: DateTime.unsafeMake(scheduledFor),
      shardKey: Option.fromNullable(shardKey),
      key: Option.fromNullable(key),
      pool: Option.fromNullable(pool)
    }).pipe(Effect.annotateLogs({ jobId: id, functionPath, attempt }))
    switch (outcome._tag) {
      case "Succeeded":
        return reply({ result: outcome.result }, 200)
      case "Rejected":
        yield* Effect.logWarning("dispatch rejected", outcome.reason).pipe(Effect.annotateLogs({ jobId: id, functionPath }))
        return reply({ error: outcome.reason }, 422)
      case "Failed":
        yield* Effect.logWarning(`attempt ${attempt} failed`, outcome.error).pipe(
          Effect.annotateLogs({ jobId: id, functionPath })
        )
        return reply({ error: outcome.error }, 500)
    }
  }).pipe(Effect.withSpan("Dispatch.handle"))
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
