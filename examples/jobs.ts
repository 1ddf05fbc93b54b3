/**
 * The jobs of the examples, as an app would define them: a typed reference
 * per job (`Job.make`) and one Effect handler each (`toLayer`).
 */
import { Duration, Effect, Layer, Schema } from "effect"
import { Job, Scheduler } from "@lunora/scheduler"

/** A data export, built a few minutes after it is requested. */
export const BuildExport = Job.make("exports:build", {
  payload: Schema.Struct({ userId: Schema.String, format: Schema.Literal("csv", "json") }),
  success: Schema.Struct({ url: Schema.String })
})

/** Publishing a post, which schedules a follow-up to its subscribers. */
export const PublishPost = Job.make("posts:publish", {
  payload: Schema.Struct({ postId: Schema.String, followUpMs: Schema.optional(Schema.Int) })
})

/** The follow-up: subscribers hear about the post 30 seconds after it went out. */
export const NotifySubscribers = Job.make("notifications:notifySubscribers", {
  payload: Schema.Struct({ postId: Schema.String })
})

/** A reminder e-mail, usually cancelled before it fires. */
export const SendReminder = Job.make("email:sendReminder", {
  payload: Schema.Struct({ userId: Schema.String, text: Schema.String })
})

/** Fails until `succeedOn` (never, when absent): shows retries and the dead letter. */
export const Flaky = Job.make("demo:flaky", {
  payload: Schema.Struct({ name: Schema.String, succeedOn: Schema.optional(Schema.Int) })
})

/** Syncing one account to a CRM whose API takes two calls at once: run in a workpool of 2. */
export const SyncAccount = Job.make("crm:syncAccount", {
  payload: Schema.Struct({ accountId: Schema.String, ms: Schema.optional(Schema.Int) })
})

/** The handlers, one layer: provide it with a scheduler layer. */
export const handlers = Layer.mergeAll(
  BuildExport.toLayer((payload, { attempt, id }) =>
    Effect.log(`building the ${payload.format} export of ${payload.userId}`).pipe(
      Effect.annotateLogs({ jobId: id, attempt }),
      Effect.as({ url: `https://files.example.com/exports/${payload.userId}.${payload.format}` })
    )
  ),
  PublishPost.toLayer((payload) =>
    Effect.gen(function*() {
      yield* Effect.log(`post ${payload.postId} is live`)
      const scheduler = yield* Scheduler.Scheduler
      yield* scheduler.runAfter(Duration.millis(payload.followUpMs ?? 30_000), NotifySubscribers, { postId: payload.postId })
    })
  ),
  NotifySubscribers.toLayer((payload) => Effect.log(`subscribers told about post ${payload.postId}`)),
  SendReminder.toLayer((payload) => Effect.log(`reminding ${payload.userId}: ${payload.text}`)),
  SyncAccount.toLayer((payload, { id }) =>
    Effect.log(`syncing account ${payload.accountId}`).pipe(
      Effect.zipRight(Effect.sleep(Duration.millis(payload.ms ?? 2_000))),
      Effect.annotateLogs({ jobId: id })
    )
  ),
  Flaky.toLayer((payload, { attempt }) =>
    payload.succeedOn !== undefined && attempt >= payload.succeedOn
      ? Effect.log(`${payload.name} succeeded on attempt ${attempt}`)
      : Effect.fail(new Error(`${payload.name} failed on attempt ${attempt}`))
  )
)
