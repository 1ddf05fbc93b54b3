/**
 * The sending half of the wire contract: posts attempts of jobs to the
 * app's dispatch endpoint, signed, one per request (`sendOne`) or many in
 * one request (`sendBatch`, wire version 2), and reads the outcomes from
 * the answer. The `SchedulerDO` and the Queues consumer both deliver
 * through it.
 *
 * Only the endpoint's own answer decides an outcome: a response without the
 * endpoint's signature over it (a misrouted origin's page, a proxy's error)
 * is a failed attempt, never a success or a rejection. Redirects are not
 * followed; the answer is read up to `MAX_REPLY_BYTES` (per job in a batch).
 *
 * This is the hot path, written as plain Promises over the destination's
 * `fetch` (the global one, or a service binding's): one signature per
 * request with a key imported once per secret, one timer per request, the
 * answer's web body read directly. Neither function ever rejects.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Redacted from "effect/Redacted"
import { describeCause, messageOf } from "../domain/failure.js"
import {
  BATCH_HEADER,
  BATCH_PATH,
  BATCH_VERSION,
  DISPATCH_PATH,
  decodeDispatchReply,
  type DispatchBody,
  isRejection,
  macOf,
  MAX_REPLY_BYTES,
  outcomeVerified,
  parseOutcomeLine,
  readBody,
  REPLY_HEADER,
  replyVerified,
  SIGNATURE_HEADER,
  signatureOf
} from "./wire.js"

/** What one attempt came to: success with the encoded result, or a failure that is retried or not. */
export type Outcome =
  | { readonly ok: true; readonly result: string | null }
  | { readonly ok: false; readonly retryable: boolean; readonly error: string }

/** Where attempts are posted, and how: the endpoint's URLs and the `fetch` that reaches them. */
export interface Destination {
  readonly url: string
  /** Where a batch goes (`BATCH_PATH` beside `DISPATCH_PATH`). */
  readonly batchUrl: string
  readonly fetch: typeof globalThis.fetch
}

/** The dispatch endpoint under an origin, reached with the global `fetch`. */
export const toOrigin = (originUrl: string): Destination => {
  const origin = originUrl.replace(/\/$/, "")
  return { url: `${origin}${DISPATCH_PATH}`, batchUrl: `${origin}${BATCH_PATH}`, fetch: globalThis.fetch }
}

/** The dispatch endpoint through a service binding's `fetch` (the URL's host is never resolved). */
export const throughBinding = (fetch: (input: URL | string, init?: RequestInit) => Promise<Response>): Destination => ({
  url: `https://lunora.internal${DISPATCH_PATH}`,
  batchUrl: `https://lunora.internal${BATCH_PATH}`,
  fetch: ((input: URL | string, init?: RequestInit) => fetch(input, init)) as typeof globalThis.fetch
})

const ERROR_BODY_LIMIT = 4_096

const failed = (retryable: boolean, error: string): Outcome => ({ ok: false, retryable, error })

/** The outcome an answer of the endpoint's (`status`, its `DispatchReply` text) stands for. */
const outcomeOf = (status: number, text: string): Outcome => {
  const reply = decodeDispatchReply(text)
  if (status >= 200 && status < 300) {
    return { ok: true, result: Either.isRight(reply) && "result" in reply.right ? reply.right.result : null }
  }
  const error = Either.isRight(reply) && "error" in reply.right
    ? reply.right.error
    : `HTTP ${status}: ${text.slice(0, ERROR_BODY_LIMIT)}`
  return failed(!isRejection(status), error)
}

const redirected = (response: Response): Outcome => {
  const location = response.headers.get("location")
  response.body?.cancel().catch(() => undefined)
  return failed(
    true,
    `HTTP ${response.status}: a redirect${location === null ? "" : ` to ${location}`}, not followed (the dispatch endpoint must answer itself)`
  )
}

const notTheEndpoint = (status: number, text: string) =>
  failed(
    true,
    `HTTP ${status} that is not the dispatch endpoint's answer (it carries no valid ${REPLY_HEADER}): ${text.slice(0, ERROR_BODY_LIMIT)}`
  )

/**
 * Posts `body` signed at `now`; `read` takes the response. After `timeoutMs`
 * the request is aborted and the exchange rejects with a `TimeoutError`,
 * whether or not the `fetch` heeds the abort.
 */
const exchange = async <A>(
  secret: Redacted.Redacted<string>,
  url: string,
  destination: Destination,
  body: string,
  now: number,
  timeoutMs: number,
  read: (response: Response, requestMac: string, reading: Reading) => Promise<A>
): Promise<A> => {
  const signature = await signatureOf(secret, now, body)
  const controller = new AbortController()
  const reading: Reading = {}
  let timer: ReturnType<typeof setTimeout>
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new TimeoutError())
      // a streamed answer being read is left to end (its jobs are settled as timed out, and the request goes
      // with the invocation): aborting or canceling it rejects workerd's pending read as unhandled, whatever awaits it
      if (!reading.streaming) controller.abort()
    }, Math.max(0, timeoutMs))
  })
  const work = destination.fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", [SIGNATURE_HEADER]: signature },
    body,
    // a redirect comes back as the 3xx itself: following one would re-send the signed request elsewhere
    redirect: "manual",
    signal: controller.signal
  }).then((response) => read(response, macOf(signature)!, reading))
  try {
    return await Promise.race([work, timeout])
  } finally {
    clearTimeout(timer!)
    // the loser of the race is settled, never left unhandled
    work.catch(() => undefined)
  }
}

/** Whether the answer is being read as a stream of lines (set by the reader): a timeout then does not abort it. */
interface Reading {
  streaming?: boolean
}

class TimeoutError extends Error {
  constructor() {
    super("timed out")
  }
}

/** Why a request came to nothing: the timeout's reason, or the error. */
const problemOf = (error: unknown, timeoutReason: string) =>
  error instanceof TimeoutError || (error instanceof Error && error.name === "AbortError")
    ? timeoutReason
    : `dispatch failed: ${messageOf(error)}`

/**
 * Posts one attempt (`body`: a `DispatchBody` as JSON, its lease unique to
 * the request) and reads its outcome within `timeoutMs`. Never rejects: a
 * timeout, a network error, a redirect or an answer that is not the
 * endpoint's is a retryable failed attempt.
 */
export const sendOne = (
  secret: Redacted.Redacted<string>,
  destination: Destination,
  body: string,
  now: number,
  timeoutMs: number,
  timeoutReason: string
): Promise<Outcome> =>
  exchange(secret, destination.url, destination, body, now, timeoutMs, async (response, requestMac) => {
    const { status } = response
    if (status >= 300 && status < 400) return redirected(response)
    const text = await readBody(response.body, MAX_REPLY_BYTES)
    const signed = await replyVerified(secret, requestMac, response.headers.get(REPLY_HEADER), status, text)
    return signed ? outcomeOf(status, text) : notTheEndpoint(status, text)
  }).catch((error) => failed(true, problemOf(error, timeoutReason)))

/** The end of a batch: every job answered (or failed), or the endpoint does not take batches (`fallback`). */
export type BatchEnd =
  | { readonly _tag: "Done" }
  /** Nothing ran for the jobs not yet settled: the endpoint does not speak batches; `reason` says what it answered. */
  | { readonly _tag: "Fallback"; readonly reason: string }

/** The most a batch answer's line may hold: a reply at its cap and the line's own fields. */
const MAX_LINE_BYTES = MAX_REPLY_BYTES + 256

/**
 * Reads a streamed batch answer: `settle(index, outcome)` for each line the
 * endpoint signed, as it arrives; lines that are not its own are skipped.
 */
const readLines = async (
  secret: Redacted.Redacted<string>,
  requestMac: string,
  response: Response,
  count: number,
  settle: (index: number, outcome: Outcome) => void,
  reading: Reading
): Promise<void> => {
  if (response.body === null) return
  const reader = response.body.getReader()
  reader.closed.catch(() => undefined)
  reading.streaming = true
  const decoder = new TextDecoder()
  let pending = ""
  let bytes = 0
  const limit = count * MAX_LINE_BYTES
  /** Verifies the lines that came in one read together, then settles them together: their outcomes are recorded in one write. */
  const lines = async (texts: ReadonlyArray<string>) => {
    const parsed = texts.flatMap((text) => {
      const line = parseOutcomeLine(text)
      return line === undefined || line.index >= count ? [] : [line]
    })
    const verified = await Promise.all(parsed.map((line) => outcomeVerified(secret, requestMac, line)))
    parsed.forEach((line, i) => {
      if (verified[i]) settle(line.index, outcomeOf(line.status, line.body))
    })
  }
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    bytes += value.byteLength
    if (bytes > limit) {
      reader.cancel().catch(() => undefined)
      throw new Error(`the batch answer is over ${limit} bytes`)
    }
    pending += decoder.decode(value, { stream: true })
    const end = pending.lastIndexOf("\n")
    if (end >= 0) {
      const complete = pending.slice(0, end).split("\n")
      pending = pending.slice(end + 1)
      await lines(complete)
    }
    if (pending.length > MAX_LINE_BYTES) {
      reader.cancel().catch(() => undefined)
      throw new Error(`a line of the batch answer is over ${MAX_LINE_BYTES} bytes`)
    }
  }
  pending += decoder.decode()
  if (pending.length > 0) await lines([pending])
}

/**
 * Posts `jobs` (`DispatchBody` values of one destination, with their
 * request's `lease` and `scheduler`) as one batch, and calls
 * `settle(index, outcome)` once per job as its outcome arrives. The
 * endpoint's streamed lines decide each job's outcome; a whole-request
 * answer of its own (401, 409, 500, ...) is every job's. A job left without
 * an outcome when the answer ends, times out or breaks is a retryable failed
 * attempt. An answer that is not the endpoint's (a 404 from an app that does
 * not serve the batch path, an unsigned page, a redirect) or a signed
 * refusal of the request as such (a 4xx that would dead-letter a single
 * job) ends in `Fallback` with the jobs unsettled and nothing run: send
 * them one by one. Never rejects.
 */
export const sendBatch = (
  secret: Redacted.Redacted<string>,
  destination: Destination,
  request: { readonly lease: string; readonly scheduler: string | null },
  jobs: ReadonlyArray<DispatchBody>,
  now: number,
  timeoutMs: number,
  timeoutReason: string,
  settle: (index: number, outcome: Outcome) => void
): Promise<BatchEnd> => {
  const settled = new Array<boolean>(jobs.length).fill(false)
  const settleOnce = (index: number, outcome: Outcome) => {
    if (settled[index]) return
    settled[index] = true
    settle(index, outcome)
  }
  const settleRest = (outcome: Outcome) => {
    for (let index = 0; index < jobs.length; index++) settleOnce(index, outcome)
  }
  const body = JSON.stringify({
    v: BATCH_VERSION,
    lease: request.lease,
    scheduler: request.scheduler,
    jobs: jobs.map(({ lease: _lease, scheduler: _scheduler, ...job }) => job)
  })
  return exchange(secret, destination.batchUrl, destination, body, now, timeoutMs, async (response, requestMac, reading): Promise<BatchEnd> => {
    const { status } = response
    if (status >= 300 && status < 400) {
      response.body?.cancel().catch(() => undefined)
      return { _tag: "Fallback", reason: `HTTP ${status} (a redirect)` }
    }
    if (status === 200 && response.headers.get(BATCH_HEADER) === String(BATCH_VERSION)) {
      await readLines(secret, requestMac, response, jobs.length, settleOnce, reading)
      settleRest(failed(true, "the batch answer ended without this job's outcome"))
      return { _tag: "Done" }
    }
    const text = await readBody(response.body, MAX_REPLY_BYTES)
    const signed = await replyVerified(secret, requestMac, response.headers.get(REPLY_HEADER), status, text)
    if (!signed) return { _tag: "Fallback", reason: `HTTP ${status} that is not the endpoint's answer` }
    const outcome = outcomeOf(status, text)
    if (!outcome.ok && !outcome.retryable) return { _tag: "Fallback", reason: `HTTP ${status}: ${outcome.error}` }
    settleRest(outcome)
    return { _tag: "Done" }
  }).catch((error): BatchEnd => {
    settleRest(failed(true, problemOf(error, timeoutReason)))
    return { _tag: "Done" }
  })
}

/**
 * Posts one attempt and waits at most `timeout` for the answer: `sendOne`
 * as an Effect, signed at the `Clock`'s time. Never fails.
 */
export const deliver = (
  secret: Redacted.Redacted<string>,
  destination: Destination,
  body: DispatchBody,
  timeout: Duration.Duration,
  timeoutReason: string = `no response within ${Duration.format(timeout)}`
): Effect.Effect<Outcome> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    Effect.promise(() =>
      sendOne(
        secret,
        destination,
        // the lease makes every request unique, so that no two are alike to the endpoint's replay guard
        JSON.stringify(body.lease === null ? { ...body, lease: crypto.randomUUID() } : body),
        now,
        Duration.toMillis(timeout),
        timeoutReason
      )
    )).pipe(Effect.catchAllCause((cause) => Effect.succeed(failed(true, `dispatch failed: ${describeCause(cause)}`))))
