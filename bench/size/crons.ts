/// <reference types="@cloudflare/workers-types" />
/**
 * The size report's Worker with crons: `scheduler.ts` plus one cron, run both
 * ways README.md's "Crons" shows: reconciled into the `SchedulerDO` by the
 * `CronRegistry` layer, and dispatched from Cron Triggers by `createCronTrigger`.
 */
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { env } from "cloudflare:workers"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as CronRegistry from "@lunora/scheduler/CronRegistry"
import * as CronSpec from "@lunora/scheduler/CronSpec"
import * as Dispatch from "@lunora/scheduler/Dispatch"
import * as JobRegistry from "@lunora/scheduler/JobRegistry"
import * as Scheduler from "@lunora/scheduler/Scheduler"
import { createCronTrigger, SchedulerDO } from "@lunora/scheduler/cloudflare"
import { BuildExport, handlers } from "./jobs.js"

export { SchedulerDO }

interface Env {
  readonly SCHEDULER: DurableObjectNamespace<SchedulerDO>
  readonly LUNORA_SCHEDULER_SECRET: string
}
const { LUNORA_SCHEDULER_SECRET, SCHEDULER } = env as unknown as Env

const crons = CronSpec.cronJobs()
crons.daily("nightly export", { hourUTC: 2, minuteUTC: 0 }, BuildExport, { userId: "admin", format: "csv" })

const SchedulerLive = Scheduler.layer({ namespace: SCHEDULER, binding: "SELF" })
const CronsLive = CronRegistry.layer({ namespace: SCHEDULER, binding: "SELF", crons })

const AppLayer = handlers.pipe(Layer.provideMerge(Layer.mergeAll(SchedulerLive, CronsLive, JobRegistry.layer)))

const requestExport = Effect.gen(function*() {
  const scheduler = yield* Scheduler.Scheduler
  const id = yield* scheduler.runAfter("5 minutes", BuildExport, { userId: "u-1", format: "csv" })
  return HttpServerResponse.unsafeJson({ id }, { status: 201 })
})

const listCrons = Effect.gen(function*() {
  const registry = yield* CronRegistry.CronRegistry
  return HttpServerResponse.unsafeJson(yield* Schema.encode(Schema.Array(CronRegistry.CronInfo))(yield* registry.list))
})

const router = HttpRouter.empty.pipe(
  HttpRouter.post("/exports", requestExport),
  HttpRouter.get("/crons", listCrons),
  HttpRouter.post(Dispatch.path, Dispatch.httpApp({ secret: LUNORA_SCHEDULER_SECRET, namespace: SCHEDULER }))
)

const { handler } = HttpApp.toWebHandlerLayer(router, AppLayer)

const trigger = createCronTrigger({ crons, namespace: SCHEDULER, binding: "SELF" })

export default {
  fetch: (request) => handler(request),
  scheduled: async (controller) => void (await trigger.dispatcher(controller))
} satisfies ExportedHandler
