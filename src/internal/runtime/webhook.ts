/**
 * Delivering a webhook job: one request to its URL with its method, its
 * headers and the payload as the JSON body, signed with the webhook secret
 * (HMAC-SHA256, as dispatches are, over `<t>.<job id>.<attempt>.<body>`),
 * and its outcome by status: 2xx success, 408 and 429 and 5xx retried, any
 * other status (a redirect, which is never followed, or a 4xx) failed
 * without a retry; a timeout or a network error is retried. At most
 * `MAX_WEBHOOK_RESPONSE_BYTES` of the answer are read and kept as the
 * job's result (`{ status, body, truncated }`). Never rejects.
 */
import * as Redacted from "effect/Redacted"
import { messageOf } from "../domain/failure.js"
import { MAX_WEBHOOK_RESPONSE_BYTES, type WebhookPolicy, type WebhookTarget, webhookUrlProblem } from "../domain/targets.js"
import type { Outcome } from "./dispatcher.js"
import { macHex, SIGNATURE_FUTURE_MS, SIGNATURE_HEADER, SIGNATURE_TOLERANCE_MS, verifyHex } from "./wire.js"

/** The header naming the job a delivery is of: the same on each attempt, for the receiver's dedupe. */
export const JOB_HEADER = "x-lunora-job-id"
/** The header carrying the attempt (1, 2, …) a delivery is. */
export const ATTEMPT_HEADER = "x-lunora-attempt"

/** What a delivery's signature covers. */
export const signedMessage = (timestamp: number, jobId: string, attempt: number, body: string) =>
  `${timestamp}.${jobId}.${attempt}.${body}`

const SIGNATURE = /^t=(\d{1,15}),v1=([0-9a-f]{64})$/

/**
 * Whether a delivery's headers sign `body` with `secret`, at a time within
 * the tolerance of `now` (5 minutes before, 30 seconds after); its job id
 * and attempt when they do.
 */
export const verifiedDelivery = async (
  secret: Redacted.Redacted<string>,
  headers: { readonly get: (name: string) => string | null },
  body: string,
  now: number
): Promise<{ readonly jobId: string; readonly attempt: number; readonly timestamp: number } | string> => {
  const signature = SIGNATURE.exec(headers.get(SIGNATURE_HEADER) ?? "")
  const jobId = headers.get(JOB_HEADER)
  const attempt = Number(headers.get(ATTEMPT_HEADER))
  if (signature === null) return `no well-formed ${SIGNATURE_HEADER} header`
  if (jobId === null || !Number.isInteger(attempt) || attempt < 1) return `no ${JOB_HEADER} or ${ATTEMPT_HEADER} header`
  const timestamp = Number(signature[1])
  if (now - timestamp > SIGNATURE_TOLERANCE_MS || timestamp - now > SIGNATURE_FUTURE_MS) {
    return "the signature's time is outside the tolerance (a replay, or a clock far off)"
  }
  const valid = await verifyHex(secret, signature[2]!, signedMessage(timestamp, jobId, attempt, body))
  return valid ? { jobId, attempt, timestamp } : "the signature does not match (another secret, or a changed body)"
}

/** Reads at most `limit` bytes of a body as text; whether there was more. */
const readCapped = async (body: ReadableStream<Uint8Array> | null, limit: number) => {
  if (body === null) return { text: "", truncated: false }
  const reader = body.getReader()
  reader.closed.catch(() => undefined)
  const decoder = new TextDecoder()
  const chunks: Array<string> = []
  let bytes = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return { text: chunks.join("") + decoder.decode(), truncated: false }
    if (bytes + value.byteLength > limit) {
      chunks.push(decoder.decode(value.subarray(0, limit - bytes)))
      reader.cancel().catch(() => undefined)
      return { text: chunks.join(""), truncated: true }
    }
    bytes += value.byteLength
    chunks.push(decoder.decode(value, { stream: true }))
  }
}

const failed = (retryable: boolean, error: string): Outcome => ({ ok: false, retryable, error })

/** Whether a receiver's status is retried: 408, 429 and 5xx. */
export const isRetriedStatus = (status: number) => status === 408 || status === 429 || status >= 500

/** One job to deliver: its id, attempt and payload JSON text. */
export interface Delivery {
  readonly id: string
  readonly attempt: number
  readonly args: string
}

/**
 * Delivers one attempt of a webhook job to `target`, checked against
 * `policy` first (a URL it refuses fails without a retry), within
 * `timeoutMs`. Never rejects.
 */
export const deliverWebhook = async (
  secret: Redacted.Redacted<string> | undefined,
  policy: WebhookPolicy,
  target: WebhookTarget,
  delivery: Delivery,
  now: number,
  timeoutMs: number,
  fetch: typeof globalThis.fetch = globalThis.fetch
): Promise<Outcome> => {
  const problem = webhookUrlProblem(target.url, policy)
  if (problem !== undefined) return failed(false, `the webhook was not sent: ${problem}`)
  if (secret === undefined) return failed(false, "the webhook was not sent: LUNORA_SCHEDULER_WEBHOOK_SECRET is not set")
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(), Math.max(0, timeoutMs))
  try {
    const mac = await macHex(secret, signedMessage(now, delivery.id, delivery.attempt, delivery.args))
    const response = await fetch(target.url, {
      method: target.method,
      headers: {
        ...target.headers,
        "content-type": "application/json",
        [SIGNATURE_HEADER]: `t=${now},v1=${mac}`,
        [JOB_HEADER]: delivery.id,
        [ATTEMPT_HEADER]: String(delivery.attempt)
      },
      body: delivery.args,
      redirect: "manual",
      signal: controller.signal
    })
    const { status } = response
    if (status >= 300 && status < 400) {
      response.body?.cancel().catch(() => undefined)
      const location = response.headers.get("location")
      return failed(false, `HTTP ${status}: a redirect${location === null ? "" : ` to ${location}`}, not followed`)
    }
    const { text, truncated } = await readCapped(response.body, MAX_WEBHOOK_RESPONSE_BYTES)
    if (status >= 200 && status < 300) return { ok: true, result: JSON.stringify({ status, body: text, truncated }) }
    return failed(isRetriedStatus(status), `HTTP ${status}: ${text.slice(0, 1_024)}`)
  } catch (error) {
    return failed(
      true,
      controller.signal.aborted ? `no response within ${timeoutMs} ms` : `the webhook could not be sent: ${messageOf(error)}`
    )
  } finally {
    clearTimeout(timer)
  }
}

/** The secret as the sender takes it. */
export const secretOf = (value: string | undefined): Redacted.Redacted<string> | undefined =>
  value === undefined || value === "" ? undefined : Redacted.make(value)
