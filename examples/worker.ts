/**
 * The example app: a Worker that schedules jobs with the live `Scheduler`
 * and runs them when its `SchedulerDO` dispatches them back. Bound in the
 * root `wrangler.jsonc`; `npm start` serves it locally, `npm run demo` drives it.
 *
 * Routes (JSON in, JSON out):
 *   POST   /exports              { userId, format, delayMs? }  export in 5 minutes (or delayMs)
 *   POST   /posts/:postId/publish { followUpMs? }               publish now; subscribers 30 s later
 *   POST   /reminders            { userId, text, delayMs }     remind later
 *   DELETE /reminders/:id                                       cancel it
 *   POST   /flaky                { name, succeedOn?, attempts?, delayMs? } a job that fails until succeedOn
 *   GET    /jobs?state=&cursor=  list;  GET /jobs/:id  one;  POST /jobs/:id/replay
 *   GET    /crons                                              the crons of examples/crons.ts, with next and last runs
 *   POST   /syncs                { accountIds, ms? }           CRM syncs into the "crm-sync" workpool (2 at once)
 *   GET    /pools/crm-sync       its status;  POST /pools/crm-sync/pause | /resume
 *   POST   /_lunora/scheduler/dispatch                          the SchedulerDO's calls (signed)
 */
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { env } from "cloudflare:workers"
import { Duration, Effect, Layer, Schema } from "effect"
import { CronRegistry, Dispatch, Job, JobRegistry, Scheduler, Workpool } from "@lunora/scheduler"
import { SchedulerDO } from "@lunora/scheduler/cloudflare"
import crons from "./crons.js"
import { BuildExport, Flaky, handlers, PublishPost, SendReminder, SyncAccount } from "./jobs.js"

export { SchedulerDO }

interface Env {
  readonly SCHEDULER: DurableObjectNamespace<SchedulerDO>
  readonly LUNORA_SCHEDULER_SECRET: string
}
const { LUNORA_SCHEDULER_SECRET, SCHEDULER } = env as unknown as Env

/** The scheduler: jobs come back through the `SELF` service binding (the Worker itself). */
const SchedulerLive = Scheduler.layer({ namespace: SCHEDULER, binding: "SELF" })

/** The crons of examples/crons.ts, reconciled into the same SchedulerDO when the app starts (first request). */
const CronsLive = CronRegistry.layer({ namespace: SCHEDULER, binding: "SELF", crons })

/** A workpool in the same SchedulerDO: CRM syncs, at most two at once. */
const SyncPoolLive = Workpool.layer({ namespace: SCHEDULER, binding: "SELF", name: "crm-sync", maxConcurrency: 2 })

/** The handlers need the scheduler too (publishing a post schedules its follow-up). */
const AppLayer = handlers.pipe(
  Layer.provideMerge(Layer.mergeAll(SchedulerLive, CronsLive, SyncPoolLive, JobRegistry.layer))
)

const json = (body: unknown, status = 200) => HttpServerResponse.unsafeJson(body, { status })

const scheduled = (id: string) =>
  Effect.flatMap(Scheduler.Scheduler, (scheduler) => scheduler.get(id)).pipe(
    Effect.map((job) => json({ id, scheduledFor: job.scheduledFor }, 201))
  )

const ExportRequest = Schema.Struct({
  userId: Schema.String,
  format: Schema.Literal("csv", "json"),
  delayMs: Schema.optional(Schema.Int)
})
const PublishRequest = Schema.Struct({ followUpMs: Schema.optional(Schema.Int) })
const ReminderRequest = Schema.Struct({ userId: Schema.String, text: Schema.String, delayMs: Schema.Int })
const FlakyRequest = Schema.Struct({
  name: Schema.String,
  succeedOn: Schema.optional(Schema.Int),
  attempts: Schema.optional(Schema.Int),
  delayMs: Schema.optional(Schema.Int)
})
const IdParams = Schema.Struct({ id: Schema.String })
const SyncRequest = Schema.Struct({ accountIds: Schema.Array(Schema.String), ms: Schema.optional(Schema.Int) })
const PoolAction = Schema.Struct({ action: Schema.Literal("pause", "resume") })

/** The dispatch endpoint: one job per request at `Dispatch.path`, a batch at `Dispatch.batchPath`. */
const dispatch = Dispatch.httpApp({ secret: LUNORA_SCHEDULER_SECRET, namespace: SCHEDULER })

const router = HttpRouter.empty.pipe(
  HttpRouter.post(
    "/exports",
    Effect.gen(function*() {
      const { delayMs, ...payload } = yield* HttpServerRequest.schemaBodyJson(ExportRequest)
      const scheduler = yield* Scheduler.Scheduler
      const delay = delayMs === undefined ? Duration.minutes(5) : Duration.millis(delayMs)
      return yield* scheduled(yield* scheduler.runAfter(delay, BuildExport, payload))
    })
  ),
  HttpRouter.post(
    "/posts/:postId/publish",
    Effect.gen(function*() {
      const { postId } = yield* HttpRouter.schemaPathParams(Schema.Struct({ postId: Schema.String }))
      const { followUpMs } = yield* HttpServerRequest.schemaBodyJson(PublishRequest)
      const scheduler = yield* Scheduler.Scheduler
      return yield* scheduled(yield* scheduler.runAfter(0, PublishPost, { postId, followUpMs }))
    })
  ),
  HttpRouter.post(
    "/reminders",
    Effect.gen(function*() {
      const { delayMs, ...payload } = yield* HttpServerRequest.schemaBodyJson(ReminderRequest)
      const scheduler = yield* Scheduler.Scheduler
      return yield* scheduled(
        yield* scheduler.runAfter(Duration.millis(delayMs), SendReminder, payload, { key: `reminder:${payload.userId}` })
      )
    })
  ),
  HttpRouter.del(
    "/reminders/:id",
    Effect.gen(function*() {
      const { id } = yield* HttpRouter.schemaPathParams(IdParams)
      const scheduler = yield* Scheduler.Scheduler
      return json(yield* scheduler.cancel(id))
    })
  ),
  HttpRouter.post(
    "/flaky",
    Effect.gen(function*() {
      const { attempts, delayMs, ...payload } = yield* HttpServerRequest.schemaBodyJson(FlakyRequest)
      const scheduler = yield* Scheduler.Scheduler
      return yield* scheduled(
        yield* scheduler.runAfter(Duration.millis(delayMs ?? 0), Flaky, payload, {
          retry: { maxAttempts: attempts ?? 3, backoff: "linear", baseMs: 500 }
        })
      )
    })
  ),
  HttpRouter.get(
    "/jobs",
    Effect.gen(function*() {
      const query = yield* HttpServerRequest.schemaSearchParams(Scheduler.ListQuery.pipe(Schema.omit("limit")))
      const scheduler = yield* Scheduler.Scheduler
      const page = yield* scheduler.list({ ...query, limit: 1000 })
      return json(yield* Schema.encode(Scheduler.JobPage)(page))
    })
  ),
  HttpRouter.get(
    "/jobs/:id",
    Effect.gen(function*() {
      const { id } = yield* HttpRouter.schemaPathParams(IdParams)
      const scheduler = yield* Scheduler.Scheduler
      return json(yield* Schema.encode(Job.JobInfo)(yield* scheduler.get(id)))
    })
  ),
  HttpRouter.post(
    "/jobs/:id/replay",
    Effect.gen(function*() {
      const { id } = yield* HttpRouter.schemaPathParams(IdParams)
      const scheduler = yield* Scheduler.Scheduler
      yield* scheduler.replay(id)
      return json({ id })
    })
  ),
  HttpRouter.get(
    "/crons",
    Effect.gen(function*() {
      const registry = yield* CronRegistry.CronRegistry
      return json(yield* Schema.encode(Schema.Array(CronRegistry.CronInfo))(yield* registry.list))
    })
  ),
  HttpRouter.post(
    "/syncs",
    Effect.gen(function*() {
      const { accountIds, ms } = yield* HttpServerRequest.schemaBodyJson(SyncRequest)
      const pool = yield* Workpool.Workpool
      const enqueued = yield* pool.enqueueMany(accountIds.map((accountId) => ({ job: SyncAccount, payload: { accountId, ms } })))
      return json({ ids: enqueued.map((job) => job.id) }, 201)
    })
  ),
  HttpRouter.get(
    "/pools/crm-sync",
    Effect.gen(function*() {
      const pool = yield* Workpool.Workpool
      return json(yield* Schema.encode(Workpool.PoolStatus)(yield* pool.status))
    })
  ),
  HttpRouter.post(
    "/pools/crm-sync/:action",
    Effect.gen(function*() {
      const { action } = yield* HttpRouter.schemaPathParams(PoolAction)
      const pool = yield* Workpool.Workpool
      yield* (action === "pause" ? pool.pause : pool.resume)
      return json(yield* Schema.encode(Workpool.PoolStatus)(yield* pool.status))
    })
  ),
  // each dispatch is confirmed with the SchedulerDO that sent it: a replayed request runs nothing;
  // the same app at Dispatch.batchPath takes batches of due jobs in one request
  HttpRouter.post(Dispatch.path, dispatch),
  HttpRouter.post(Dispatch.batchPath, dispatch),
  HttpRouter.catchTags({
    ParseError: (error) => Effect.succeed(json({ error: "BadRequest", message: error.message }, 400)),
    RequestError: (error) => Effect.succeed(json({ error: "BadRequest", message: error.message }, 400)),
    JobNotFound: (error) => Effect.succeed(json({ error: error._tag, message: error.message }, 404)),
    InvalidTime: (error) => Effect.succeed(json({ error: error._tag, message: error.message }, 400)),
    InvalidPayload: (error) => Effect.succeed(json({ error: error._tag, message: error.message }, 400)),
    InvalidOptions: (error) => Effect.succeed(json({ error: error._tag, message: error.message }, 400)),
    JobNotReplayable: (error) => Effect.succeed(json({ error: error._tag, message: error.message }, 409)),
    PoolNotFound: (error) => Effect.succeed(json({ error: error._tag, message: error.message }, 404)),
    SchedulerUnavailable: (error) => Effect.succeed(json({ error: error._tag, message: error.message }, 503))
  })
)

const { handler } = HttpApp.toWebHandlerLayer(router, AppLayer)

export default {
  fetch: (request) => handler(request)
} satisfies ExportedHandler
