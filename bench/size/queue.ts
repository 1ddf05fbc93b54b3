/// <reference types="@cloudflare/workers-types" />
/**
 * The size report's Worker with the Queues-backed pool: `scheduler.ts` plus a
 * producer (`POST /exports/queued`) and the `queue()` consumer, as README.md's
 * "The Queues-backed pool" shows them.
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
import {
  createQueueConsumer,
  createQueueWorkpool,
  httpDispatcher,
  SchedulerDO
} from "@lunora/scheduler/cloudflare"
import { BuildExport, handlers } from "./jobs.js"

export { SchedulerDO }

interface Env {
  readonly SCHEDULER: DurableObjectNamespace<SchedulerDO>
  readonly JOBS: Queue
  readonly JOBS_DEAD: Queue
  readonly SELF: Fetcher
  readonly LUNORA_SCHEDULER_SECRET: string
}
const { JOBS, LUNORA_SCHEDULER_SECRET, SCHEDULER } = env as unknown as Env

const SchedulerLive = Scheduler.layer({ namespace: SCHEDULER, binding: "SELF" })

const AppLayer = handlers.pipe(Layer.provideMerge(Layer.merge(SchedulerLive, JobRegistry.layer)))

const pool = createQueueWorkpool({ queue: JOBS })

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
  async fetch(request) {
    // the producer: the job through the queue, ten seconds from now
    if (new URL(request.url).pathname === "/exports/queued" && request.method === "POST") {
      const { id } = await pool.enqueue(BuildExport, { userId: "u-1", format: "json" }, {
        after: "10 seconds",
        retry: { maxAttempts: 4, backoff: "exponential", baseMs: 5_000 }
      })
      return Response.json({ id }, { status: 202 })
    }
    return handler(request)
  },
  // the consumer: each message dispatched to this Worker's endpoint through SELF
  queue: createQueueConsumer((env: Env) => ({
    dispatch: httpDispatcher({ fetcher: env.SELF, secret: env.LUNORA_SCHEDULER_SECRET }),
    deadLetterQueue: env.JOBS_DEAD
  }))
} satisfies ExportedHandler<Env>
