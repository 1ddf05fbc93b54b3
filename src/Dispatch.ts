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
import * as Headers from "@effect/platform/Headers"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as FiberRefs from "effect/FiberRefs"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Runtime from "effect/Runtime"
import * as Tracer from "effect/Tracer"
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
  decodeDispatchBatch,
  decodeDispatchBody,
  type DispatchReply,
  macOf,
  MAX_BATCH_JOBS,
  MAX_BATCH_REQUEST_BYTES,
  MAX_REQUEST_BYTES,
  outcomeLine,
  readBody,
  REPLY_HEADER,
  replySignatureOf,
  SeenRequests,
  SIGNATURE_HEADER,
  verified
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

/** Requests this isolate has run, by signature: a replay of one runs nothing. */
const seen = new SeenRequests()

const encoder = new TextEncoder()

const pathnameOf = (url: string): string => new URL(url, "http://localhost").pathname

/** An answer that is not the endpoint's signed word on a job: the sender counts it as no outcome. */
const unsigned = (answer: DispatchReply, status: number): Response =>
  new Response(JSON.stringify(answer), { status, headers: { "content-type": "application/json" } })

type Answer = readonly [status: number, answer: DispatchReply]

/**
 * Runs one job (as a dispatch body or a batch carries it) through its
 * handler: the status and answer a single dispatch of it gets, and each line
 * of a batch answer carries. It is the whole of a fiber of its own: the
 * job's log annotations and its handler's services are set on that fiber,
 * with nothing to restore (`annotateLogs` or `locally` would cost about 25
 * Effect steps a job each).
 */
const outcomeOf = (job: BatchJob): Effect.Effect<Answer, never, JobRegistry.JobRegistry> => {
  const { attempt, functionPath, id } = job
  const annotated = FiberRef.update(
    FiberRef.currentLogAnnotations,
    (annotations) => HashMap.set(HashMap.set(HashMap.set(annotations, "jobId", id), "functionPath", functionPath), "attempt", attempt)
  )
  return Effect.zipRight(annotated, JobRegistry.run(functionPath, job.args, contextOf(job), true)).pipe(
    Effect.flatMap((outcome): Effect.Effect<Answer> => {
      switch (outcome._tag) {
        case "Succeeded":
          return Effect.succeed([200, { result: outcome.result }] as const)
        case "Rejected":
          return Effect.as(Effect.logWarning("dispatch rejected", outcome.reason), [422, { error: outcome.reason }] as const)
        case "Failed":
          return Effect.as(Effect.logWarning(`attempt ${attempt} failed`, outcome.error), [500, { error: outcome.error }] as const)
      }
    })
  )
}

/**
 * A span made at once and the runtime whose fibers run under it: what
 * `Effect.withSpan` gives one fiber, shared by many (a batch's jobs) for the
 * price of one context. `end` it with what it covered.
 */
const spanOver = <R>(
  runtime: Runtime.Runtime<R>,
  name: string,
  attributes: Record<string, unknown>
): { readonly runtime: Runtime.Runtime<R>; readonly end: (exit: Exit.Exit<unknown, unknown>) => void } => {
  const span = Runtime.runSync(runtime)(Effect.makeSpan(name, { captureStackTrace: false, attributes }))
  return {
    runtime: Runtime.provideService(runtime, Tracer.ParentSpan, span),
    end: (exit) => span.end(clockOf(runtime).unsafeCurrentTimeNanos(), exit)
  }
}

/**
 * The answer a job's run ended with: its outcome's, or, when its fiber was
 * interrupted (a handler's failure or defect is a `Failed` outcome already),
 * a failed attempt, to be retried.
 */
const answerOf = (exit: Exit.Exit<Answer>): Answer =>
  Exit.isSuccess(exit) ? exit.value : [500, { error: `the attempt was interrupted: ${Cause.pretty(exit.cause)}` }]

/** The runtime's `Clock` (a `TestClock` in tests), read without running an Effect. */
const clockOf = (runtime: Runtime.Runtime<never>): Clock.Clock =>
  Context.get(FiberRefs.getOrDefault(runtime.fiberRefs, DefaultServices.currentServices), Clock.Clock)

/** The current time by the runtime's `Clock`. */
const nowOf = (runtime: Runtime.Runtime<never>): number => clockOf(runtime).unsafeCurrentTimeMillis()

/**
 * One path of the endpoint over a web `Request`, as plain Promises: the
 * handlers run on `runtime` (the fetch handler's built layer, or the fiber
 * that serves the `HttpApp`: its logger and annotations), one fiber a
 * job, under one span a request; the rest (reading, verifying,
 * confirming, signing, streaming the lines) costs no fiber.
 */
type Endpoint = (request: Request, runtime: Runtime.Runtime<JobRegistry.JobRegistry>) => Promise<Response>

/** The endpoint's two paths: one job at `Dispatch.path`, a batch at `Dispatch.batchPath`. */
const endpointsOf = (options: Options): { readonly single: Endpoint; readonly batch: Endpoint } => {
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
  const misconfigured = (runtime: Runtime.Runtime<JobRegistry.JobRegistry>): string | null => {
    if (crons === undefined) return null
    const registry = Context.get(runtime.context, JobRegistry.JobRegistry)
    const known = problems.get(registry)
    if (known !== undefined) return known
    const unknown = unknownPaths(declaredPaths(crons), (functionPath) => Option.isSome(registry.lookup(functionPath)))
    const problem = unknown.length === 0
      ? null
      : `${describeUnknown(unknown)}: the dispatch endpoint refuses every job until each declared cron has a handler`
    problems.set(registry, problem)
    if (problem !== null) Runtime.runFork(runtime, Effect.logError(problem))
    return problem
  }

  /** A request past every check: its body, its MAC, and how to answer it signed. */
  interface Admitted {
    readonly body: string
    readonly mac: string
    readonly reply: (answer: DispatchReply, status: number) => Promise<Response>
  }

  /**
   * What both paths check before they read the body's fields, in order: the
   * method, the size, the signature, the declared crons, a replay. The
   * answer to a request refused, or the request admitted.
   */
  const admitted = async (
    request: Request,
    runtime: Runtime.Runtime<JobRegistry.JobRegistry>,
    limit: number
  ): Promise<Response | Admitted> => {
    if (request.method !== "POST") return unsigned({ error: "dispatch takes POST" }, 405)
    const tooLarge = () => unsigned({ error: `the request is over ${limit} bytes` }, 413)
    if (Number(request.headers.get("content-length") ?? 0) > limit) return tooLarge()
    let body = ""
    try {
      body = await readBody(request.body, limit)
    } catch (error) {
      if (error instanceof BodyTooLarge) return tooLarge()
    }
    const header = request.headers.get(SIGNATURE_HEADER)
    const now = nowOf(runtime)
    if (!(await verified(secret, header, body, now))) return unsigned({ error: "bad or stale signature" }, 401)
    const mac = macOf(header)!
    const reply = async (answer: DispatchReply, status: number) => {
      const text = JSON.stringify(answer)
      return new Response(text, {
        status,
        headers: { "content-type": "application/json", [REPLY_HEADER]: await replySignatureOf(secret, mac, status, text) }
      })
    }
    const problem = misconfigured(runtime)
    if (problem !== null) return reply({ error: problem }, 500)
    if (!seen.firstSight(mac, now)) return reply({ error: "a replayed request: nothing ran" }, 409)
    return { body, mac, reply }
  }

  /**
   * With a namespace, asks the `SchedulerDO` that sent the request to
   * confirm it (`ask`): the refusal to answer with when it does not, or
   * `undefined` when it does, or when there is no one to ask.
   */
  const refusal = async (
    scheduler: string | null,
    what: "dispatch" | "batch",
    ask: (sender: Confirming) => Promise<boolean>
  ): Promise<Answer | undefined> => {
    if (namespaces.length === 0 || scheduler === null) return undefined
    const sender = senderOf(scheduler)
    if (sender === undefined) {
      return [503, {
        error: "the SchedulerDO that sent this is in none of the endpoint's namespaces: add its namespace to the Dispatch options"
      }]
    }
    let confirmed: unknown
    try {
      confirmed = await ask(sender)
    } catch (error) {
      return [503, { error: `the SchedulerDO could not confirm the ${what}: ${messageOf(error)}` }]
    }
    return confirmed === true ? undefined : [409, {
      error: what === "dispatch"
        ? "the SchedulerDO did not confirm this dispatch (a replay, or its attempt has ended): nothing ran"
        : "the SchedulerDO did not confirm this batch (a replay, or one of its attempts has ended): nothing ran"
    }]
  }

  const single: Endpoint = async (request, runtime) => {
    const admission = await admitted(request, runtime, MAX_REQUEST_BYTES)
    if (admission instanceof Response) return admission
    const { body, reply } = admission
    const decoded = decodeDispatchBody(body)
    if (Either.isLeft(decoded)) {
      return reply({ error: `malformed dispatch body: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}` }, 400)
    }
    const { attempt, id, lease, scheduler } = decoded.right
    const refused = lease === null
      ? undefined
      : await refusal(scheduler, "dispatch", (sender) => sender.confirmDispatch(lease, id, attempt))
    if (refused !== undefined) return reply(refused[1], refused[0])
    // the span is made in the job's fiber, which ends with the job: it is set there, with no runtime of its own
    let span: Tracer.Span | undefined
    const exit = await Runtime.runPromiseExit(
      runtime,
      Effect.flatMap(Effect.makeSpan("Dispatch.handle", { captureStackTrace: false, attributes: { jobId: id } }), (made) => {
        span = made
        return Effect.zipRight(
          FiberRef.update(FiberRef.currentContext, Context.add(Tracer.ParentSpan, made)),
          outcomeOf(decoded.right)
        )
      })
    )
    span?.end(clockOf(runtime).unsafeCurrentTimeNanos(), exit)
    const [status, answer] = answerOf(exit)
    return reply(answer, status)
  }

  const batch: Endpoint = async (request, runtime) => {
    const admission = await admitted(request, runtime, MAX_BATCH_REQUEST_BYTES)
    if (admission instanceof Response) return admission
    const { body, mac, reply } = admission
    const decoded = decodeDispatchBatch(body)
    if (Either.isLeft(decoded)) {
      return reply({ error: `malformed batch body: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}` }, 400)
    }
    const { jobs, lease, scheduler } = decoded.right
    const refused = await refusal(
      scheduler,
      "batch",
      (sender) => sender.confirmDispatches(lease, jobs.map((job) => [job.id, job.attempt] as const))
    )
    if (refused !== undefined) return reply(refused[1], refused[0])
    // each line is written as its job ends; a dropped answer (the reader gone) stops no job: each runs to its end,
    // as a single dispatch does
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>()
    const writer = writable.getWriter()
    const ignore = () => undefined
    // the lines signed within one turn of the event loop go out in one chunk: jobs that end together cost the
    // stream one write, and the sender one read; a job that ends later is still written as it ends
    let signed: Array<string> = []
    const writeSigned = () => {
      if (signed.length === 0) return
      const text = signed.join("")
      signed = []
      void writer.write(encoder.encode(text)).catch(ignore)
    }
    // one span for the batch, the parent of each job's; each job its own fiber (no parent fiber joins them),
    // its line signed as a plain promise; the answer ends with the last line
    const span = spanOver(runtime, "Dispatch.batch", { jobs: jobs.length, jobIds: jobs.map((job) => job.id) })
    let unwritten = jobs.length
    const lineWritten = () => {
      if (--unwritten > 0) return
      writeSigned()
      void writer.close().catch(ignore)
      span.end(Exit.void)
    }
    jobs.forEach((job, index) => {
      Runtime.runFork(span.runtime, outcomeOf(job)).addObserver((exit) => {
        const [status, answer] = answerOf(exit)
        outcomeLine(secret, mac, index, status, JSON.stringify(answer)).then((line) => {
          // the last line goes out at once, with any waiting
          if (signed.push(line) === 1 && unwritten > 1) setTimeout(writeSigned, 0)
        }, ignore).finally(lineWritten)
      })
    })
    return new Response(readable, {
      status: 200,
      headers: { "content-type": "text/plain; charset=utf-8", [BATCH_HEADER]: String(BATCH_VERSION) }
    })
  }

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
  const { batch, single } = endpointsOf(options)
  return Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const runtime = yield* Effect.runtime<JobRegistry.JobRegistry>()
    const web = HttpServerRequest.toWebEither(request, { runtime })
    if (Either.isLeft(web)) return HttpServerResponse.text("bad request", { status: 400 })
    const endpoint = pathnameOf(request.url) === BATCH_PATH ? batch : single
    const response = yield* Effect.promise(() => endpoint(web.right, runtime))
    // a web server takes the web response as it is; another (Node's) gets its body as a stream
    return request.source instanceof Request
      ? HttpServerResponse.raw(response, { status: response.status, headers: Headers.fromInput(response.headers) })
      : HttpServerResponse.fromWeb(response)
  })
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
  const { batch, single } = endpointsOf(options)
  const handlers = ManagedRuntime.make(layer)
  let built: Runtime.Runtime<JobRegistry.JobRegistry> | undefined
  return async (request) => {
    const pathname = pathnameOf(request.url)
    const endpoint = pathname === DISPATCH_PATH ? single : pathname === BATCH_PATH ? batch : undefined
    if (endpoint === undefined) return new Response("not found", { status: 404 })
    built ??= await handlers.runtime()
    return endpoint(request, built)
  }
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
