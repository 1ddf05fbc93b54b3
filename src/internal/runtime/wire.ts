/**
 * The wire contract between the Durable Object and the app: the dispatch path and body, the signature over body and
 * timestamp, the endpoint's signed reply, the size caps, and what a response
 * status means.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"
import type * as ParseResult from "effect/ParseResult"
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

/** What a target's `originUrl` looks like: an http(s) URL without query or fragment. */
export const ORIGIN_URL_PATTERN = /^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/

/** What a target's `binding` looks like: the name of a binding. */
export const BINDING_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/

/** Where a scheduler instance sends due jobs: an origin over HTTP, or a service binding of the Worker. */
export const DispatchTarget = Schema.Union(
  Schema.Struct({
    originUrl: Schema.String.pipe(Schema.pattern(ORIGIN_URL_PATTERN, {
      message: () => "originUrl must be an http(s) URL without query or fragment"
    }))
  }),
  Schema.Struct({
    binding: Schema.String.pipe(Schema.pattern(BINDING_PATTERN, {
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

const keyOf = (secret: Redacted.Redacted<string>): Promise<CryptoKey> => {
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
}

/** The hex HMAC-SHA256 of `message` under `secret` (the key imported once per secret). */
export const macHex = async (secret: Redacted.Redacted<string>, message: string): Promise<string> =>
  Encoding.encodeHex(new Uint8Array(await crypto.subtle.sign("HMAC", await keyOf(secret), encoder.encode(message))))

/** Whether `hex` is the HMAC of `message` under `secret`, checked by `crypto.subtle.verify` (constant time). */
export const verifyHex = async (secret: Redacted.Redacted<string>, hex: string, message: string): Promise<boolean> => {
  const mac = Encoding.decodeHex(hex)
  if (mac._tag === "Left") return false
  return crypto.subtle.verify(
    "HMAC",
    await keyOf(secret),
    mac.right as Uint8Array<ArrayBuffer>,
    encoder.encode(message) as Uint8Array<ArrayBuffer>
  )
}

/** The signature header value for `body` sent at `timestamp`. */
export const signatureOf = async (secret: Redacted.Redacted<string>, timestamp: number, body: string): Promise<string> =>
  `t=${timestamp},v1=${await macHex(secret, `${timestamp}.${body}`)}`

/** The signature header value for `body` sent at `timestamp`. */
export const sign = (secret: Redacted.Redacted<string>, timestamp: number, body: string): Effect.Effect<string> =>
  Effect.promise(() => signatureOf(secret, timestamp, body))

const HEADER = /^t=(\d{1,15}),v1=([0-9a-f]{64})$/

/** The MAC part of a signature header (what a replay repeats), if the header is well formed. */
export const macOf = (header: string | null | undefined): string | undefined =>
  header === null || header === undefined ? undefined : HEADER.exec(header)?.[2]

/**
 * Whether `header` signs `body` with `secret`, with a timestamp at most
 * `SIGNATURE_TOLERANCE_MS` before `now` and at most `SIGNATURE_FUTURE_MS`
 * after it. The MAC is checked by `crypto.subtle.verify`, in constant time.
 */
export const verified = async (
  secret: Redacted.Redacted<string>,
  header: string | null | undefined,
  body: string,
  now: number
): Promise<boolean> => {
  const match = header === null || header === undefined ? null : HEADER.exec(header)
  if (match === null) return false
  const timestamp = Number(match[1])
  if (now - timestamp > SIGNATURE_TOLERANCE_MS || timestamp - now > SIGNATURE_FUTURE_MS) return false
  return verifyHex(secret, match[2]!, `${timestamp}.${body}`)
}

const replyMessage = (requestMac: string, status: number, body: string) => `reply.${requestMac}.${status}.${body}`

/**
 * The endpoint's signature over its answer to the request signed with
 * `requestMac`, the header value `v1=<hex>`: the sender counts an answer
 * only when it carries one, so a page that is not the endpoint (a misrouted
 * origin, a redirect target) never counts as the outcome.
 */
export const replySignatureOf = async (
  secret: Redacted.Redacted<string>,
  requestMac: string,
  status: number,
  body: string
): Promise<string> => `v1=${await macHex(secret, replyMessage(requestMac, status, body))}`

const REPLY = /^v1=([0-9a-f]{64})$/

/** `verifyReply` as a Promise. */
export const replyVerified = (
  secret: Redacted.Redacted<string>,
  requestMac: string,
  header: string | null | undefined,
  status: number,
  body: string
): Promise<boolean> => {
  const match = header === null || header === undefined ? null : REPLY.exec(header)
  return match === null ? Promise.resolve(false) : verifyHex(secret, match[1]!, replyMessage(requestMac, status, body))
}

/** Whether `header` is the endpoint's signature over this answer to the request signed with `requestMac`. */
export const verifyReply = (
  secret: Redacted.Redacted<string>,
  requestMac: string,
  header: string | null | undefined,
  status: number,
  body: string
): Effect.Effect<boolean> => Effect.promise(() => replyVerified(secret, requestMac, header, status, body))

// -- batched dispatch (wire version 2) ---------------------------------------

/**
 * Where the `SchedulerDO` posts a batch of due jobs: one signed request
 * carrying up to `MAX_BATCH_JOBS` jobs. An answer there that is not the
 * endpoint's (a 404 from an app that does not serve it, any unsigned page)
 * makes the sender fall back to one request per job at `DISPATCH_PATH`.
 */
export const BATCH_PATH = "/_lunora/scheduler/dispatch/batch"

/** The version a batch body carries in `v`. */
export const BATCH_VERSION = 2

/** The most jobs one batch carries. */
export const MAX_BATCH_JOBS = 100

/** The largest batch request the endpoint reads; the sender packs batches under it. */
export const MAX_BATCH_REQUEST_BYTES = 4 * 1_048_576 + 65_536

/** The header on the endpoint's streamed answer to a batch: the wire version of its lines. */
export const BATCH_HEADER = "x-lunora-batch"

/** One job of a batch: a dispatch body without the request's own fields (`lease`, `scheduler`). */
export const BatchJob = Schema.Struct({
  id: Schema.String,
  functionPath: Schema.String,
  args: Schema.Unknown,
  shardKey: Schema.NullOr(Schema.String),
  key: Schema.NullOr(Schema.String),
  pool: Schema.NullOr(Schema.String),
  scheduledFor: Schema.Number,
  attempt: Schema.Int.pipe(Schema.positive())
})
export type BatchJob = typeof BatchJob.Type

/**
 * The body of a batch request: `{ v: 2, lease, scheduler, jobs }`. `lease`
 * is unique to the request (what the endpoint confirms with the sender, once
 * for the batch); `scheduler` as in a single dispatch.
 */
export const DispatchBatch = Schema.Struct({
  v: Schema.Literal(BATCH_VERSION),
  lease: Schema.String,
  scheduler: Schema.NullOr(Schema.String),
  jobs: Schema.Array(BatchJob).pipe(Schema.minItems(1), Schema.maxItems(MAX_BATCH_JOBS))
})
export type DispatchBatch = typeof DispatchBatch.Type

// -- decoding bodies and replies ----------------------------------------------

type Fields = Readonly<Record<string, unknown>>

/** The JSON object `text` holds, or `undefined` for anything else (which the Schema then refuses, with its reason). */
const objectIn = (text: string): Fields | undefined => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  return typeof value === "object" && value !== null && !Array.isArray(value) ? value as Fields : undefined
}

const isTextOrNull = (value: unknown) => value === null || typeof value === "string"
/** A field with a default: left out (JSON has no `undefined`), or as given. */
const isTextNullOrOut = (value: unknown) => value === undefined || isTextOrNull(value)
/** `Schema.Int.pipe(Schema.positive())`. */
const isAttemptNumber = (value: unknown) => Number.isSafeInteger(value) && (value as number) > 0

/** Whether `job` has what `BatchJob` requires of every job, each as the Schema takes it (`key` and `pool` aside). */
const isJobOfDispatch = (job: Fields) =>
  typeof job.id === "string" && typeof job.functionPath === "string" && isTextOrNull(job.shardKey) &&
  typeof job.scheduledFor === "number" && isAttemptNumber(job.attempt)

/** A `BatchJob` as `BatchJob` decodes it from `job`, which the plain checks took. */
const batchJobOf = (job: Fields, key: unknown, pool: unknown): BatchJob => ({
  id: job.id as string,
  functionPath: job.functionPath as string,
  args: job.args,
  shardKey: job.shardKey as string | null,
  key: key as string | null,
  pool: pool as string | null,
  scheduledFor: job.scheduledFor as number,
  attempt: job.attempt as number
})

/**
 * A decoder of JSON text by `schema`, with a fast path: `plain` takes a
 * parsed object the Schema would take as it is and gives what the Schema
 * would give, or `undefined` to leave it to the Schema (which then decides,
 * and gives the refusal). The bodies and replies of dispatch are decoded
 * once per request and per job; `test/protocol.test.ts` holds each pair to
 * agreement.
 */
const decoderOf = <A, I>(
  schema: Schema.Schema<A, I>,
  plain: (fields: Fields) => A | undefined
): (text: string) => Either.Either<A, ParseResult.ParseError> => {
  const decode = Schema.decodeEither(Schema.parseJson(schema))
  return (text) => {
    const fields = objectIn(text)
    const taken = fields === undefined ? undefined : plain(fields)
    return taken === undefined ? decode(text) : Either.right(taken)
  }
}

/** Decodes a single dispatch's body (`DispatchBody` as JSON). */
export const decodeDispatchBody = decoderOf(DispatchBody, (body): DispatchBody | undefined =>
  isJobOfDispatch(body) && isTextNullOrOut(body.key) && isTextNullOrOut(body.pool) &&
    isTextNullOrOut(body.lease) && isTextNullOrOut(body.scheduler)
    ? {
      ...batchJobOf(body, body.key ?? null, body.pool ?? null),
      lease: (body.lease ?? null) as string | null,
      scheduler: (body.scheduler ?? null) as string | null
    }
    : undefined)

/** Decodes a batch's body (`DispatchBatch` as JSON). */
export const decodeDispatchBatch = decoderOf(DispatchBatch, (body): DispatchBatch | undefined => {
  const { jobs, lease, scheduler, v } = body
  if (v !== BATCH_VERSION || typeof lease !== "string" || !isTextOrNull(scheduler)) return undefined
  if (!Array.isArray(jobs) || jobs.length < 1 || jobs.length > MAX_BATCH_JOBS) return undefined
  const decoded: Array<BatchJob> = []
  for (const job of jobs as ReadonlyArray<unknown>) {
    if (typeof job !== "object" || job === null || Array.isArray(job)) return undefined
    const fields = job as Fields
    if (!isJobOfDispatch(fields) || !isTextOrNull(fields.key) || !isTextOrNull(fields.pool)) return undefined
    decoded.push(batchJobOf(fields, fields.key, fields.pool))
  }
  return { v, lease, scheduler: scheduler as string | null, jobs: decoded }
})

/** Decodes an answer's body (`DispatchReply` as JSON): a result, else an error (the union's members in order). */
export const decodeDispatchReply = decoderOf(DispatchReply, (reply): DispatchReply | undefined =>
  isTextOrNull(reply.result)
    ? { result: reply.result as string | null }
    : typeof reply.error === "string"
    ? { error: reply.error }
    : undefined)

const outcomeMessage = (requestMac: string, index: number, status: number, body: string) =>
  `reply.${requestMac}.${index}.${status}.${body}`

/**
 * One line of the endpoint's answer to a batch, for the job at `index` of
 * the request: `<index> <status> <hex mac> <body>\n`, where `status` is what
 * a single dispatch of the job would have answered (200, 422, 500, ...),
 * `body` its `DispatchReply` JSON (one line: JSON text has no raw newline),
 * and the mac the HMAC of `reply.<request mac>.<index>.<status>.<body>`.
 * Lines come in the order the jobs finish.
 */
export const outcomeLine = async (
  secret: Redacted.Redacted<string>,
  requestMac: string,
  index: number,
  status: number,
  body: string
): Promise<string> => `${index} ${status} ${await macHex(secret, outcomeMessage(requestMac, index, status, body))} ${body}\n`

/** A line of a batch answer, split (not yet verified); `undefined` when it is not a line of that form. */
export interface OutcomeLine {
  readonly index: number
  readonly status: number
  readonly mac: string
  readonly body: string
}

const LINE = /^(\d{1,3}) (\d{3}) ([0-9a-f]{64}) /

export const parseOutcomeLine = (line: string): OutcomeLine | undefined => {
  const match = LINE.exec(line)
  return match === null
    ? undefined
    : { index: Number(match[1]), status: Number(match[2]), mac: match[3]!, body: line.slice(match[0].length) }
}

/** Whether a parsed line is the endpoint's answer for its job to the batch signed with `requestMac`. */
export const outcomeVerified = (secret: Redacted.Redacted<string>, requestMac: string, line: OutcomeLine): Promise<boolean> =>
  verifyHex(secret, line.mac, outcomeMessage(requestMac, line.index, line.status, line.body))

/** A body too large to read: reading stopped at the cap. */
export class BodyTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`the body is over ${limit} bytes`)
  }
}

/**
 * Reads a web body as UTF-8 text, throwing `BodyTooLarge` as soon as more
 * than `limit` bytes have arrived (the rest is never read). One promise over
 * the stream's reader: an Effect `Stream` costs about a millisecond a body
 * here, per dispatch and per answer.
 */
export const readBody = async (body: ReadableStream<Uint8Array> | null, limit: number): Promise<string> => {
  if (body === null) return ""
  const reader = body.getReader()
  // an aborted request errors the stream: its `closed` too, which no one else awaits
  reader.closed.catch(() => undefined)
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
