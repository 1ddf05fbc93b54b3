/// <reference types="@cloudflare/workers-types" />
/**
 * The Worker that test/restart/restart.test.ts restarts under its jobs: the
 * real `SchedulerDO`, one trivial job, and JSON routes to drive it.
 *
 *   POST /schedule { count, delayMs }  schedules `count` echo jobs, all due at now + delayMs: { ids, scheduledFor }
 *   GET  /jobs                         every job's state, attempt and times (a call into the SchedulerDO)
 *   GET  /runs                         the handler runs this isolate has seen (never touches the SchedulerDO)
 *   POST /_lunora/scheduler/dispatch   the SchedulerDO's calls (signed)
 */
import { Effect, Option, Schema } from "effect"
import { SchedulerDO } from "../../src/cloudflare/index.js"
import * as Dispatch from "../../src/Dispatch.js"
import * as Job from "../../src/Job.js"
import * as Scheduler from "../../src/Scheduler.js"

export { SchedulerDO }

interface Env {
  readonly SCHEDULER: DurableObjectNamespace<SchedulerDO>
  readonly LUNORA_SCHEDULER_SECRET: string
}

export const Echo = Job.make("restart:echo", { payload: Schema.Struct({ n: Schema.Number }) })

/** The handler runs since this workerd process started (a restart empties it): which job, which attempt. */
const runs: Array<{ readonly id: string; readonly attempt: number }> = []

const handlers = Echo.toLayer((_, { attempt, id }) => Effect.sync(() => void runs.push({ id, attempt })))

const ScheduleRequest = Schema.Struct({
  count: Schema.Int.pipe(Schema.between(1, 1000)),
  delayMs: Schema.Int.pipe(Schema.nonNegative())
})
const decodeSchedule = Schema.decodeUnknown(ScheduleRequest)

const millisOf = Option.match({ onNone: () => null, onSome: (at: { readonly epochMillis: number }) => at.epochMillis })

let scheduler: Scheduler.Scheduler["Type"] | undefined
let dispatch: ((request: Request) => Promise<Response>) | undefined

const schedulerOf = (env: Env) =>
  scheduler ??= Effect.runSync(
    Scheduler.make({ namespace: env.SCHEDULER, binding: "SELF", instanceName: "restart" }).pipe(Effect.orDie)
  )

const schedule = (env: Env, body: unknown) =>
  Effect.gen(function*() {
    const { count, delayMs } = yield* decodeSchedule(body)
    const at = Date.now() + delayMs
    const scheduled = yield* schedulerOf(env).submit(
      Array.from({ length: count }, (_, n) => ({ job: Echo, payload: { n }, at }))
    )
    return { ids: scheduled.map((job) => job.id), scheduledFor: at }
  })

const jobs = (env: Env) =>
  Effect.map(schedulerOf(env).list({ limit: 1000 }), (page) =>
    page.jobs.map((job) => ({
      id: job.id,
      state: job.state,
      attempt: job.attempt,
      scheduledFor: job.scheduledFor.epochMillis,
      startedAt: millisOf(job.startedAt),
      completedAt: millisOf(job.completedAt),
      lastError: Option.getOrNull(job.lastError)
    })))

const respond = (effect: Effect.Effect<unknown, unknown>) =>
  Effect.runPromise(
    effect.pipe(
      Effect.map((body) => Response.json(body)),
      Effect.catchAllCause((cause) => Effect.succeed(Response.json({ error: String(cause) }, { status: 500 })))
    )
  )

export default {
  fetch: async (request: Request, env: Env) => {
    const { pathname } = new URL(request.url)
    if (request.method === "POST" && pathname === "/schedule") return respond(schedule(env, await request.json()))
    if (request.method === "GET" && pathname === "/jobs") return respond(jobs(env))
    if (request.method === "GET" && pathname === "/runs") return Response.json(runs)
    if (pathname === Dispatch.path) {
      dispatch ??= Dispatch.toFetchHandlerWith(handlers, { secret: env.LUNORA_SCHEDULER_SECRET })
      return dispatch(request)
    }
    return new Response("not found", { status: 404 })
  }
} satisfies ExportedHandler<Env>
