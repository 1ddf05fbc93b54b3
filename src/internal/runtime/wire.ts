/**
 * The wire contract between the Durable Object and the app: the dispatch path and body, the signature over body and
 * timestamp, the endpoint's signed reply, the size caps, and what a response
 * status means.
 */
import * as Effect from "effect/Effect"
import * as Encoding from "effect/Encoding"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

/** Where the app mounts the dispatch endpoint. */
export const DISPATCH_PATH = "/_lunora/scheduler/dispatch"

/** The header carrying `t=<epoch ms>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
export const SIGNATURE_HEADER = "x-lunora-signature"

/** How long after its timestamp a signed request is accepted. */
export const SIGNATURE_TOLERANCE_MS = 5 * 60_000

/** How far ahead of the receiver's clock a signature's timestamp may be (clock skew). */
export const SIGNATURE_FUTURE_MS = 30_000

/** The header carrying the endpoint's answer signature: `v1=<hex HMAC-SHA256 of "reply.<request mac>.<status>.<body>">`. */
export const REPLY_HEADER = "x-lunora-reply"

/** The largest dispatch request the endpoint reads: a payload at its limit and the rest of the body. */
export const MAX_REQUEST_BYTES = 1_048_576 + 65_536

/** The largest answer the sender reads: a result at its limit and the rest of the reply. */
export const MAX_REPLY_BYTES = 1_048_576 + 65_536

/** Where a scheduler instance sends due jobs: an origin over HTTP, or a service binding of the Worker. */
export const DispatchTarget = Schema.Union(
  Schema.Struct({
    originUrl: Schema.String.pipe(Schema.pattern(/^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/, {
      message: () => "originUrl must be an http(s) URL without query or fragment"
    }))
  }),
  Schema.Struct({
    binding: Schema.String.pipe(Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]*$/, {
      message: () => "binding must be the name of a service binding of the Worker"
    }))
  })
)
export type DispatchTarget = typeof DispatchTarget.Type

/** The body of a dispatch request. */
export const DispatchBody = Schema.Struct({
  id: Schema.String,
  functionPath: Schema.String,
  args: Schema.Unknown,
  shardKey: Schema.NullOr(Schema.String),
  /** The job's dedupe key (a cron fire's idempotency key). */
  key: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
  /** Another addition: the workpool the job runs in. */
  pool: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
  scheduledFor: Schema.Number,
  attempt: Schema.Int.pipe(Schema.positive()),
  /** Unique to one request: from the `SchedulerDO`, the attempt's lease it confirms (`Dispatch` options `namespace`). */
  lease: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
  /** The id of the `SchedulerDO` that sent it (`DurableObjectId.toString()`); none from the Queues consumer. */
  scheduler: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null })
})
export type DispatchBody = typeof DispatchBody.Type

/** The one constructor of a dispatch body: a job's fields (its payload decoded), and this attempt's. */
export const dispatchBody = (
  job: {
    readonly id: string
    readonly functionPath: string
    readonly args: unknown
    readonly shardKey: string | null
    readonly key: string | null
    readonly pool: string | null
    readonly scheduledFor: number
  },
  attempt: { readonly attempt: number; readonly lease: string | null; readonly scheduler: string | null }
): DispatchBody => ({
  id: job.id,
  functionPath: job.functionPath,
  args: job.args,
  shardKey: job.shardKey,
  key: job.key,
  pool: job.pool,
  scheduledFor: job.scheduledFor,
  ...attempt
})

/** The body of every dispatch response: the encoded result, or why it failed. */
export const DispatchReply = Schema.Union(
  Schema.Struct({ result: Schema.NullOr(Schema.String) }),
  Schema.Struct({ error: Schema.String })
)
export type DispatchReply = typeof DispatchReply.Type

const encoder = new TextEncoder()

/** One imported HMAC key per secret: importing is the costly part of signing. */
const keys = new WeakMap<Redacted.Redacted<string>, Promise<CryptoKey>>()

const importKey = (secret: Redacted.Redacted<string>) =>
  Effect.promise(() => {
    let key = keys.get(secret)
    if (key === undefined) {
      key = crypto.subtle.importKey(
        "raw",
        encoder.encode(Redacted.value(secret)),
        { name: "HMAC", hash: "SHA-256" },
        false,
        ["sign", "verify"]
      )
      keys.set(secret, key)
    }
    return key
  })

/** The signature header value for `body` sent at `timestamp`. */
export const sign = (secret: Redacted.Redacted<string>, timestamp: number, body: string): Effect.Effect<string> =>
  Effect.flatMap(importKey(secret), (key) =>
    Effect.promise(() => crypto.subtle.sign("HMAC", key, encoder.encode(`${timestamp}.${body}`)))).pipe(
      Effect.map((mac) => `t=${timestamp},v1=${Encoding.encodeHex(new Uint8Array(mac))}`)
    )

const HEADER = /^t=(\d{1,15}),v1=([0-9a-f]{64})$/

const verifyMac = (secret: Redacted.Redacted<string>, macHex: string, message: string): Effect.Effect<boolean> => {
  const mac = Encoding.decodeHex(macHex)
  if (mac._tag === "Left") return Effect.succeed(false)
  return Effect.flatMap(importKey(secret), (key) =>
    Effect.promise(() =>
      crypto.subtle.verify(
        "HMAC",
        key,
        mac.right as Uint8Array<ArrayBuffer>,
        encoder.encode(message) as Uint8Array<ArrayBuffer>
      )
    ))
}

/** The MAC part of a signature header (what a replay repeats), if the header is well formed. */
export const macOf = (header: string | null | undefined): string | undefined =>
  header === null || header === undefined ? undefined : HEADER.exec(header)?.[2]

/**
 * Whether `header` signs `body` with `secret`, with a timestamp at most
 * `SIGNATURE_TOLERANCE_MS` before `now` and at most `SIGNATURE_FUTURE_MS`
 * after it. The MAC is checked by `crypto.subtle.verify`, in constant time.
 */
export const verify = (
  secret: Redacted.Redacted<string>,
  header: string | null | undefined,
  body: string,
  now: number
): Effect.Effect<boolean> => {
  const match = header === null || header === undefined ? null : HEADER.exec(header)
  if (match === null) return Effect.succeed(false)
  const timestamp = Number(match[1])
  if (now - timestamp > SIGNATURE_TOLERANCE_MS || timestamp - now > SIGNATURE_FUTURE_MS) return Effect.succeed(false)
  return verifyMac(secret, match[2]!, `${timestamp}.${body}`)
}

const replyMessage = (requestMac: string, status: number, body: string) => `reply.${requestMac}.${status}.${body}`

/**
 * The endpoint's signature over its answer to the request signed with
 * `requestMac`: the sender counts an answer only when it carries one, so a
 * page that is not the endpoint (a misrouted origin, a redirect target)
 * never counts as the outcome.
 */
export const signReply = (
  secret: Redacted.Redacted<string>,
  requestMac: string,
  status: number,
  body: string
): Effect.Effect<string> =>
  Effect.flatMap(importKey(secret), (key) =>
    Effect.promise(() => crypto.subtle.sign("HMAC", key, encoder.encode(replyMessage(requestMac, status, body))))).pipe(
      Effect.map((mac) => `v1=${Encoding.encodeHex(new Uint8Array(mac))}`)
    )

const REPLY = /^v1=([0-9a-f]{64})$/

/** Whether `header` is the endpoint's signature over this answer to the request signed with `requestMac`. */
export const verifyReply = (
  secret: Redacted.Redacted<string>,
  requestMac: string,
  header: string | null | undefined,
  status: number,
  body: string
): Effect.Effect<boolean> => {
  const match = header === null || header === undefined ? null : REPLY.exec(header)
  return match === null ? Effect.succeed(false) : verifyMac(secret, match[1]!, replyMessage(requestMac, status, body))
}

/** A body too large to read: reading stopped at the cap. */
export class BodyTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`the body is over ${limit} bytes`)
  }
}

const readBody = async (body: ReadableStream<Uint8Array> | null, limit: number): Promise<string> => {
  if (body === null) return ""
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let bytes = 0
  let text = ""
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return text + decoder.decode()
    bytes += value.byteLength
    if (bytes > limit) {
      reader.cancel().catch(() => undefined)
      throw new BodyTooLarge(limit)
    }
    text += decoder.decode(value, { stream: true })
  }
}

/**
 * Reads a web body as UTF-8 text, failing with `BodyTooLarge` as soon as
 * more than `limit` bytes have arrived (the rest is never read). One promise
 * over the stream's reader: an Effect `Stream` costs about a millisecond a
 * body here, per dispatch and per answer.
 */
export const readText = (body: ReadableStream<Uint8Array> | null, limit: number): Effect.Effect<string, unknown> =>
  Effect.tryPromise({ try: () => readBody(body, limit), catch: (error) => error })

/**
 * The requests an endpoint has run within the signature's tolerance, by MAC:
 * a request seen again (a replay) runs nothing. Per isolate; bounded, the
 * oldest forgotten first once `capacity` are kept.
 */
export class SeenRequests {
  readonly #expiries = new Map<string, number>()
  constructor(readonly capacity: number = 100_000) {}

  /** Records `mac` as seen at `now`; false when it was seen already (and has not expired). */
  firstSight(mac: string, now: number): boolean {
    for (const [seen, expiry] of this.#expiries) {
      if (expiry > now && this.#expiries.size < this.capacity) break
      this.#expiries.delete(seen)
    }
    const expiry = this.#expiries.get(mac)
    if (expiry !== undefined && expiry > now) return false
    this.#expiries.set(mac, now + SIGNATURE_TOLERANCE_MS + SIGNATURE_FUTURE_MS)
    return true
  }
}

/**
 * Whether a 4xx from the endpoint says the request itself is wrong (unknown
 * function, payload failing its Schema): such a job dead-letters at once.
 * 401/403 (auth), 408, 409 (a replay refused, a dispatch not confirmed) and
 * 429 are the receiver's state, not the request's, and are retried.
 */
export const isRejection = (status: number): boolean =>
  status >= 400 && status < 500 && status !== 401 && status !== 403 && status !== 408 && status !== 409 &&
  status !== 429
