import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Job from "./job.js"
import { InvalidPayload } from "../../SchedulerError.js"

/** The largest payload (or result) accepted, in bytes of its JSON text. */
export const MAX_PAYLOAD_BYTES = 1_048_576

/** How deeply a payload (or result) may nest: arrays and objects inside each other, the outermost counting as 1. */
export const MAX_PAYLOAD_DEPTH = 64

const at = (path: string) => (path === "" ? "the value" : `at ${path}:`)

interface JsonProblem {
  readonly problem: "serialization" | "size"
  readonly reason: string
}

const notJson = (reason: string): JsonProblem => ({ problem: "serialization", reason })

/** What the walk knows of a value: how deeply it nests, and at least how many bytes its JSON takes. */
interface Shape {
  readonly height: number
  readonly bytes: number
}

const tooLarge = (): JsonProblem => ({ problem: "size", reason: `its JSON is over the limit of ${MAX_PAYLOAD_BYTES} bytes` })

/** The path of the field being walked, written out only when a problem is found there. */
const pathOf = (keys: ReadonlyArray<string | number>): string =>
  keys.map((key) => (typeof key === "number" ? `[${key}]` : `.${key}`)).join("")

/**
 * The shape of `value` (plain values nest 0 deep, `[]` 1), or why it is
 * refused: deeper than the limit, larger than the size limit once every
 * shared object is written out, or (when `json`) not plain JSON data.
 * Objects met again through another path are not walked twice: `shapes`
 * remembers them, so a value that shares objects costs as many steps as it
 * has objects, while its size counts every copy `JSON.stringify` would write.
 * Without `json`, any object's own fields are walked, and only the depth is
 * checked: a payload before its Schema encodes it, so that neither the
 * Schema nor `JSON.stringify`, which recurse, can overflow the stack.
 * `keys` is the path to `value` (a stack, written out only in a problem).
 */
const shapeOf = (
  value: unknown,
  keys: Array<string | number>,
  json: boolean,
  ancestors: Set<object>,
  shapes: WeakMap<object, Shape>
): Shape | JsonProblem => {
  if (typeof value !== "object" || value === null) {
    if (typeof value === "string") return { height: 0, bytes: value.length + 2 }
    if (!json) return { height: 0, bytes: 1 }
    switch (typeof value) {
      case "number":
        return Number.isFinite(value) ? { height: 0, bytes: 1 } : notJson(`${at(pathOf(keys))} ${value} is not a finite number`)
      case "undefined":
        return notJson(`${at(pathOf(keys))} undefined is not JSON data`)
      case "bigint":
      case "function":
      case "symbol":
        return notJson(`${at(pathOf(keys))} a ${typeof value} is not JSON data`)
      default:
        return { height: 0, bytes: 4 }
    }
  }
  const depth = keys.length
  if (ancestors.has(value)) return notJson(`${at(pathOf(keys))} the value contains itself`)
  const known = shapes.get(value)
  if (known === undefined && depth >= MAX_PAYLOAD_DEPTH || known !== undefined && depth + known.height > MAX_PAYLOAD_DEPTH) {
    return { problem: "size", reason: `${at(pathOf(keys))} nested more than ${MAX_PAYLOAD_DEPTH} levels deep (the limit)` }
  }
  if (known !== undefined) return known
  let height = 0
  // the opening bracket, then per field its JSON and a comma (the last one is the closing bracket): never more than
  // `JSON.stringify` writes
  let bytes = 1
  /** Walks one field (`key` its name or index, `keyLength` what it adds to the JSON with a comma): a problem, or none. */
  const field = (key: string | number, keyLength: number, item: unknown): JsonProblem | undefined => {
    keys.push(key)
    const found = shapeOf(item, keys, json, ancestors, shapes)
    keys.pop()
    if (!("height" in found)) return found
    if (found.height > height) height = found.height
    bytes += found.bytes + keyLength
    return json && bytes > MAX_PAYLOAD_BYTES ? tooLarge() : undefined
  }
  ancestors.add(value)
  try {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const problem = field(i, 1, value[i])
        if (problem !== undefined) return problem
      }
    } else {
      const proto = Object.getPrototypeOf(value)
      if (json && proto !== Object.prototype && proto !== null) {
        return notJson(`${at(pathOf(keys))} a ${proto?.constructor?.name ?? "non-plain object"} is not plain JSON data`)
      }
      for (const key of Object.keys(value)) {
        const item = (value as Record<string, unknown>)[key]
        if (item === undefined) continue
        const problem = field(key, key.length + 4, item)
        if (problem !== undefined) return problem
      }
    }
  } finally {
    ancestors.delete(value)
  }
  const shape = { height: height + 1, bytes: Math.max(2, bytes) }
  shapes.set(value, shape)
  return shape
}

const problemOf = (value: unknown, json: boolean): JsonProblem | undefined => {
  const found = shapeOf(value, [], json, new Set(), new WeakMap())
  return "height" in found ? undefined : found
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

const toJson = (value: unknown): Either.Either<string, JsonProblem> => {
  const problem = problemOf(value, true)
  if (problem !== undefined) return Either.left(problem)
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
  const deep = Job.isJob(ref) ? problemOf(payload, false) : undefined
  if (deep !== undefined) return Either.left(new InvalidPayload({ functionPath, ...deep }))
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

/**
 * Why `text` is not stored JSON the engine can keep (JSON text of at most
 * `MAX_PAYLOAD_BYTES`, nested at most `MAX_PAYLOAD_DEPTH` deep), if it is not.
 * For text that arrives already encoded, at the `SchedulerDO`'s boundary.
 */
export const jsonTextProblem = (text: string): JsonProblem | undefined => {
  if (text.length > MAX_PAYLOAD_BYTES || utf8Length(text) > MAX_PAYLOAD_BYTES) {
    return { problem: "size", reason: `over the limit of ${MAX_PAYLOAD_BYTES} bytes of JSON` }
  }
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (inString) {
      if (code === 92) i++ // a backslash escapes the next character
      else if (code === 34) inString = false
    } else if (code === 34) inString = true
    else if (code === 91 || code === 123) {
      if (++depth > MAX_PAYLOAD_DEPTH) {
        return { problem: "size", reason: `nested more than ${MAX_PAYLOAD_DEPTH} levels deep (the limit)` }
      }
    } else if (code === 93 || code === 125) depth--
  }
  try {
    JSON.parse(text)
    return undefined
  } catch (error) {
    return notJson(`not JSON text: ${error instanceof Error ? error.message : String(error)}`)
  }
}
