/**
 * The admin API: an `@effect/platform` `HttpApi` over a live scheduler, for
 * operators (the `lunora-scheduler` CLI is its client). Jobs (list, get,
 * cancel, replay, purge), crons (list, trigger), pools (list, status, pause,
 * resume, resize, cancel queued) and stats, of any scheduler instance, behind
 * a bearer token; its OpenAPI document at `/openapi.json`. Mount it in a
 * Worker under `Admin.prefix`.
 *
 * @since 0.1.0
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiClient from "@effect/platform/HttpApiClient"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpServer from "@effect/platform/HttpServer"
import * as OpenApi from "@effect/platform/OpenApi"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as CronRegistry from "./CronRegistry.js"
import * as Job from "./Job.js"
import * as Scheduler from "./Scheduler.js"
import {
  CronNotFound,
  CronRunInProgress,
  InvalidOptions,
  InvalidPayload,
  InvalidTime,
  JobNotFound,
  JobNotReplayable,
  PoolNotFound,
  SchedulerUnavailable
} from "./SchedulerError.js"
import * as PullWorker from "./PullWorker.js"
import * as Webhook from "./Webhook.js"
import * as Workpool from "./Workpool.js"
import { describeFailure } from "./internal/domain/failure.js"
import type { Backend } from "./internal/services/backend.js"
import { MaxConcurrency, PoolName } from "./internal/domain/names.js"
import { type LiveOptions, makeRemote } from "./internal/services/remote.js"
import * as Dashboard from "./internal/runtime/dashboard.js"
import * as Metrics from "./internal/runtime/metrics.js"

/**
 * Where the admin API is served: every route is under this path.
 *
 * @since 0.1.0
 * @category constants
 */
export const prefix = "/_lunora/scheduler/admin"

/**
 * The request did not carry the admin token (`Authorization: Bearer <token>`);
 * nothing was read or changed.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>("@lunora/scheduler/Unauthorized")(
  "Unauthorized",
  {},
  HttpApiSchema.annotations({ status: 401 })
) {
  override get message(): string {
    return "the admin token is missing or wrong"
  }
}

/**
 * The bearer-token check every route of the admin API runs first.
 *
 * @since 0.1.0
 * @category security
 */
export class Authorization extends HttpApiMiddleware.Tag<Authorization>()("@lunora/scheduler/Admin/Authorization", {
  failure: Unauthorized,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

const InstanceName = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(128))
const Instance = Schema.Struct({ instance: InstanceName })
const JobPath = Schema.Struct({ instance: InstanceName, id: Schema.String.pipe(Schema.maxLength(128)) })
const PoolPath = Schema.Struct({ instance: InstanceName, name: PoolName })

const BadRequest = { status: 400 } as const
const NotFound = { status: 404 } as const
const Conflict = { status: 409 } as const
const Unavailable = { status: 503 } as const

/**
 * The query of `GET /instances/:instance/jobs`, as URL parameters.
 *
 * @since 0.1.0
 * @category models
 */
export const ListParams = Schema.Struct({
  state: Schema.optional(Job.JobState),
  functionPath: Schema.optional(Schema.String),
  limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 1000))),
  cursor: Schema.optional(Schema.String)
})

/**
 * How many jobs an instance holds in each state, and its crons and pools.
 *
 * @since 0.1.0
 * @category models
 */
export class Stats extends Schema.Class<Stats>("@lunora/scheduler/Stats")({
  instance: Schema.String,
  jobs: Schema.Struct({
    pending: Schema.Int,
    inProgress: Schema.Int,
    success: Schema.Int,
    failed: Schema.Int,
    canceled: Schema.Int,
    deadLettered: Schema.Int
  }),
  crons: Schema.Int,
  pools: Schema.Int
}) {}

const jobs = HttpApiGroup.make("jobs")
  .add(
    HttpApiEndpoint.get("list", "/instances/:instance/jobs")
      .setPath(Instance)
      .setUrlParams(ListParams)
      .addSuccess(Scheduler.JobPage)
      .addError(InvalidOptions, BadRequest)
  )
  .add(
    HttpApiEndpoint.get("get", "/instances/:instance/jobs/:id")
      .setPath(JobPath)
      .addSuccess(Job.JobInfo)
      .addError(JobNotFound, NotFound)
  )
  .add(
    HttpApiEndpoint.post("cancel", "/instances/:instance/jobs/:id/cancel")
      .setPath(JobPath)
      .addSuccess(Scheduler.CancelResult)
      .addError(JobNotFound, NotFound)
  )
  .add(
    HttpApiEndpoint.post("replay", "/instances/:instance/jobs/:id/replay")
      .setPath(JobPath)
      .addSuccess(Job.JobInfo)
      .addError(JobNotFound, NotFound)
      .addError(JobNotReplayable, Conflict)
  )
  .add(
    HttpApiEndpoint.post("purge", "/instances/:instance/purge")
      .setPath(Instance)
      .setPayload(Scheduler.PurgeQuery)
      .addSuccess(Schema.Struct({ purged: Schema.Int }))
      .addError(InvalidOptions, BadRequest)
  )

const crons = HttpApiGroup.make("crons")
  .add(
    HttpApiEndpoint.get("list", "/instances/:instance/crons")
      .setPath(Instance)
      .addSuccess(Schema.Array(CronRegistry.CronInfo))
  )
  .add(
    // a cron's name may hold "/" and spaces: it goes in the body, not the path
    HttpApiEndpoint.post("trigger", "/instances/:instance/crons/trigger")
      .setPath(Instance)
      .setPayload(Schema.Struct({ name: Schema.String }))
      .addSuccess(Schema.Struct({ id: Job.JobId }))
      .addError(CronNotFound, NotFound)
      .addError(CronRunInProgress, Conflict)
  )

const pools = HttpApiGroup.make("pools")
  .add(
    HttpApiEndpoint.get("list", "/instances/:instance/pools")
      .setPath(Instance)
      .addSuccess(Schema.Array(Workpool.PoolStatus))
  )
  .add(
    HttpApiEndpoint.get("status", "/instances/:instance/pools/:name")
      .setPath(PoolPath)
      .addSuccess(Workpool.PoolStatus)
      .addError(PoolNotFound, NotFound)
  )
  .add(
    HttpApiEndpoint.post("pause", "/instances/:instance/pools/:name/pause")
      .setPath(PoolPath)
      .addSuccess(Workpool.PoolStatus)
      .addError(PoolNotFound, NotFound)
  )
  .add(
    HttpApiEndpoint.post("resume", "/instances/:instance/pools/:name/resume")
      .setPath(PoolPath)
      .addSuccess(Workpool.PoolStatus)
      .addError(PoolNotFound, NotFound)
  )
  .add(
    HttpApiEndpoint.post("resize", "/instances/:instance/pools/:name/resize")
      .setPath(PoolPath)
      .setPayload(Schema.Struct({ maxConcurrency: MaxConcurrency }))
      .addSuccess(Workpool.PoolStatus)
      .addError(PoolNotFound, NotFound)
      .addError(InvalidOptions, BadRequest)
  )
  .add(
    HttpApiEndpoint.post("cancelQueued", "/instances/:instance/pools/:name/cancel-queued")
      .setPath(PoolPath)
      .addSuccess(Schema.Struct({ canceled: Schema.Int }))
      .addError(PoolNotFound, NotFound)
  )

/**
 * A webhook job to schedule over HTTP: a dedupe `key` (while a job with it
 * is pending or running, the same request answers that job, `Existing`),
 * when (`schedule.oneOff.executeAt`: an ISO time or epoch milliseconds),
 * where (`callback`: `url`, `method` POST by default, `headers`), the JSON
 * `payload`, and optionally `maxAttempts` (default 5, exponential backoff
 * from 30 seconds).
 *
 * @since 0.1.0
 * @category models
 */
export const WebhookRequest = Schema.Struct({
  key: Schema.optional(Schema.String),
  schedule: Schema.Struct({
    oneOff: Schema.Struct({ executeAt: Schema.Union(Schema.DateTimeUtc, Schema.Number) })
  }),
  callback: Schema.Struct({
    url: Schema.String,
    method: Schema.optional(Webhook.Method),
    headers: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String }))
  }),
  payload: Schema.Unknown,
  maxAttempts: Schema.optional(Schema.Int.pipe(Schema.between(1, 20)))
})

const HeldPath = Schema.Struct({ instance: InstanceName, name: PoolName, id: Schema.String.pipe(Schema.maxLength(128)) })
const LeaseMs = Schema.Int.pipe(Schema.between(1_000, 3_600_000))

const pull = HttpApiGroup.make("pull")
  .add(
    HttpApiEndpoint.post("lease", "/instances/:instance/pools/:name/lease")
      .setPath(PoolPath)
      .setPayload(Schema.Struct({ max: Schema.Int.pipe(Schema.between(1, 100)), leaseMs: Schema.optional(LeaseMs) }))
      .addSuccess(Schema.Array(PullWorker.PulledJob))
      .addError(PoolNotFound, NotFound)
  )
  .add(
    HttpApiEndpoint.post("heartbeat", "/instances/:instance/pools/:name/jobs/:id/heartbeat")
      .setPath(HeldPath)
      .setPayload(Schema.Struct({ token: Schema.String, leaseMs: Schema.optional(LeaseMs) }))
      .addSuccess(Schema.Struct({ leaseUntil: Schema.DateTimeUtc }))
      .addError(PullWorker.LeaseLost, { status: 409 })
  )
  .add(
    HttpApiEndpoint.post("complete", "/instances/:instance/pools/:name/jobs/:id/complete")
      .setPath(HeldPath)
      .setPayload(Schema.Struct({ token: Schema.String, result: Schema.optional(Schema.Unknown) }))
      .addSuccess(Schema.Struct({}))
      .addError(PullWorker.LeaseLost, { status: 409 })
  )
  .add(
    HttpApiEndpoint.post("fail", "/instances/:instance/pools/:name/jobs/:id/fail")
      .setPath(HeldPath)
      .setPayload(Schema.Struct({ token: Schema.String, error: Schema.String, retry: Schema.optional(Schema.Boolean) }))
      .addSuccess(Schema.Struct({}))
      .addError(PullWorker.LeaseLost, { status: 409 })
  )

const webhooks = HttpApiGroup.make("webhooks").add(
  HttpApiEndpoint.post("schedule", "/instances/:instance/webhooks")
    .setPath(Instance)
    .setPayload(WebhookRequest)
    .addSuccess(Scheduler.Scheduled, { status: 201 })
    .addError(InvalidTime, BadRequest)
    .addError(InvalidPayload, BadRequest)
)

const stats = HttpApiGroup.make("stats").add(
  HttpApiEndpoint.get("get", "/instances/:instance/stats").setPath(Instance).addSuccess(Stats)
)

/**
 * One shard's metrics (`lunora_scheduler_*`): counters and gauges with their
 * value, histograms with cumulative buckets, each with its labels.
 *
 * @since 0.1.0
 * @category models
 */
export const MetricSample = Schema.Struct({
  name: Schema.String,
  type: Schema.Literal("counter", "gauge", "histogram"),
  help: Schema.String,
  labels: Schema.Record({ key: Schema.String, value: Schema.String }),
  value: Schema.optional(Schema.Number),
  buckets: Schema.optional(Schema.Array(Schema.Tuple(Schema.NullOr(Schema.Number), Schema.Number))),
  count: Schema.optional(Schema.Number),
  sum: Schema.optional(Schema.Number)
})

/**
 * An instance's metrics, per shard.
 *
 * @since 0.1.0
 * @category models
 */
export const MetricsReport = Schema.Struct({
  instance: Schema.String,
  shards: Schema.Array(Schema.Struct({ shard: Schema.Int, samples: Schema.Array(MetricSample) }))
})

const metrics = HttpApiGroup.make("metrics")
  .add(HttpApiEndpoint.get("json", "/instances/:instance/metrics").setPath(Instance).addSuccess(MetricsReport))
  .add(
    HttpApiEndpoint.get("prometheus", "/instances/:instance/metrics/prometheus")
      .setPath(Instance)
      .addSuccess(HttpApiSchema.Text({ contentType: "text/plain; version=0.0.4; charset=utf-8" }))
  )

const meta = HttpApiGroup.make("meta").add(
  HttpApiEndpoint.get("openapi", "/openapi.json").addSuccess(Schema.Unknown)
)

/**
 * The admin API's definition: its groups `jobs`, `crons`, `pools`, `stats`,
 * `webhooks`, `pull`, `metrics` and `meta`, every route behind `Authorization`, and the errors each can
 * answer (the library's typed errors; `SchedulerUnavailable` is 503).
 *
 * @since 0.1.0
 * @category api
 */
export class Api extends HttpApi.make("lunora-scheduler-admin")
  .add(jobs)
  .add(crons)
  .add(pools)
  .add(stats)
  .add(webhooks)
  .add(pull)
  .add(metrics)
  .add(meta)
  .addError(InvalidOptions, BadRequest)
  .addError(SchedulerUnavailable, Unavailable)
  .addError(Unauthorized, { status: 401 })
  .middleware(Authorization)
  .prefix(prefix)
  .annotate(OpenApi.Title, "@lunora/scheduler admin API")
{}

/**
 * What the admin API is given: the live scheduler's options (any instance is
 * addressed by its name in the path; `instanceName` is not used) and the
 * token every request must carry as `Authorization: Bearer <token>`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends Omit<LiveOptions, "instanceName"> {
  /** The admin token: a long random secret (`wrangler secret put LUNORA_SCHEDULER_ADMIN_TOKEN`). */
  readonly token: string | Redacted.Redacted<string>
}

const digest = (text: string) => crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))

/** Whether `given` is `expected`, in time that does not depend on where they differ. */
const sameSecret = async (given: string, expected: string) => {
  const [a, b] = await Promise.all([digest(given), digest(expected)])
  const x = new Uint8Array(a)
  const y = new Uint8Array(b)
  let difference = 0
  for (let i = 0; i < x.length; i++) difference |= x[i]! ^ y[i]!
  return difference === 0
}

/** The backend of each instance the API is asked about, built once. */
const backendsOf = (options: Options) => {
  const built = new Map<string, Backend>()
  return (instance: string): Effect.Effect<Backend, InvalidOptions> => {
    const backend = built.get(instance)
    if (backend !== undefined) return Effect.succeed(backend)
    return Effect.tap(makeRemote({ ...options, instanceName: instance }), (made) => Effect.sync(() => built.set(instance, made)))
  }
}

/**
 * The admin API's handlers over the live scheduler, as a layer: serve it with
 * `HttpApiBuilder` (or use `toFetchHandler` in a Worker).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<HttpApi.Api, InvalidOptions> =>
  Layer.unwrapEffect(Effect.gen(function*() {
    const token = typeof options.token === "string" ? options.token : Redacted.value(options.token)
    if (token.length === 0) return yield* new InvalidOptions({ reason: "the admin token must not be empty" })
    const backendOf = backendsOf(options)
    const scheduler = (instance: string) => Effect.map(backendOf(instance), Scheduler.fromBackend)
    const registry = (instance: string) => Effect.map(backendOf(instance), CronRegistry.fromBackend)
    const pool = (instance: string, name: string) =>
      Effect.flatMap(backendOf(instance), (backend) => Workpool.fromBackend(backend, { name }))

    const AuthorizationLive = Layer.succeed(
      Authorization,
      Authorization.of({
        bearer: (given) =>
          Effect.flatMap(
            Effect.promise(() => sameSecret(Redacted.value(given), token)),
            (same) => (same ? Effect.void : new Unauthorized())
          )
      })
    )

    const JobsLive = HttpApiBuilder.group(Api, "jobs", (handlers) =>
      handlers
        .handle("list", ({ path, urlParams }) => Effect.flatMap(scheduler(path.instance), (s) => s.list(urlParams)))
        .handle("get", ({ path }) => Effect.flatMap(scheduler(path.instance), (s) => s.get(path.id)))
        .handle("cancel", ({ path }) => Effect.flatMap(scheduler(path.instance), (s) => s.cancel(path.id)))
        .handle("replay", ({ path }) => Effect.flatMap(scheduler(path.instance), (s) => s.replay(path.id)))
        .handle("purge", ({ path, payload }) =>
          Effect.flatMap(scheduler(path.instance), (s) => Effect.map(s.purge(payload), (purged) => ({ purged }))))
    )

    const CronsLive = HttpApiBuilder.group(Api, "crons", (handlers) =>
      handlers
        .handle("list", ({ path }) => Effect.flatMap(registry(path.instance), (r) => r.list))
        .handle("trigger", ({ path, payload }) =>
          Effect.flatMap(registry(path.instance), (r) => Effect.map(r.trigger(payload.name), (id) => ({ id }))))
    )

    const PoolsLive = HttpApiBuilder.group(Api, "pools", (handlers) => {
      const after = (
        { path }: { readonly path: typeof PoolPath.Type },
        change: (pool: Workpool.Workpool["Type"]) => Effect.Effect<unknown, PoolNotFound | SchedulerUnavailable | InvalidOptions>
      ) => Effect.flatMap(pool(path.instance, path.name), (p) => Effect.zipRight(change(p), p.status))
      return handlers
        .handle("list", ({ path }) =>
          Effect.flatMap(backendOf(path.instance), (backend) =>
            Effect.flatMap(backend.listPools(), (all) =>
              Effect.map(
                Effect.forEach(all, (status) =>
                  Effect.flatMap(pool(path.instance, status.name), (p) => p.status).pipe(
                    // a pool removed since it was listed is left out
                    Effect.catchTag("PoolNotFound", () => Effect.succeed(undefined))
                  )),
                (statuses) => statuses.filter((status) => status !== undefined)
              ))))
        .handle("status", ({ path }) => Effect.flatMap(pool(path.instance, path.name), (p) => p.status))
        .handle("pause", (request) => after(request, (p) => p.pause))
        .handle("resume", (request) => after(request, (p) => p.resume))
        .handle("resize", (request) => after(request, (p) => p.setMaxConcurrency(request.payload.maxConcurrency)))
        .handle("cancelQueued", ({ path }) =>
          Effect.flatMap(pool(path.instance, path.name), (p) => Effect.map(p.cancelQueued, (canceled) => ({ canceled }))))
    })

    const StatsLive = HttpApiBuilder.group(Api, "stats", (handlers) =>
      handlers.handle("get", ({ path }) =>
        Effect.flatMap(backendOf(path.instance), (backend) =>
          Effect.map(backend.stats(), (counts) => new Stats({ instance: path.instance, ...counts }))))
    )

    const WebhooksLive = HttpApiBuilder.group(Api, "webhooks", (handlers) =>
      handlers.handle("schedule", ({ path, payload: request }) =>
        Effect.flatMap(scheduler(path.instance), (s) =>
          s.submit([{
            job: Webhook.CallbackJob,
            payload: request.payload,
            at: request.schedule.oneOff.executeAt,
            options: {
              key: request.key,
              webhook: request.callback,
              ...(request.maxAttempts === undefined ? {} : { retry: { maxAttempts: request.maxAttempts } })
            }
          }])).pipe(
            Effect.map(([scheduled]) => scheduled!),
            // one job: a partial outcome cannot be, and its part's failure is the call's
            Effect.catchTag("SubmitIncomplete", (incomplete) => Effect.fail(incomplete.failure))
          ))
    )

    const puller = (instance: string, name: string) =>
      Effect.map(backendOf(instance), (backend) => PullWorker.fromBackend(backend, name))
    const PullLive = HttpApiBuilder.group(Api, "pull", (handlers) =>
      handlers
        .handle("lease", ({ path, payload }) =>
          Effect.flatMap(puller(path.instance, path.name), (worker) =>
            worker.lease(payload.max, payload.leaseMs === undefined ? undefined : Duration.millis(payload.leaseMs))))
        .handle("heartbeat", ({ path, payload }) =>
          Effect.flatMap(puller(path.instance, path.name), (worker) =>
            Effect.map(
              worker.heartbeat(
                { id: path.id as Job.JobId, token: payload.token },
                payload.leaseMs === undefined ? undefined : Duration.millis(payload.leaseMs)
              ),
              (leaseUntil) => ({ leaseUntil })
            )))
        .handle("complete", ({ path, payload }) =>
          Effect.flatMap(puller(path.instance, path.name), (worker) =>
            Effect.as(worker.complete({ id: path.id as Job.JobId, token: payload.token }, payload.result), {})))
        .handle("fail", ({ path, payload }) =>
          Effect.flatMap(puller(path.instance, path.name), (worker) =>
            Effect.as(worker.fail({ id: path.id as Job.JobId, token: payload.token }, payload.error, { retry: payload.retry }), {})))
    )

    const report = (instance: string) =>
      Effect.flatMap(backendOf(instance), (backend) =>
        backend.metrics === undefined
          ? Effect.succeed([])
          : backend.metrics())
    const MetricsLive = HttpApiBuilder.group(Api, "metrics", (handlers) =>
      handlers
        .handle("json", ({ path }) =>
          Effect.map(report(path.instance), (shards) => ({ instance: path.instance, shards })))
        .handle("prometheus", ({ path }) =>
          Effect.map(report(path.instance), (shards) =>
            Metrics.prometheus(
              shards.map(({ samples, shard }) => ({ labels: { instance: path.instance, shard: String(shard) }, samples }))
            )))
    )

    const document = OpenApi.fromApi(Api)
    const MetaLive = HttpApiBuilder.group(Api, "meta", (handlers) => handlers.handle("openapi", () => Effect.succeed(document)))

    const groups = Layer.mergeAll(JobsLive, CronsLive, PoolsLive, StatsLive, WebhooksLive, PullLive, MetricsLive, MetaLive)
    return HttpApiBuilder.api(Api).pipe(Layer.provide(groups), Layer.provide(AuthorizationLive))
  }))

/**
 * The admin API as a Worker's fetch handler: pass it the requests under
 * `Admin.prefix`. Built once, on the first request.
 *
 * @example
 * ```ts
 * let admin: ((request: Request) => Promise<Response>) | undefined
 * export default {
 *   fetch(request: Request, env: Env) {
 *     if (new URL(request.url).pathname.startsWith(Admin.prefix)) {
 *       admin ??= Admin.toFetchHandler({ namespace: env.SCHEDULER, binding: "SELF", token: env.LUNORA_SCHEDULER_ADMIN_TOKEN })
 *       return admin(request)
 *     }
 *     return app(request)
 *   }
 * }
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const toFetchHandler = (options: Options): (request: Request) => Promise<Response> => {
  const { handler } = HttpApiBuilder.toWebHandler(Layer.mergeAll(layer(options), HttpServer.layerContext))
  let html: string | undefined
  return (request) => {
    if (request.method === "GET" && new URL(request.url).pathname === dashboardPath) {
      html ??= Dashboard.page(prefix)
      return Promise.resolve(
        new Response(html, {
          headers: {
            "content-type": "text/html; charset=utf-8",
            "cache-control": "no-store",
            "x-frame-options": "DENY",
            "content-security-policy":
              "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'"
          }
        })
      )
    }
    return handler(request)
  }
}

/**
 * Where `toFetchHandler` serves the dashboard: one static page, holding no
 * data, that asks for the token and calls the admin API from the browser
 * (the only path it answers without the token).
 *
 * @since 0.1.0
 * @category constants
 */
export const dashboardPath = `${prefix}/dashboard`

/**
 * A typed client of the admin API at `url` (the Worker's origin), sending
 * `token`: each group's endpoints as methods (`client.jobs.list({ path: {
 * instance }, urlParams: {} })`). Needs an `HttpClient` (`clientLayer` uses
 * `fetch`).
 *
 * @since 0.1.0
 * @category client
 */
export const client = (options: { readonly url: string; readonly token: string | Redacted.Redacted<string> }) =>
  HttpApiClient.make(Api, {
    baseUrl: options.url,
    transformClient: HttpClient.mapRequest(HttpClientRequest.bearerToken(options.token))
  })

/**
 * A pull worker's calls over the admin API (for a worker outside
 * Cloudflare: a container, a process), on the pull pool `pool` of the
 * instance `instance`: give it to `PullWorker.run`.
 *
 * @since 0.1.0
 * @category client
 */
export const pullWorker = (options: {
  readonly url: string
  readonly token: string | Redacted.Redacted<string>
  readonly instance: string
  readonly pool: string
}): Effect.Effect<PullWorker.Client, never, HttpClient.HttpClient> =>
  Effect.map(client(options), (api): PullWorker.Client => {
    const path = { instance: options.instance, name: options.pool }
    const unavailable = (error: { readonly message: string }) =>
      new SchedulerUnavailable({ operation: "pull", reason: `the admin API at ${options.url}: ${error.message}` })
    const leaseMs = (lease: Duration.DurationInput | undefined) =>
      lease === undefined ? undefined : Math.round(Duration.toMillis(lease))
    const lift = <A, E extends { readonly _tag: string; readonly message: string }>(effect: Effect.Effect<A, E>) =>
      Effect.catchIf(
        effect,
        (error): error is Exclude<E, { readonly _tag: "LeaseLost" | "PoolNotFound" | "InvalidOptions" | "SchedulerUnavailable" }> =>
          !["LeaseLost", "PoolNotFound", "InvalidOptions", "SchedulerUnavailable"].includes(error._tag),
        (error) => Effect.fail(unavailable(error))
      ) as Effect.Effect<A, Extract<E, { readonly _tag: "LeaseLost" | "PoolNotFound" | "InvalidOptions" | "SchedulerUnavailable" }> | SchedulerUnavailable>
    return {
      pool: options.pool,
      lease: (max, lease) => lift(api.pull.lease({ path, payload: { max, leaseMs: leaseMs(lease) } })),
      heartbeat: (job, lease) =>
        lift(api.pull.heartbeat({ path: { ...path, id: job.id }, payload: { token: job.token, leaseMs: leaseMs(lease) } }))
          .pipe(Effect.map(({ leaseUntil }) => leaseUntil)),
      complete: (job, result) =>
        lift(api.pull.complete({ path: { ...path, id: job.id }, payload: { token: job.token, result } })).pipe(Effect.asVoid),
      fail: (job, error, failOptions) =>
        lift(api.pull.fail({
          path: { ...path, id: job.id },
          payload: { token: job.token, error: describeFailure(error), retry: failOptions?.retry }
        })).pipe(Effect.asVoid)
    }
  })

/**
 * The `HttpClient` the admin client uses: the platform's `fetch`.
 *
 * @since 0.1.0
 * @category client
 */
export const clientLayer: Layer.Layer<HttpClient.HttpClient> = FetchHttpClient.layer
