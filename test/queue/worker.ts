/// <reference types="@cloudflare/workers-types" />
/**
 * The worker the Queues tests run against: a producer (`POST /enqueue`), the
 * dispatch endpoint with the jobs below, and a `queue()` handler consuming
 * the two work queues through `createQueueConsumer` (dispatching back to
 * this worker through its `SELF_APP` service binding) and recording what
 * reaches the dead-letter queue.
 */
import { Effect, Layer, Schema } from "effect"
import { createQueueConsumer, httpDispatcher } from "../../src/cloudflare/createQueueConsumer.js"
import { createQueueWorkpool } from "../../src/cloudflare/createQueueWorkpool.js"
import * as Dispatch from "../../src/Dispatch.js"
import * as Job from "../../src/Job.js"

export const Echo = Job.make("queue:echo", { payload: Schema.Struct({ text: Schema.String }) })
export const Flaky = Job.make("queue:flaky", { payload: Schema.Struct({ succeedOn: Schema.Int }) })

/** One run of a handler: its attempt, when it ran, and the job's shard key. */
export interface Run {
  readonly attempt: number
  readonly at: number
  readonly shardKey: string | null
}

/** What reached the dead-letter queue, in order of arrival. */
export interface Arrival {
  readonly body: unknown
  readonly attempts: number
}

const runs = new Map<string, Array<Run>>()
const deadLetters: Array<Arrival> = []

const ran = (id: string, attempt: number, shardKey: string | null) =>
  Effect.sync(() => void runs.set(id, [...(runs.get(id) ?? []), { attempt, at: Date.now(), shardKey }]))

const handlers = Layer.mergeAll(
  Echo.toLayer((_, { attempt, id, shardKey }) => ran(id, attempt, shardKey._tag === "Some" ? shardKey.value : null)),
  Flaky.toLayer((payload, { attempt, id }) =>
    Effect.zipRight(
      ran(id, attempt, null),
      attempt >= payload.succeedOn ? Effect.void : Effect.fail(new Error(`attempt ${attempt} failed`))
    )
  )
)

interface Env {
  readonly LUNORA_SCHEDULER_SECRET: string
  readonly WORK: Queue
  readonly WORK_EXPLICIT: Queue
  readonly DEAD_LETTERS: Queue
  readonly SELF_APP: Fetcher
}

const consumeWork = createQueueConsumer((env: Env) => ({
  dispatch: httpDispatcher({ fetcher: env.SELF_APP, secret: env.LUNORA_SCHEDULER_SECRET })
}))

const consumeWorkExplicit = createQueueConsumer((env: Env) => ({
  dispatch: httpDispatcher({ fetcher: env.SELF_APP, secret: env.LUNORA_SCHEDULER_SECRET }),
  deadLetterQueue: env.DEAD_LETTERS
}))

let dispatch: ((request: Request) => Promise<Response>) | undefined

export default {
  fetch: async (request, env) => {
    const url = new URL(request.url)
    if (url.pathname === "/runs") return Response.json(Object.fromEntries(runs))
    if (url.pathname === "/dead-letters") return Response.json(deadLetters)
    if (url.pathname === "/enqueue" && request.method === "POST") {
      const pool = createQueueWorkpool({ queue: env.WORK })
      const { payload, shardKey } = await request.json<{ payload: { text: string }; shardKey?: string }>()
      try {
        return Response.json(await pool.enqueue(Echo, payload, { shardKey }))
      } catch (error) {
        const { _tag, message } = error as { readonly _tag: string; readonly message: string }
        return Response.json({ _tag, message }, { status: 400 })
      }
    }
    dispatch ??= Dispatch.toFetchHandlerWith(handlers, { secret: env.LUNORA_SCHEDULER_SECRET })
    return dispatch(request)
  },
  queue: async (batch, env, ctx) => {
    switch (batch.queue) {
      case "lunora-work":
        return consumeWork(batch, env, ctx)
      case "lunora-work-explicit":
        return consumeWorkExplicit(batch, env, ctx)
      case "lunora-dead-letters":
        for (const message of batch.messages) {
          deadLetters.push({ body: message.body, attempts: message.attempts })
          message.ack()
        }
    }
  }
} satisfies ExportedHandler<Env>
