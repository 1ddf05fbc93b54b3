/**
 * Webhook jobs: jobs the `SchedulerDO` delivers to a URL of your choosing
 * (any service, not only your app) instead of to a handler, retried and
 * dead-lettered like any job. Define one with `Webhook.make`, schedule it
 * with the `Scheduler` as any job; receivers check each delivery with
 * `Webhook.verify`.
 *
 * A delivery is one request with the job's method and headers, the payload
 * as its JSON body, and three headers of its own: `x-lunora-signature`
 * (`t=<ms>,v1=<hex HMAC-SHA256 of "<t>.<job id>.<attempt>.<body>">` under
 * the Worker's `LUNORA_SCHEDULER_WEBHOOK_SECRET`), `x-lunora-job-id` (the
 * same on every attempt: dedupe on it) and `x-lunora-attempt`. Its outcome:
 * 2xx succeeds (the job's result is `{ status, body, truncated }`, the body's
 * first 16 KiB); 408, 429, 5xx, a timeout (the lease) or a network error is
 * retried; any other status, a redirect included (never followed), fails
 * the attempt without a retry, so the job is dead-lettered at once.
 *
 * The scheduler sends only to `https://` URLs of public hosts: no private,
 * link-local or reserved address literal, no `.local` or `.internal` name,
 * no credentials in the URL. `http://` and `https://` to loopback are sent
 * when the Worker sets `LUNORA_SCHEDULER_WEBHOOK_LOOPBACK=true` (local
 * development), and `LUNORA_SCHEDULER_WEBHOOK_HOSTS` (`api.example.com,
 * *.partner.example`) restricts them to an allow-list. A URL the scheduler
 * would not send to is refused when the job is scheduled (`InvalidOptions`,
 * nothing stored), and dead-letters a stored job whose URL the policy no
 * longer allows.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Job from "./Job.js"
import { FunctionPath, TypeId } from "./Job.js"
import { pipeArguments } from "effect/Pipeable"
import * as Either from "effect/Either"
import {
  type Callback,
  checkTarget,
  MAX_WEBHOOK_RESPONSE_BYTES,
  WebhookMethod,
  type WebhookTarget
} from "./internal/domain/targets.js"
import { ATTEMPT_HEADER, JOB_HEADER, verifiedDelivery } from "./internal/runtime/webhook.js"
import { SIGNATURE_HEADER } from "./internal/runtime/wire.js"

export {
  /**
   * The methods a webhook is sent with: `POST` (the default), `PUT`, `PATCH`, `DELETE`.
   *
   * @since 0.1.0
   * @category models
   */
  WebhookMethod as Method
}

/**
 * The result of a delivered webhook job: the receiver's status and the
 * first 16 KiB of its body (`truncated` when there was more).
 *
 * @since 0.1.0
 * @category models
 */
export const Response = Schema.Struct({ status: Schema.Int, body: Schema.String, truncated: Schema.Boolean })

/**
 * The most of a receiver's answer that is read and kept (16 KiB).
 *
 * @since 0.1.0
 * @category constants
 */
export const maxResponseBytes: number = MAX_WEBHOOK_RESPONSE_BYTES

/**
 * The headers a delivery carries: its signature, its job id and its attempt.
 *
 * @since 0.1.0
 * @category constants
 */
export const headers = { signature: SIGNATURE_HEADER, jobId: JOB_HEADER, attempt: ATTEMPT_HEADER } as const

export type {
  /**
   * Where a webhook goes: its URL, method (default `POST`) and headers of
   * your own (`authorization`, an API key header; not `content-type`, `host`
   * or `x-lunora-*`, which the delivery sets).
   *
   * @since 0.1.0
   * @category models
   */
  Callback
}

/**
 * A webhook job's reference: a `Job` whose attempts are deliveries to a URL.
 *
 * @since 0.1.0
 * @category models
 */
export interface Webhook<Path extends string, Payload extends Schema.Schema.AnyNoContext>
  extends Job.Any
{
  readonly path: Path
  readonly payloadSchema: Payload
  readonly successSchema: typeof Response
  readonly webhook: {
    readonly url: string | undefined
    readonly method: WebhookMethod
    readonly headers: Readonly<Record<string, string>>
  }
}

/**
 * The target of a webhook as it is stored: checked (method, headers, and
 * the URL against every rule but the Worker's own loopback and allow-list
 * settings, which the `SchedulerDO` checks). Throws a `TypeError` saying why.
 *
 * @since 0.1.0
 * @category constructors
 */
export const target = (callback: Callback): WebhookTarget =>
  Either.getOrThrowWith(checkTarget(callback), (reason) => new TypeError(`Webhook: ${reason}`))

/**
 * Defines a webhook job: `name` is its function path (`"billing:invoicePaid"`:
 * what lists, metrics and alerts show), `payload` the Schema of the JSON
 * body, and the callback where it goes. Without a `url`, each run gives its
 * own (`{ webhook: { url } }` in the run options). Throws a `TypeError` for
 * a URL, method or header the scheduler would not send.
 *
 * @example
 * const InvoicePaid = Webhook.make("billing:invoicePaid", {
 *   url: "https://billing.example.com/hooks/invoice-paid",
 *   headers: { authorization: "Bearer …" },
 *   payload: Schema.Struct({ invoiceId: Schema.String })
 * })
 * yield* scheduler.runAfter("1 hour", InvoicePaid, { invoiceId: "in_1" })
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <const Path extends string, Payload extends Schema.Schema.AnyNoContext>(
  name: Path,
  options: {
    readonly payload: Payload
    readonly url?: string | undefined
    readonly method?: WebhookMethod | undefined
    readonly headers?: Readonly<Record<string, string>> | undefined
  }
): Webhook<Path, Payload> => {
  if (!Schema.is(FunctionPath)(name)) {
    throw new TypeError(`Webhook.make: "${name}" is not a function path of the form "namespace:function"`)
  }
  const checked = options.url === undefined
    ? { ...target({ url: "https://example.com", method: options.method, headers: options.headers }), url: undefined }
    : target({ url: options.url, method: options.method, headers: options.headers })
  return {
    [TypeId]: TypeId,
    path: name,
    payloadSchema: options.payload,
    successSchema: Response,
    webhook: { url: checked.url, method: checked.method, headers: checked.headers },
    pipe() {
      return pipeArguments(this, arguments)
    }
  }
}

/**
 * The webhook of the HTTP route and of one-off callbacks: any JSON payload,
 * the URL given per run. Its function path is `"webhook:callback"`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const CallbackJob: Webhook<"webhook:callback", typeof Schema.Unknown> = make("webhook:callback", {
  payload: Schema.Unknown
})

/**
 * A delivery that verified: its job (the same id on every attempt), its
 * attempt, when it was signed (epoch ms), its body and the body as JSON.
 *
 * @since 0.1.0
 * @category models
 */
export interface Delivery {
  readonly jobId: string
  readonly attempt: number
  readonly timestamp: number
  readonly body: string
  readonly payload: unknown
}

/**
 * The error of a delivery that did not verify, saying why.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidDelivery extends Schema.TaggedError<InvalidDelivery>()("InvalidDelivery", {
  reason: Schema.String
}) {
  override get message(): string {
    return `not a valid webhook delivery: ${this.reason}`
  }
}

/**
 * For a receiver: reads the request's body and checks its signature with
 * the secret (the scheduler's `LUNORA_SCHEDULER_WEBHOOK_SECRET`), in
 * constant time, and that it was signed within 5 minutes (30 seconds ahead,
 * for clocks). Resolves with the delivery, or rejects with `InvalidDelivery`:
 * answer it 401. A replay within the tolerance verifies: dedupe on `jobId`
 * (and `attempt`).
 *
 * @example
 * const delivery = await Webhook.verify(request, env.WEBHOOK_SECRET).catch(() => undefined)
 * if (delivery === undefined) return new Response("unauthorized", { status: 401 })
 *
 * @since 0.1.0
 * @category receivers
 */
export const verify = async (
  request: { readonly headers: { readonly get: (name: string) => string | null }; readonly text: () => Promise<string> },
  secret: string | Redacted.Redacted<string>,
  now: number = Date.now()
): Promise<Delivery> => {
  const body = await request.text()
  const checked = await verifiedDelivery(Redacted.isRedacted(secret) ? secret : Redacted.make(secret), request.headers, body, now)
  if (typeof checked === "string") throw new InvalidDelivery({ reason: checked })
  let payload: unknown
  try {
    payload = JSON.parse(body)
  } catch {
    throw new InvalidDelivery({ reason: "the body is not JSON" })
  }
  return { ...checked, body, payload }
}

/**
 * `verify` as an Effect, on the `Clock`'s time.
 *
 * @since 0.1.0
 * @category receivers
 */
export const verifyEffect = (
  request: Parameters<typeof verify>[0],
  secret: string | Redacted.Redacted<string>
): Effect.Effect<Delivery, InvalidDelivery> =>
  Effect.flatMap(Effect.clockWith((clock) => clock.currentTimeMillis), (now) =>
    Effect.tryPromise({
      try: () => verify(request, secret, now),
      catch: (error) => error instanceof InvalidDelivery ? error : new InvalidDelivery({ reason: String(error) })
    }))
