/// <reference types="@cloudflare/workers-types" />
/**
 * The worker the workerd tests run against: a bare SQLite-backed Durable
 * Object for the store suites, and an app with a `SchedulerDO` whose
 * dispatches come back, through the `SELF` service binding, to the jobs below.
 */
import { DurableObject, env as workerEnv, WorkflowEntrypoint, type WorkflowEvent, type WorkflowStep } from "cloudflare:workers"
import { Effect, Layer, Option, Schema } from "effect"
import {
  createCronTrigger,
  type CronDispatcher,
  type CronTrigger,
  SchedulerDO,
  serveCronTriggers
} from "../../src/cloudflare/index.js"
import * as Admin from "../../src/Admin.js"
import * as Alerts from "../../src/Alerts.js"
import * as CronSpec from "../../src/CronSpec.js"
import * as Dispatch from "../../src/Dispatch.js"
import * as Job from "../../src/Job.js"
import * as Scheduler from "../../src/Scheduler.js"

export { SchedulerDO }

export class StoreTestDO extends DurableObject {}

/** The Workflow the workflow jobs start: one step, whose output is its params. */
export class ReportWorkflow extends WorkflowEntrypoint<Record<string, unknown>, { readonly day: string }> {
  override async run(event: WorkflowEvent<{ readonly day: string }>, step: WorkflowStep) {
    return step.do("report", async () => ({ reported: event.payload.day }))
  }
}

/** A `SchedulerDO` that signs with the wrong secret: its dispatches must be refused. */
export class WrongSecretSchedulerDO extends SchedulerDO {
  constructor(ctx: DurableObjectState, env: Record<string, unknown>) {
    super(ctx, { ...env, LUNORA_SCHEDULER_SECRET: "not-the-secret" })
  }
}

/** A `SchedulerDO` whose dispatches may take 30 seconds, for handlers that run for seconds. */
export class LongLeaseSchedulerDO extends SchedulerDO {
  constructor(ctx: DurableObjectState, env: Record<string, unknown>) {
    super(ctx, { ...env, LUNORA_SCHEDULER_LEASE: "30 seconds" })
  }
}

/** A `SchedulerDO` that sends one request per job (`LUNORA_SCHEDULER_DISPATCH_BATCH` 1). */
export class SingleDispatchSchedulerDO extends SchedulerDO {
  constructor(ctx: DurableObjectState, env: Record<string, unknown>) {
    super(ctx, { ...env, LUNORA_SCHEDULER_DISPATCH_BATCH: "1" })
  }
}

/** A `SchedulerDO` deployed without its secret: it must refuse work, saying why. */
export class NoSecretSchedulerDO extends SchedulerDO {
  constructor(ctx: DurableObjectState, env: Record<string, unknown>) {
    const { LUNORA_SCHEDULER_SECRET: _, ...rest } = env
    super(ctx, rest)
  }
}

/** A `SchedulerDO` that signs webhooks and, for these tests, sends them to loopback. */
export class WebhookSchedulerDO extends SchedulerDO {
  constructor(ctx: DurableObjectState, env: Record<string, unknown>) {
    super(ctx, { ...env, LUNORA_SCHEDULER_WEBHOOK_SECRET: "webhook-secret", LUNORA_SCHEDULER_WEBHOOK_LOOPBACK: "true" })
  }
}

/** The same, but only to the hosts of an allow-list that loopback is not on. */
export class AllowListWebhookSchedulerDO extends SchedulerDO {
  constructor(ctx: DurableObjectState, env: Record<string, unknown>) {
    super(ctx, {
      ...env,
      LUNORA_SCHEDULER_WEBHOOK_SECRET: "webhook-secret",
      LUNORA_SCHEDULER_WEBHOOK_HOSTS: "hooks.example.com,*.partner.example"
    })
  }
}

/** `SchedulerDO`s whose telemetry cannot be made (it throws) or built (its layer fails): they must run without it. */
export const ThrowingTelemetrySchedulerDO = SchedulerDO.withTelemetry(() => {
  throw new Error("no telemetry configured")
})
export const FailingTelemetrySchedulerDO = SchedulerDO.withTelemetry(() =>
  Layer.effectDiscard(Effect.fail(new Error("the exporter is misconfigured")))
)

/** The dispatch requests each `SchedulerDO` sent here, by its id: how many to each path, and the jobs each carried. */
const requests = new Map<string, { single: number; batch: number; batchSizes: Array<number> }>()
const requestsOf = (scheduler: string) => {
  let counts = requests.get(scheduler)
  if (counts === undefined) requests.set(scheduler, counts = { single: 0, batch: 0, batchSizes: [] })
  return counts
}
const countRequest = async (pathname: string, request: Request) => {
  if (pathname !== Dispatch.path && pathname !== Dispatch.batchPath) return
  const body = await request.json<{ scheduler?: string | null; jobs?: ReadonlyArray<unknown> }>().catch(() => undefined)
  if (typeof body?.scheduler !== "string") return
  const counts = requestsOf(body.scheduler)
  if (pathname === Dispatch.path) counts.single++
  else {
    counts.batch++
    counts.batchSizes.push(body.jobs?.length ?? 0)
  }
}

/** How many times each job's handler ran in this isolate, by job id. */
const runs = new Map<string, number>()
const ran = (id: string) => Effect.sync(() => runs.set(id, (runs.get(id) ?? 0) + 1))

export const Echo = Job.make("test:echo", {
  payload: Schema.Struct({ text: Schema.String }),
  success: Schema.Struct({ echoed: Schema.String, shardKey: Schema.NullOr(Schema.String) })
})
export const Flaky = Job.make("test:flaky", { payload: Schema.Struct({ succeedOn: Schema.Int }) })
export const Slow = Job.make("test:slow", { payload: Schema.Struct({ ms: Schema.Int }) })
/** Schedules an Echo a minute ahead into `instance` (of the long-lease namespace), works `ms`, then schedules another. */
export const Parent = Job.make("test:parent", { payload: Schema.Struct({ instance: Schema.String, ms: Schema.Int }) })
export const PoolWork = Job.make("test:poolWork", { payload: Schema.Struct({ group: Schema.String, ms: Schema.Int }) })
/** An alert's job: each event it is given is kept, by the alert's name (served at `/alerts/<name>`). */
export const AlertSink = Job.make("test:alert", { payload: Alerts.Event })
const alertEvents = new Map<string, Array<Alerts.Event>>()

/**
 * What the pool handlers of one test group saw: how many ran at once, at most,
 * the order of starts and ends, and each attempt's span (a handler whose
 * request was canceled, as when its Durable Object died, never ends).
 */
interface Gauge {
  running: number
  max: number
  readonly starts: Array<string>
  readonly ends: Array<string>
  readonly spans: Array<{ readonly attempt: string; readonly start: number; end: number | null }>
}
const gauges = new Map<string, Gauge>()
const gaugeOf = (group: string) => {
  let gauge = gauges.get(group)
  if (gauge === undefined) gauges.set(group, gauge = { running: 0, max: 0, starts: [], ends: [], spans: [] })
  return gauge
}

const handlers = Layer.mergeAll(
  Echo.toLayer((payload, { id, shardKey }) =>
    Effect.as(ran(id), { echoed: payload.text, shardKey: Option.getOrNull(shardKey) })
  ),
  Flaky.toLayer((payload, { attempt, id }) =>
    Effect.zipRight(
      ran(id),
      attempt >= payload.succeedOn ? Effect.void : Effect.fail(new Error(`attempt ${attempt} failed`))
    )
  ),
  Slow.toLayer((payload, { id }) => Effect.zipRight(ran(id), Effect.sleep(payload.ms))),
  Parent.toLayer((payload, { id }) =>
    Effect.gen(function*() {
      yield* ran(id)
      const namespace = (workerEnv as unknown as TestEnv).LONG_LEASE_SCHEDULER
      const scheduler = yield* Scheduler.make({ namespace, binding: "SELF_APP", instanceName: payload.instance })
      yield* scheduler.runAfter("1 minute", Echo, { text: "first child" })
      yield* Effect.sleep(payload.ms)
      yield* scheduler.runAfter("1 minute", Echo, { text: "second child" })
    })
  ),
  AlertSink.toLayer((event, { id }) =>
    Effect.zipRight(
      ran(id),
      Effect.sync(() => void alertEvents.set(event.alert, [...(alertEvents.get(event.alert) ?? []), event]))
    )
  ),
  PoolWork.toLayer((payload, { attempt, id }) =>
    Effect.acquireUseRelease(
      Effect.sync(() => {
        const gauge = gaugeOf(payload.group)
        gauge.running++
        gauge.max = Math.max(gauge.max, gauge.running)
        gauge.starts.push(id)
        const span = { attempt: `${id}#${attempt}`, start: Date.now(), end: null as number | null }
        gauge.spans.push(span)
        return { gauge, span }
      }),
      () => Effect.sleep(payload.ms),
      ({ gauge, span }) =>
        Effect.sync(() => {
          gauge.running--
          gauge.ends.push(id)
          span.end = Date.now()
        })
    )
  )
)

/** The crons of the Cron Triggers path, dispatched into the "cron-triggers" instance. */
export const triggerCrons = CronSpec.cronJobs()
  .interval("echo every five minutes", { minutes: 5 }, Echo, { text: "from a trigger" })
  .daily("daily echo", { hourUTC: 9, minuteUTC: 0 }, Echo, { text: "daily" })

/**
 * One function per trigger, by its Job and by its path, served by `scheduled()`
 * into the "function-triggers" instance: two on one expression, one on another.
 */
export const functionTriggers = [
  createCronTrigger({ schedule: "0 3 * * *", fn: Echo, args: { text: "nightly, by its Job" } }),
  createCronTrigger({ cron: "0 3 * * *", functionPath: "test:echo", args: { text: "nightly, by its path" } }),
  createCronTrigger({ schedule: "15 4 * * 1", fn: Echo, args: { text: "on mondays" } })
]

interface TestEnv {
  readonly LUNORA_SCHEDULER_SECRET: string
  readonly LUNORA_SCHEDULER_ADMIN_TOKEN: string
  readonly SCHEDULER: DurableObjectNamespace<SchedulerDO>
  readonly LONG_LEASE_SCHEDULER: DurableObjectNamespace<LongLeaseSchedulerDO>
  readonly SINGLE_SCHEDULER: DurableObjectNamespace<SingleDispatchSchedulerDO>
  readonly WRONG_SECRET_SCHEDULER: DurableObjectNamespace<WrongSecretSchedulerDO>
  readonly THROWING_TELEMETRY_SCHEDULER: DurableObjectNamespace<SchedulerDO>
  readonly FAILING_TELEMETRY_SCHEDULER: DurableObjectNamespace<SchedulerDO>
  readonly WEBHOOK_SCHEDULER: DurableObjectNamespace<WebhookSchedulerDO>
}

let dispatch: ((request: Request) => Promise<Response>) | undefined
let admin: ((request: Request) => Promise<Response>) | undefined
let webhookAdmin: ((request: Request) => Promise<Response>) | undefined
let trigger: CronTrigger | undefined
let serveTriggers: CronDispatcher | undefined

export default {
  fetch: (request: Request, env: TestEnv) => {
    const url = new URL(request.url)
    if (url.pathname === "/runs") return Response.json(Object.fromEntries(runs))
    if (url.pathname.startsWith("/requests/")) return Response.json(requestsOf(url.pathname.slice("/requests/".length)))
    if (request.method === "POST") void countRequest(url.pathname, request.clone())
    if (url.pathname.startsWith("/alerts/")) {
      return Response.json(alertEvents.get(decodeURIComponent(url.pathname.slice("/alerts/".length))) ?? [])
    }
    if (url.pathname.startsWith("/gauges/")) return Response.json(gaugeOf(url.pathname.slice("/gauges/".length)))
    if (url.pathname.startsWith(Admin.prefix)) {
      // ?scheduler=webhook: the admin API over the SchedulerDO that sends webhooks
      if (url.searchParams.get("scheduler") === "webhook") {
        webhookAdmin ??= Admin.toFetchHandler({
          namespace: env.WEBHOOK_SCHEDULER,
          binding: "SELF_APP",
          token: env.LUNORA_SCHEDULER_ADMIN_TOKEN
        })
        return webhookAdmin(request)
      }
      admin ??= Admin.toFetchHandler({ namespace: env.SCHEDULER, binding: "SELF_APP", token: env.LUNORA_SCHEDULER_ADMIN_TOKEN })
      return admin(request)
    }
    // every dispatch is confirmed with the SchedulerDO that sent it: a replay runs nothing, whatever the isolate
    dispatch ??= Dispatch.toFetchHandlerWith(handlers, {
      secret: env.LUNORA_SCHEDULER_SECRET,
      namespace: [
        env.SCHEDULER,
        env.LONG_LEASE_SCHEDULER,
        env.WRONG_SECRET_SCHEDULER,
        env.SINGLE_SCHEDULER,
        env.THROWING_TELEMETRY_SCHEDULER,
        env.FAILING_TELEMETRY_SCHEDULER
      ],
      // every declared cron's path has a handler here: a typo would refuse every dispatch
      crons: [triggerCrons, ...functionTriggers]
    })
    return dispatch(request)
  },
  scheduled: async (controller: ScheduledController, env: TestEnv) => {
    trigger ??= createCronTrigger({
      crons: triggerCrons,
      namespace: env.SCHEDULER,
      binding: "SELF_APP",
      instanceName: "cron-triggers"
    })
    serveTriggers ??= serveCronTriggers(functionTriggers, {
      namespace: env.SCHEDULER,
      binding: "SELF_APP",
      instanceName: "function-triggers"
    })
    await trigger.dispatcher(controller)
    await serveTriggers(controller)
  }
} satisfies ExportedHandler<TestEnv>
