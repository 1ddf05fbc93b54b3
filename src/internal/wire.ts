/**
 * The wire contract between the Durable Object and the app (DESIGN.md "Wire
 * contract"): the dispatch path and body, the signature over body and
 * timestamp, and what a response status means.
 */
import { Effect, Encoding, Redacted, Schema } from "effect"

/** Where the app mounts the dispatch endpoint. */
export const DISPATCH_PATH = "/_lunora/scheduler/dispatch"

/** The header carrying `t=<epoch ms>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
export const SIGNATURE_HEADER = "x-lunora-signature"

/** How far a signature's timestamp may be from the receiver's clock. */
export const SIGNATURE_TOLERANCE_MS = 5 * 60_000

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
  /** An addition to DESIGN.md's body: the job's dedupe key (a cron fire's idempotency key). */
  key: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
  /** Another addition: the workpool the job runs in. */
  pool: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
  scheduledFor: Schema.Number,
  attempt: Schema.Int.pipe(Schema.positive())
})
export type DispatchBody = typeof DispatchBody.Type

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

/**
 * Whether `header` signs `body` with `secret`, at a time within the tolerance
 * of `now`. The MAC is checked by `crypto.subtle.verify`, in constant time.
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
  if (Math.abs(now - timestamp) > SIGNATURE_TOLERANCE_MS) return Effect.succeed(false)
  const mac = Encoding.decodeHex(match[2]!)
  if (mac._tag === "Left") return Effect.succeed(false)
  return Effect.flatMap(importKey(secret), (key) =>
    Effect.promise(() =>
      crypto.subtle.verify(
        "HMAC",
        key,
        mac.right as Uint8Array<ArrayBuffer>,
        encoder.encode(`${timestamp}.${body}`) as Uint8Array<ArrayBuffer>
      )
    ))
}

/**
 * Whether a 4xx says the request itself is wrong (unknown function, payload
 * failing its Schema): such a job dead-letters at once. 401/403 (auth), 408
 * and 429 are the receiver's state, not the request's, and are retried.
 */
export const isRejection = (status: number): boolean =>
  status >= 400 && status < 500 && status !== 401 && status !== 403 && status !== 408 && status !== 429
