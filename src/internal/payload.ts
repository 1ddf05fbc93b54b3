import { Either, ParseResult, Schema } from "effect"
import * as Job from "../Job.js"
import { InvalidPayload } from "../SchedulerError.js"

/** The largest payload (or result) accepted, in bytes of its JSON text. */
export const MAX_PAYLOAD_BYTES = 1_048_576

const at = (path: string) => (path === "" ? "the value" : `at ${path}:`)

const problemOf = (value: unknown, path: string, ancestors: Set<object>): string | undefined => {
  switch (typeof value) {
    case "string":
    case "boolean":
      return undefined
    case "number":
      return Number.isFinite(value) ? undefined : `${at(path)} ${value} is not a finite number`
    case "undefined":
      return `${at(path)} undefined is not JSON data`
    case "bigint":
    case "function":
    case "symbol":
      return `${at(path)} a ${typeof value} is not JSON data`
  }
  if (value === null || typeof value !== "object") return undefined
  if (ancestors.has(value)) return `${at(path)} the value contains itself`
  ancestors.add(value)
  try {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const problem = problemOf(value[i], `${path}[${i}]`, ancestors)
        if (problem !== undefined) return problem
      }
      return undefined
    }
    const proto = Object.getPrototypeOf(value)
    if (proto !== Object.prototype && proto !== null) {
      return `${at(path)} a ${proto?.constructor?.name ?? "non-plain object"} is not plain JSON data`
    }
    for (const [key, field] of Object.entries(value)) {
      if (field === undefined) continue
      const problem = problemOf(field, `${path}.${key}`, ancestors)
      if (problem !== undefined) return problem
    }
    return undefined
  } finally {
    ancestors.delete(value)
  }
}

/** The byte length of a string's UTF-8 encoding. */
export const utf8Length = (text: string): number => {
  let bytes = 0
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x80) bytes += 1
    else if (code < 0x800) bytes += 2
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      bytes += 4
      i++
    } else bytes += 3
  }
  return bytes
}

interface JsonProblem {
  readonly problem: "serialization" | "size"
  readonly reason: string
}

const toJson = (value: unknown): Either.Either<string, JsonProblem> => {
  const problem = problemOf(value, "", new Set())
  if (problem !== undefined) return Either.left({ problem: "serialization", reason: problem })
  const text = JSON.stringify(value)
  const bytes = utf8Length(text)
  return bytes > MAX_PAYLOAD_BYTES
    ? Either.left({ problem: "size", reason: `${bytes} bytes of JSON is over the limit of ${MAX_PAYLOAD_BYTES}` })
    : Either.right(text)
}

/** A handler's encoded result as JSON text, `null` when there is none. */
export const encodeJson = (value: unknown): Either.Either<string | null, Error> =>
  value === undefined
    ? Either.right(null)
    : Either.mapLeft(toJson(value), ({ reason }) => new Error(`the result is not storable: ${reason}`))

/** Validates a payload against its reference and returns its JSON text. */
export const encodePayload = (ref: Job.Ref, payload: unknown): Either.Either<string, InvalidPayload> => {
  const functionPath = Job.pathOf(ref)
  const encoded = Job.isJob(ref)
    ? Either.mapLeft(
      Schema.encodeUnknownEither(ref.payloadSchema)(payload),
      (error) =>
        new InvalidPayload({ functionPath, problem: "schema", reason: ParseResult.TreeFormatter.formatErrorSync(error) })
    )
    : Either.right(payload)
  return Either.flatMap(encoded, (value) =>
    Either.mapLeft(toJson(value), ({ problem, reason }) => new InvalidPayload({ functionPath, problem, reason })))
}
