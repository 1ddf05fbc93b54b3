/**
 * The scheduler in one Node process, on the real clock and the in-memory
 * store: `npm run example`. Schedules an export, a post with its follow-up,
 * a reminder that is cancelled and a flaky job, then waits for them.
 */
import { Effect, Layer, Logger, Option } from "effect"
import { Scheduler } from "@lunora/scheduler"
import { BuildExport, Flaky, handlers, PublishPost, SendReminder } from "./jobs.js"

const program = Effect.gen(function*() {
  const scheduler = yield* Scheduler.Scheduler

  const exportId = yield* scheduler.runAfter("2 seconds", BuildExport, { userId: "u-1", format: "json" })
  yield* scheduler.runAfter(0, PublishPost, { postId: "p-1" })
  const reminder = yield* scheduler.runAfter("1 second", SendReminder, { userId: "u-2", text: "finish sign-up" })
  const flaky = yield* scheduler.runAfter("500 millis", Flaky, { name: "sync", succeedOn: 3 }, {
    retry: { maxAttempts: 5, backoff: "linear", baseMs: 500 }
  })

  const canceled = yield* scheduler.cancel(reminder)
  yield* Effect.log(`cancel(${reminder}): ${canceled._tag}`)

  const exported = yield* scheduler.await(exportId)
  yield* Effect.log(`export ready: ${JSON.stringify(Option.getOrNull(exported.result))}`)
  const synced = yield* scheduler.await(flaky)
  yield* Effect.log(`flaky job ${synced.state} after ${synced.attempt} attempts`)

  const { jobs } = yield* scheduler.list()
  for (const job of jobs) yield* Effect.log(`${job.functionPath.padEnd(34)} ${job.state}`)
})

const MainLayer = handlers.pipe(
  Layer.provideMerge(Scheduler.layerMemory({ retention: "1 minute" })),
  Layer.provide(Logger.pretty)
)

Effect.runPromise(program.pipe(Effect.provide(MainLayer), Effect.scoped)).catch((error) => {
  console.error(error)
  process.exit(1)
})
