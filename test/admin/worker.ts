/// <reference types="@cloudflare/workers-types" />
/**
 * The Worker that test/AdminCli.test.ts runs the `lunora-scheduler` operator
 * commands against: the real `SchedulerDO`, the admin API under
 * `Admin.prefix`, three jobs, and one route to create data.
 *
 *   POST /seed { instance, pending?, dead?, crons?, pool? }  schedules, in `instance`:
 *        `pending` echo jobs due in an hour; `dead` jobs that fail on their one
 *        attempt (answered once all are dead-lettered); with `crons`, the
 *        crons below; with `pool` { name, maxConcurrency, paused, queued }, a
 *        pool (paused or not; a pull pool with `pull`) holding `queued` echo jobs
 *        (retried at once, 3 attempts). Answers their ids.
 *   /_lunora/scheduler/admin/...       the admin API (bearer LUNORA_SCHEDULER_ADMIN_TOKEN)
 *   POST /_lunora/scheduler/dispatch   the SchedulerDO's calls (signed)
 */
import { Effect, Layer, Schema } from "effect"
import * as Admin from "../../src/Admin.js"
import { SchedulerDO } from "../../src/cloudflare/index.js"
import * as CronRegistry from "../../src/CronRegistry.js"
import * as CronSpec from "../../src/CronSpec.js"
import * as Dispatch from "../../src/Dispatch.js"
import * as Job from "../../src/Job.js"
import * as Scheduler from "../../src/Scheduler.js"
import * as Workpool from "../../src/Workpool.js"

export { SchedulerDO }

interface Env {
  readonly SCHEDULER: DurableObjectNamespace<SchedulerDO>
  readonly LUNORA_SCHEDULER_SECRET: string
  readonly LUNORA_SCHEDULER_ADMIN_TOKEN: string
}

export const Echo = Job.make("admin:echo", { payload: Schema.Struct({ text: Schema.String }) })
export const Fail = Job.make("admin:fail", { payload: Schema.Struct({}) })
export const Slow = Job.make("admin:slow", { payload: Schema.Struct({ ms: Schema.Int }) })

const handlers = Layer.mergeAll(
  Echo.toLayer(() => Effect.void),
  Fail.toLayer(() => Effect.fail(new Error("always fails"))),
  Slow.toLayer((payload) => Effect.sleep(payload.ms))
)

/** A slow one, so that a triggered run is still in progress when it is triggered again. */
export const crons = CronSpec.cronJobs()
  .interval("slow hourly", { hours: 1 }, Slow, { ms: 3_000 })
  .daily("daily echo", { hourUTC: 9, minuteUTC: 0 }, Echo, { text: "daily" })

const SeedRequest = Schema.Struct({
  instance: Schema.String,
  pending: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 1000)), { default: () => 0 }),
  dead: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 100)), { default: () => 0 }),
  crons: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  pool: Schema.optional(Schema.Struct({
    name: Schema.String,
    maxConcurrency: Schema.Int,
    paused: Schema.Boolean,
    queued: Schema.Int.pipe(Schema.between(0, 100)),
    pull: Schema.optional(Schema.Boolean)
  }))
})
const decodeSeed = Schema.decodeUnknown(SeedRequest)

const seed = (env: Env, body: unknown) =>
  Effect.gen(function*() {
    const request = yield* decodeSeed(body)
    const options = { namespace: env.SCHEDULER, binding: "SELF", instanceName: request.instance }
    const scheduler = yield* Scheduler.make(options)
    const pending = request.pending === 0 ? [] : yield* scheduler.submit(
      Array.from({ length: request.pending }, (_, n) => ({ job: Echo, payload: { text: `n${n}` }, after: "1 hour" }))
    )
    const dead = request.dead === 0 ? [] : yield* scheduler.submit(
      Array.from({ length: request.dead }, () => ({ job: Fail, payload: {}, options: { retry: { maxAttempts: 1 } } }))
    )
    // each fails on its one attempt: answered once all are dead letters
    yield* Effect.forEach(dead, (job) => Effect.either(scheduler.await(job.id)), { concurrency: "unbounded" }).pipe(
      Effect.timeout("20 seconds")
    )
    if (request.crons) yield* Effect.provide(CronRegistry.CronRegistry, CronRegistry.layer({ ...options, crons }))
    const pooled: Array<string> = []
    if (request.pool !== undefined) {
      const { maxConcurrency, name, paused, pull, queued } = request.pool
      const pool = yield* Workpool.make({ ...options, name, maxConcurrency, pull })
      if (paused) yield* pool.pause
      else yield* pool.status
      for (let n = 0; n < queued; n++) {
        pooled.push((yield* pool.enqueue(Echo, { text: `pooled ${n}` }, { retry: { maxAttempts: 3, backoff: "linear", baseMs: 0 } })).id)
      }
    }
    return { pending: pending.map((job) => job.id), dead: dead.map((job) => job.id), pooled }
  })

let dispatch: ((request: Request) => Promise<Response>) | undefined
let admin: ((request: Request) => Promise<Response>) | undefined

export default {
  fetch: async (request: Request, env: Env) => {
    const { pathname } = new URL(request.url)
    if (request.method === "POST" && pathname === "/seed") {
      const body = await request.json()
      return Effect.runPromise(
        seed(env, body).pipe(
          Effect.map((ids) => Response.json(ids)),
          Effect.catchAllCause((cause) => Effect.succeed(Response.json({ error: String(cause) }, { status: 500 })))
        )
      )
    }
    if (pathname.startsWith(Admin.prefix)) {
      admin ??= Admin.toFetchHandler({ namespace: env.SCHEDULER, binding: "SELF", token: env.LUNORA_SCHEDULER_ADMIN_TOKEN })
      return admin(request)
    }
    if (pathname === Dispatch.path || pathname === Dispatch.batchPath) {
      dispatch ??= Dispatch.toFetchHandlerWith(handlers, {
        secret: env.LUNORA_SCHEDULER_SECRET,
        namespace: env.SCHEDULER,
        crons: [crons]
      })
      return dispatch(request)
    }
    return new Response("not found", { status: 404 })
  }
} satisfies ExportedHandler<Env>
