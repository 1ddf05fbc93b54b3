import * as Cause from "effect/Cause"
import * as Option from "effect/Option"
import type * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import { TreeFormatter } from "effect/ParseResult"
import { InvalidOptions, InvalidPayload, InvalidTime } from "../../SchedulerError.js"

const MAX_ERROR_LENGTH = 4_096

const describeError = (error: unknown): string => {
  if (Predicate.isString(error)) return error
  if (Predicate.hasProperty(error, "message") && Predicate.isString(error.message)) {
    const name = Predicate.hasProperty(error, "_tag") && Predicate.isString(error._tag)
      ? error._tag
      : error instanceof Error
      ? error.name
      : undefined
    return name === undefined || error.message.startsWith(name) ? error.message : `${name}: ${error.message}`
  }
  if (Predicate.hasProperty(error, "_tag") && Predicate.isString(error._tag)) return error._tag
  try {
    return JSON.stringify(error) ?? String(error)
  } catch {
    return String(error)
  }
}

/** The message of a thrown value (a host call's rejection), or the value as text. */
export const messageOf = (cause: unknown): string =>
  Predicate.hasProperty(cause, "message") && Predicate.isString(cause.message) ? cause.message : String(cause)

/** A one-line account of why an attempt failed, bounded in length for storage. */
export const describeCause = (cause: Cause.Cause<unknown>): string => {
  const text = Option.match(Cause.failureOption(cause), {
    onSome: describeError,
    onNone: () =>
      Option.match(Cause.dieOption(cause), {
        onSome: (defect) => `defect: ${describeError(defect)}`,
        onNone: () => (Cause.isInterruptedOnly(cause) ? "interrupted" : Cause.pretty(cause))
      })
  })
  return text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH - 1)}…` : text
}

/** `describeCause` of a failure given as a `Cause` or as the error itself (a pull worker's `fail`). */
export const describeFailure = (failure: unknown): string =>
  describeCause(Cause.isCause(failure) ? failure : Cause.fail(failure))

/** Options that failed their Schema, as the typed refusal. */
export const invalidOptions = (error: ParseResult.ParseError): InvalidOptions =>
  new InvalidOptions({ reason: TreeFormatter.formatErrorSync(error) })

/** Why the `SchedulerDO` refused a call: nothing was read or written. */
export type Refusal = InvalidTime | InvalidPayload | InvalidOptions

const TAGS = ["InvalidTime", "InvalidPayload", "InvalidOptions"] as const

/** Whether `error` is one of the refusals. */
export const isRefusal = (error: unknown): error is Refusal =>
  error instanceof InvalidTime || error instanceof InvalidPayload || error instanceof InvalidOptions

/**
 * A refusal as a thrown `Error` can carry it over RPC (which keeps only the
 * message): `"<tag>: <message>"`.
 */
export const toRpcError = (refusal: Refusal): Error => new Error(`${refusal._tag}: ${refusal.message}`)

/** The refusal an RPC error message carries, if it carries one. */
export const fromRpcMessage = (message: string): Refusal | undefined => {
  const tag = TAGS.find((name) => message.startsWith(`${name}: `))
  if (tag === undefined) return undefined
  const reason = `the SchedulerDO refused the call: ${message.slice(tag.length + 2)}`
  switch (tag) {
    case "InvalidTime":
      return new InvalidTime({ input: "(at the SchedulerDO)", reason })
    case "InvalidPayload":
      return new InvalidPayload({ functionPath: "(at the SchedulerDO)", problem: "serialization", reason })
    case "InvalidOptions":
      return new InvalidOptions({ reason })
  }
}
