/**
 * The telemetry example: a Worker whose `SchedulerDO` and app both export
 * their spans, metrics and logs over OTLP/HTTP to `OTLP_URL`, with
 * `@lunora/scheduler/Telemetry` (which needs `@effect/opentelemetry`).
 *
 *   POST /greetings { name, delayMs? }  schedules a greeting; answers { id }
 *   GET  /jobs/:id                      its state
 *   POST /_lunora/scheduler/dispatch    the SchedulerDO's calls (signed)
 *
 * The object exports every `exportInterval` while it is in memory. The app
 * provides the layer per request, so what a request recorded is sent when
 * it ends (a Worker's isolate runs no timers between requests).
 */
import { env } from "cloudflare:workers"
import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import { Dispatch, Job, JobRegistry, Scheduler } from "@lunora/scheduler"
import { SchedulerDO as Base } from "@lunora/scheduler/cloudflare"
import * as Telemetry from "@lunora/scheduler/Telemetry"

interface Env {
  readonly SCHEDULER: DurableObjectNamespace<Base>
  readonly LUNORA_SCHEDULER_SECRET: string
  readonly OTLP_URL: string
}
const { LUNORA_SCHEDULER_SECRET, OTLP_URL, SCHEDULER } = env as unknown as Env

/** The object's spans (`SchedulerDO.alarm`, one `SchedulerDO.dispatch` per batch) and its `lunora_scheduler_*` metrics. */
export const SchedulerDO = Base.withTelemetry((env) =>
  Telemetry.layer({ baseUrl: String(env.OTLP_URL), serviceName: "scheduler", exportInterval: "1 second" })
)

export const Greet = Job.make("greetings:send", { payload: Schema.Struct({ name: Schema.String }) })

const handlers = Greet.toLayer(({ name }) => Effect.log(`hello, ${name}`))

const app = ManagedRuntime.make(Scheduler.layer({ namespace: SCHEDULER, binding: "SELF" }))

const GreetingRequest = Schema.Struct({ name: Schema.String, delayMs: Schema.optionalWith(Schema.Int, { default: () => 0 }) })

/** The app's spans (`Scheduler.runAfter`, `SchedulerDO.schedule`), sent when the request ends. */
const AppTelemetry = Telemetry.layer({ baseUrl: OTLP_URL, serviceName: "app" })

const greet = (request: Request) =>
  Effect.gen(function*() {
    const { delayMs, name } = yield* Schema.decodeUnknown(GreetingRequest)(yield* Effect.promise(() => request.json()))
    const scheduler = yield* Scheduler.Scheduler
    const id = yield* scheduler.runAfter(delayMs, Greet, { name })
    return Response.json({ id }, { status: 201 })
  }).pipe(
    Effect.catchAll((error) => Effect.succeed(Response.json({ error: error._tag, message: error.message }, { status: 400 }))),
    Effect.provide(AppTelemetry)
  )

const dispatch = Dispatch.toFetchHandler(handlers.pipe(Layer.provideMerge(JobRegistry.layer)), {
  secret: LUNORA_SCHEDULER_SECRET,
  namespace: SCHEDULER
})

const state = (id: string) =>
  Effect.flatMap(Scheduler.Scheduler, (scheduler) => scheduler.get(id)).pipe(
    Effect.map((job) => Response.json({ id, state: job.state })),
    Effect.catchAll((error) => Effect.succeed(Response.json({ error: error._tag }, { status: 404 })))
  )

export default {
  fetch: (request) => {
    const { pathname } = new URL(request.url)
    if (pathname === "/greetings" && request.method === "POST") return app.runPromise(greet(request))
    if (pathname.startsWith("/jobs/")) return app.runPromise(state(pathname.slice("/jobs/".length)))
    return dispatch(request)
  }
} satisfies ExportedHandler
