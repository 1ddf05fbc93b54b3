/**
 * The sending half of the wire contract: posts one attempt of a job to the
 * app's dispatch endpoint, signed, and reads the outcome from the response.
 * The `SchedulerDO` and the Queues consumer both deliver through it.
 *
 * Only the endpoint's own answer decides an outcome: a response without the
 * endpoint's signature over it (a misrouted origin's page, a proxy's error)
 * is a failed attempt, never a success or a rejection. Redirects are not
 * followed; the answer is read up to `MAX_REPLY_BYTES`.
 *
 * It posts with the destination's `fetch` itself (the global one, or a
 * service binding's), aborted when the attempt's time is up, and reads the
 * answer's web body directly: per dispatch, that is the hot path.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { describeCause } from "../domain/failure.js"
import {
  DISPATCH_PATH,
  type DispatchBody,
  DispatchReply,
  isRejection,
  macOf,
  MAX_REPLY_BYTES,
  readText,
  REPLY_HEADER,
  SIGNATURE_HEADER,
  sign,
  verifyReply
} from "./wire.js"

/** What one attempt came to: success with the encoded result, or a failure that is retried or not. */
export type Outcome =
  | { readonly ok: true; readonly result: string | null }
  | { readonly ok: false; readonly retryable: boolean; readonly error: string }

/** Where an attempt is posted, and how: the URL of the dispatch endpoint and the `fetch` that reaches it. */
export interface Destination {
  readonly url: string
  readonly fetch: typeof globalThis.fetch
}

/** The dispatch endpoint under an origin, reached with the global `fetch`. */
export const toOrigin = (originUrl: string): Destination => ({
  url: `${originUrl.replace(/\/$/, "")}${DISPATCH_PATH}`,
  fetch: globalThis.fetch
})

/** The dispatch endpoint through a service binding's `fetch` (the URL's host is never resolved). */
export const throughBinding = (fetch: (input: URL | string, init?: RequestInit) => Promise<Response>): Destination => ({
  url: `https://lunora.internal${DISPATCH_PATH}`,
  fetch: ((input: URL | string, init?: RequestInit) => fetch(input, init)) as typeof globalThis.fetch
})

const ERROR_BODY_LIMIT = 4_096
const decodeReply = Schema.decodeUnknownEither(Schema.parseJson(DispatchReply))

const failed = (retryable: boolean, error: string): Outcome => ({ ok: false, retryable, error })

const post = (secret: Redacted.Redacted<string>, destination: Destination, body: string) =>
  Effect.gen(function*() {
    const signature = yield* sign(secret, yield* Clock.currentTimeMillis, body)
    const response = yield* Effect.tryPromise({
      try: (signal) =>
        destination.fetch(destination.url, {
          method: "POST",
          headers: { "content-type": "application/json", [SIGNATURE_HEADER]: signature },
          body,
          // a redirect comes back as the 3xx itself: following one would re-send the signed request elsewhere
          redirect: "manual",
          signal
        }),
      catch: (error) => error
    })
    const { status } = response
    if (status >= 300 && status < 400) {
      const location = response.headers.get("location")
      response.body?.cancel().catch(() => undefined)
      return failed(true, `HTTP ${status}: a redirect${location === null ? "" : ` to ${location}`}, not followed (the dispatch endpoint must answer itself)`)
    }
    const text = yield* readText(response.body, MAX_REPLY_BYTES)
    const signed = yield* verifyReply(secret, macOf(signature)!, response.headers.get(REPLY_HEADER), status, text)
    if (!signed) {
      return failed(true, `HTTP ${status} that is not the dispatch endpoint's answer (it carries no valid ${REPLY_HEADER}): ${text.slice(0, ERROR_BODY_LIMIT)}`)
    }
    const reply = decodeReply(text)
    if (status >= 200 && status < 300) {
      const succeeded: Outcome = {
        ok: true,
        result: Either.isRight(reply) && "result" in reply.right ? reply.right.result : null
      }
      return succeeded
    }
    const error = Either.isRight(reply) && "error" in reply.right
      ? reply.right.error
      : `HTTP ${status}: ${text.slice(0, ERROR_BODY_LIMIT)}`
    return failed(!isRejection(status), error)
  })

/**
 * Posts one attempt and waits at most `timeout` for the answer. Never fails:
 * a timeout, a network error, a redirect, an answer that is not the
 * endpoint's, or a defect is a retryable failed attempt.
 */
export const deliver = (
  secret: Redacted.Redacted<string>,
  destination: Destination,
  body: DispatchBody,
  timeout: Duration.Duration,
  timeoutReason: string = `no response within ${Duration.format(timeout)}`
): Effect.Effect<Outcome> =>
  // the lease makes every request unique, so that no two are alike to the endpoint's replay guard
  post(secret, destination, JSON.stringify(body.lease === null ? { ...body, lease: crypto.randomUUID() } : body)).pipe(
    Effect.timeoutFail({ duration: timeout, onTimeout: () => timeoutReason }),
    Effect.catchAllCause((cause) => Effect.succeed(failed(true, `dispatch failed: ${describeCause(cause)}`)))
  )
