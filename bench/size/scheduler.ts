/// <reference types="@cloudflare/workers-types" />
/**
 * The smallest Worker of the size report (`npx vite-node scripts/size.ts`):
 * one job, the live `Scheduler` over the `SchedulerDO`, and the dispatch
 * endpoint, as README.md's "On Cloudflare" shows them.
 *
 *   POST /exports                        schedules the job, five minutes ahead
 *   POST /_lunora/scheduler/dispatch     the SchedulerDO's calls (signed)
 */
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { env } from "cloudflare:workers"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Dispatch from "@lunora/scheduler/Dispatch"
import * as JobRegistry from "@lunora/scheduler/JobRegistry"
import * as Scheduler from "@lunora/scheduler/Scheduler"
import { SchedulerDO } from "@lunora/scheduler/cloudflare"
import { BuildExport, handlers } from "./jobs.js"

export { SchedulerDO }

interface Env {
  readonly SCHEDULER: DurableObjectNamespace<SchedulerDO>
  readonly LUNORA_SCHEDULER_SECRET: string
}
const { LUNORA_SCHEDULER_SECRET, SCHEDULER } = env as unknown as Env

const SchedulerLive = Scheduler.layer({ namespace: SCHEDULER, binding: "SELF" })

const AppLayer = handlers.pipe(Layer.provideMerge(Layer.merge(SchedulerLive, JobRegistry.layer)))

const requestExport = Effect.gen(function*() {
  const scheduler = yield* Scheduler.Scheduler
  const id = yield* scheduler.runAfter("5 minutes", BuildExport, { userId: "u-1", format: "csv" })
  return HttpServerResponse.unsafeJson({ id }, { status: 201 })
})

const router = HttpRouter.empty.pipe(
  HttpRouter.post("/exports", requestExport),
  HttpRouter.post(Dispatch.path, Dispatch.httpApp({ secret: LUNORA_SCHEDULER_SECRET, namespace: SCHEDULER }))
)

const { handler } = HttpApp.toWebHandlerLayer(router, AppLayer)

export default {
  fetch: (request) => handler(request)
} satisfies ExportedHandler
