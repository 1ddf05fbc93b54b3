import { Cause, Option, type ParseResult, Predicate } from "effect"
import { TreeFormatter } from "effect/ParseResult"
import { InvalidOptions } from "../SchedulerError.js"

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

/** Options that failed their Schema, as the typed refusal. */
export const invalidOptions = (error: ParseResult.ParseError): InvalidOptions =>
  new InvalidOptions({ reason: TreeFormatter.formatErrorSync(error) })
