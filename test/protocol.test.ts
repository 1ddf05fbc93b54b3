import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc, ParseResult, Schema } from "effect"
import { MAX_ATTEMPTS } from "../src/Retry.js"
import { FUNCTION_PATH_PATTERN, JOB_ID_PATTERN } from "../src/internal/domain/job.js"
import { POOL_NAME_PATTERN } from "../src/internal/domain/names.js"
import { MAX_PAYLOAD_DEPTH } from "../src/internal/domain/payload.js"
import { MAX_DELAY_MS } from "../src/internal/domain/time.js"
import * as Protocol from "../src/internal/runtime/protocol.js"
import * as Wire from "../src/internal/runtime/wire.js"

/**
 * `Protocol.decode` takes the jobs of `schedule` and `enqueue` by plain
 * checks when they are valid as they are, and leaves the rest to the
 * Schema: whatever it is given, it must answer as the Schema alone does.
 */
const bySchema: Record<"schedule" | "enqueue" | "confirmDispatch" | "confirmDispatches", (args: unknown) => Either.Either<unknown, unknown>> = {
  schedule: Schema.decodeUnknownEither(Protocol.Operations.schedule),
  enqueue: Schema.decodeUnknownEither(Protocol.Operations.enqueue),
  confirmDispatch: Schema.decodeUnknownEither(Protocol.Operations.confirmDispatch),
  confirmDispatches: Schema.decodeUnknownEither(Protocol.Operations.confirmDispatches)
}

const text = (maxLength: number) => fc.string({ minLength: 1, maxLength })
const nullOr = <A>(arb: fc.Arbitrary<A>) => fc.option(arb, { nil: null })

const validJob = fc.record(
  {
    id: fc.stringMatching(JOB_ID_PATTERN),
    functionPath: fc.stringMatching(FUNCTION_PATH_PATTERN),
    args: fc.json(),
    runAt: fc.oneof(fc.integer(), fc.constantFrom(8_640_000_000_000_000, -8_640_000_000_000_000, Date.now())),
    retryDelaysMs: fc.array(fc.integer({ min: 0, max: MAX_DELAY_MS }), { maxLength: MAX_ATTEMPTS - 1 }),
    deadLetter: fc.boolean(),
    key: nullOr(text(256)),
    shardKey: nullOr(text(256)),
    pool: nullOr(fc.stringMatching(POOL_NAME_PATTERN)),
    parentId: nullOr(fc.string({ maxLength: 128 }))
  },
  { requiredKeys: ["id", "functionPath", "args", "runAt", "retryDelaysMs", "deadLetter", "key", "shardKey", "pool"] }
)

/** Values that break one rule or sit at its edge. */
const edgeValue = fc.oneof(
  { arbitrary: fc.anything(), weight: 1 },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
    "",
    "x".repeat(257),
    "x".repeat(129),
    "job_0_short",
    "job_0_0000000000000000000000000000000000000000000",
    "no-colon",
    "{nope",
    "[".repeat(MAX_PAYLOAD_DEPTH + 1) + "]".repeat(MAX_PAYLOAD_DEPTH + 1),
    "[".repeat(MAX_PAYLOAD_DEPTH) + "]".repeat(MAX_PAYLOAD_DEPTH),
    1.5,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    -1,
    8_640_000_000_000_001,
    MAX_DELAY_MS + 1,
    Array.from({ length: MAX_ATTEMPTS }, () => 1),
    [1.5],
    [-1],
    null,
    undefined,
    { webhook: { url: "https://example.com/", method: "POST", headers: {} } },
    { workflow: { binding: "REPORTS" } },
    "-pool",
    "p".repeat(65)
  )
  }
)

const KEYS = ["id", "functionPath", "args", "runAt", "retryDelaysMs", "deadLetter", "key", "shardKey", "pool", "parentId", "own", "extra"]

/** A valid job with one property changed to an edge value, or taken away. */
const brokenJob = fc.tuple(validJob, fc.constantFrom(...KEYS), edgeValue, fc.boolean()).map(([job, key, value, remove]) => {
  const broken: Record<string, unknown> = { ...job }
  if (remove) delete broken[key]
  else broken[key] = value
  return broken
})

const target = fc.oneof(
  { arbitrary: fc.constantFrom({ binding: "SELF" }, { originUrl: "https://app.example.com/base" }), weight: 6 },
  { arbitrary: fc.constantFrom({ binding: "1bad" }, { originUrl: "ftp://x" }, { binding: "A", extra: 1 }, {}, null, "SELF"), weight: 1 }
)

/** Valid jobs, with at most one broken job among them. */
const jobs = fc.tuple(fc.array(validJob, { maxLength: 3 }), fc.option(brokenJob, { nil: undefined }), fc.nat()).map(
  ([valid, broken, at]) => broken === undefined ? valid : [...valid.slice(0, at % (valid.length + 1)), broken, ...valid.slice(at % (valid.length + 1))]
)

/** What `decode` answers, against the Schema's own answer. */
const agrees = (operation: keyof typeof bySchema, args: ReadonlyArray<unknown>) => {
  const decoded = Protocol.decode(operation, args)
  const expected = bySchema[operation](args)
  expect(Either.isRight(decoded)).toBe(Either.isRight(expected))
  if (Either.isRight(decoded) && Either.isRight(expected)) expect(decoded.right).toEqual(expected.right)
}

const lease = fc.oneof({ arbitrary: fc.string({ maxLength: 128 }), weight: 4 }, { arbitrary: edgeValue, weight: 1 })
const attempt = fc.oneof({ arbitrary: fc.integer(), weight: 4 }, { arbitrary: edgeValue, weight: 1 })
const attemptPair = fc.oneof(
  { arbitrary: fc.tuple(lease, attempt), weight: 6 },
  { arbitrary: fc.oneof(fc.tuple(lease), fc.tuple(lease, attempt, attempt), edgeValue), weight: 1 }
)

describe("Protocol.decode of jobs to store", () => {
  it("answers every schedule call as the Schema does, and takes valid jobs without it", () => {
    let plain = 0
    fc.assert(
      fc.property(target, jobs, (to, list) => {
        const args = [to, list]
        const decoded = Protocol.decode("schedule", args)
        const expected = bySchema.schedule(args)
        expect(Either.isRight(decoded)).toBe(Either.isRight(expected))
        if (Either.isRight(decoded) && Either.isRight(expected)) {
          expect(decoded.right).toEqual(expected.right)
          // the plain path hands the jobs on as they came: the Schema makes new ones
          if (list.length > 0 && decoded.right[1][0] === list[0]) plain++
        }
      }),
      { numRuns: 3000 }
    )
    expect(plain).toBeGreaterThan(100)
  })

  it("answers every enqueue call as the Schema does", () => {
    fc.assert(
      fc.property(target, fc.oneof(fc.stringMatching(POOL_NAME_PATTERN), edgeValue), jobs, (to, pool, list) => {
        const args = [to, pool, list]
        const decoded = Protocol.decode("enqueue", args)
        const expected = bySchema.enqueue(args)
        expect(Either.isRight(decoded)).toBe(Either.isRight(expected))
        if (Either.isRight(decoded) && Either.isRight(expected)) expect(decoded.right).toEqual(expected.right)
      }),
      { numRuns: 2000 }
    )
  })

  it("answers every confirmation as the Schema does", () => {
    fc.assert(
      fc.property(lease, lease, attempt, fc.option(edgeValue, { nil: undefined }), (lease, id, n, extra) =>
        agrees("confirmDispatch", extra === undefined ? [lease, id, n] : [lease, id, n, extra])),
      { numRuns: 2000 }
    )
    fc.assert(
      fc.property(lease, fc.array(attemptPair, { maxLength: 101 }), (lease, attempts) =>
        agrees("confirmDispatches", [lease, attempts])),
      { numRuns: 2000 }
    )
  })

  it("refuses a bad job among good ones with the Schema's typed refusal", () => {
    const good = {
      id: "job_0_0000000000000000000000000",
      functionPath: "a:b",
      args: "{}",
      runAt: 1,
      retryDelaysMs: [],
      deadLetter: true,
      key: null,
      shardKey: null,
      pool: null
    }
    const refused = Protocol.decode("schedule", [{ binding: "SELF" }, [good, { ...good, runAt: 1.5 }]])
    expect(Either.isLeft(refused) && refused.left._tag).toBe("InvalidTime")
    const accepted = Protocol.decode("schedule", [{ binding: "SELF" }, [good, good]])
    expect(Either.isRight(accepted)).toBe(true)
  })
})

/**
 * The endpoint decodes each dispatch body, and the sender each answer, by
 * plain checks when the Schema would take it as it is: whatever the text,
 * the answer must be the Schema's.
 */
describe("decoding dispatch bodies and answers", () => {
  const schemaOf = <A, I>(schema: Schema.Schema<A, I>) => {
    const decode = Schema.decodeEither(Schema.parseJson(schema))
    return (text: string) => shown(decode(text))
  }
  /** A refusal by its message (each ParseError is an Error of its own, with its own stack). */
  const shown = <A>(decoded: Either.Either<A, ParseResult.ParseError>) =>
    Either.mapLeft(decoded, ParseResult.TreeFormatter.formatErrorSync)
  const jsonEdge = fc.oneof(edgeValue, fc.constantFrom(0, 1, 2, -0, 2 ** 53, 1e300, "", "x", true, [], {}))
  const job = fc.record({
    id: fc.string({ maxLength: 40 }),
    functionPath: fc.string({ maxLength: 40 }),
    args: fc.jsonValue({ maxDepth: 2 }),
    shardKey: nullOr(fc.string({ maxLength: 8 })),
    key: nullOr(fc.string({ maxLength: 8 })),
    pool: nullOr(fc.string({ maxLength: 8 })),
    scheduledFor: fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })),
    attempt: fc.integer({ min: 1, max: 2 ** 31 })
  })
  const JOB_KEYS = ["id", "functionPath", "args", "shardKey", "key", "pool", "scheduledFor", "attempt", "extra"]
  /** A job as is, or with one property an edge value, or taken away. */
  const someJob = fc.oneof(
    { arbitrary: job, weight: 2 },
    {
      arbitrary: fc.tuple(job, fc.constantFrom(...JOB_KEYS), jsonEdge, fc.boolean()).map(([valid, key, value, remove]) => {
        const changed: Record<string, unknown> = { ...valid }
        if (remove) delete changed[key]
        else changed[key] = value
        return changed
      }),
      weight: 3
    }
  )
  /** Present as a text or null, left out, or an edge value. */
  const optionalText = fc.oneof(nullOr(fc.string({ maxLength: 8 })), fc.constant(undefined), jsonEdge)
  const notAnObject = fc.oneof(fc.constantFrom("", "nope", "[]", "null", "1", "\"x\"", "{"), fc.json())

  it("decodes every single dispatch body as the Schema does", () => {
    const bySchema = schemaOf(Wire.DispatchBody)
    fc.assert(
      fc.property(someJob, optionalText, optionalText, (fields, lease, scheduler) => {
        const text = JSON.stringify({ ...fields, lease, scheduler })
        expect(shown(Wire.decodeDispatchBody(text))).toStrictEqual(bySchema(text))
      }),
      { numRuns: 3000 }
    )
    fc.assert(fc.property(notAnObject, (text) => {
      expect(shown(Wire.decodeDispatchBody(text))).toStrictEqual(bySchema(text))
    }))
  })

  it("decodes every batch body as the Schema does", () => {
    const bySchema = schemaOf(Wire.DispatchBatch)
    const body = fc.record({
      v: fc.oneof({ arbitrary: fc.constant(Wire.BATCH_VERSION), weight: 5 }, { arbitrary: jsonEdge, weight: 1 }),
      lease: fc.oneof({ arbitrary: fc.string({ maxLength: 8 }), weight: 5 }, { arbitrary: jsonEdge, weight: 1 }),
      scheduler: optionalText,
      jobs: fc.oneof(
        { arbitrary: fc.array(job, { maxLength: 4 }), weight: 3 },
        { arbitrary: fc.array(someJob, { maxLength: 4 }), weight: 3 },
        { arbitrary: fc.array(job, { minLength: Wire.MAX_BATCH_JOBS, maxLength: Wire.MAX_BATCH_JOBS + 1 }), weight: 1 },
        { arbitrary: jsonEdge, weight: 1 }
      )
    }, { requiredKeys: [] })
    fc.assert(
      fc.property(body, (fields) => {
        const text = JSON.stringify(fields)
        expect(shown(Wire.decodeDispatchBatch(text))).toStrictEqual(bySchema(text))
      }),
      { numRuns: 3000 }
    )
    fc.assert(fc.property(notAnObject, (text) => {
      expect(shown(Wire.decodeDispatchBatch(text))).toStrictEqual(bySchema(text))
    }))
  })

  it("decodes every answer as the Schema does", () => {
    const bySchema = schemaOf(Wire.DispatchReply)
    const reply = fc.record({ result: optionalText, error: optionalText, extra: optionalText }, { requiredKeys: [] })
    fc.assert(
      fc.property(reply, (fields) => {
        const text = JSON.stringify(fields)
        expect(shown(Wire.decodeDispatchReply(text))).toStrictEqual(bySchema(text))
      }),
      { numRuns: 3000 }
    )
    fc.assert(fc.property(notAnObject, (text) => {
      expect(shown(Wire.decodeDispatchReply(text))).toStrictEqual(bySchema(text))
    }))
  })
})
