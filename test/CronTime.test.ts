import { describe, expect, it } from "@effect/vitest"
import { CronExpressionParser } from "cron-parser"
import { FastCheck as fc } from "effect"
import * as CronParse from "../src/internal/domain/cronParse.js"
import * as Evaluate from "../src/internal/domain/cronTime.js"
import { changesOf as changesBetween, wallMillis } from "./support/timeZones.js"

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

/** The evaluator over expressions: each parsed, then compiled, as a declared cron's fields are. */
const CronTime = {
  compile: (expression: string) => Evaluate.compile(CronParse.parse(expression)),
  firesAtAll: Evaluate.firesAtAll,
  nextAfter: (expression: string, timeZone: string, after: number) =>
    Evaluate.nextAfter(CronTime.compile(expression), timeZone, after),
  latestAtOrBefore: (expression: string, timeZone: string, from: number, at: number) =>
    Evaluate.latestAtOrBefore(CronTime.compile(expression), timeZone, from, at)
}

const ms = (iso: string): number => Date.parse(iso)
const iso = (epochMs: number): string => new Date(epochMs).toISOString()

const firesAfter = (expression: string, timeZone: string, afterIso: string, count: number): ReadonlyArray<string> => {
  const fires: Array<string> = []
  let after = ms(afterIso)
  for (let i = 0; i < count; i++) {
    after = CronTime.nextAfter(expression, timeZone, after)
    fires.push(iso(after))
  }
  return fires
}

// ---------------------------------------------------------------------------
// An independent reference: wall-clock minutes read from Intl, a small field
// matcher, and the rules applied minute by minute.
// ---------------------------------------------------------------------------

/** The wall-clock time of an instant, in minutes since 1970-01-01 00:00 as if the wall clock were UTC. */
const wallMinute = (timeZone: string, at: number): number => Math.floor(wallMillis(timeZone, at) / MINUTE)

/** The offset changes of a zone in 2026 and 2027. */
const changesOf = (timeZone: string) => changesBetween(timeZone, Date.UTC(2026, 0, 1), Date.UTC(2028, 0, 1))

/** The values a field of the test expressions allows: `*`, `*\/n`, `n`, `a-b` and lists of them. */
const allowed = (field: string, min: number, max: number): ReadonlyArray<boolean> => {
  const values: Array<boolean> = new Array<boolean>(max + 1).fill(false)
  for (const part of field.split(",")) {
    const [range, step = "1"] = part.split("/") as [string, string?]
    const [low, high] = range === "*"
      ? [min, max]
      : range.includes("-")
      ? (range.split("-").map(Number) as [number, number])
      : [Number(range), step === "1" ? Number(range) : max]
    for (let value = low; value <= high; value += Number(step)) values[value] = true
  }
  return values
}

/** A wall-clock minute (minutes since 1970-01-01 00:00 as if the wall clock were UTC) and its calendar fields. */
interface Wall {
  readonly wall: number
  readonly minute: number
  readonly hour: number
  readonly date: number
  readonly month: number
  readonly weekday: number
}

const wallOf = (wall: number): Wall => {
  const date = new Date(wall * MINUTE)
  return {
    wall,
    minute: date.getUTCMinutes(),
    hour: date.getUTCHours(),
    date: date.getUTCDate(),
    month: date.getUTCMonth() + 1,
    weekday: date.getUTCDay()
  }
}

interface Reference {
  readonly matches: (wall: Wall) => boolean
  readonly hourIsStar: boolean
}

/** The 5-field expression matched field by field; both day fields restricted: either matches. */
const referenceOf = (expression: string): Reference => {
  const [minute, hour, dayOfMonth, month, dayOfWeek] = expression.split(" ") as [string, string, string, string, string]
  const minutes = allowed(minute, 0, 59)
  const hours = allowed(hour, 0, 23)
  const dates = allowed(dayOfMonth, 1, 31)
  const months = allowed(month, 1, 12)
  const weekdays = allowed(dayOfWeek, 0, 7)
  const either = dayOfMonth !== "*" && dayOfWeek !== "*"
  return {
    hourIsStar: hour === "*",
    matches: (wall) => {
      const dateMatch = dates[wall.date] === true
      const weekdayMatch = weekdays[wall.weekday] === true || (wall.weekday === 0 && weekdays[7] === true)
      return minutes[wall.minute] === true && hours[wall.hour] === true && months[wall.month] === true &&
        (either ? dateMatch || weekdayMatch : dateMatch && weekdayMatch)
    }
  }
}

/** Each wall-clock minute shown in a span of UTC minutes, the instants showing it, and the offset before each skipped one. */
interface WallIndex {
  readonly walls: ReadonlyArray<Wall>
  readonly instants: Map<number, Array<number>>
  readonly offsetBeforeGap: Map<number, number>
}

const indexWalls = (timeZone: string, from: number, to: number): WallIndex => {
  const instants = new Map<number, Array<number>>()
  const offsetBeforeGap = new Map<number, number>()
  let previous: number | undefined
  let firstWall = Infinity
  let lastWall = -Infinity
  for (let minute = from / MINUTE; minute <= to / MINUTE; minute++) {
    const wall = wallMinute(timeZone, minute * MINUTE)
    const seen = instants.get(wall)
    if (seen === undefined) instants.set(wall, [minute])
    else seen.push(minute)
    if (previous !== undefined) {
      for (let skipped = previous + 1; skipped < wall; skipped++) offsetBeforeGap.set(skipped, previous - (minute - 1))
    }
    previous = wall
    firstWall = Math.min(firstWall, wall)
    lastWall = Math.max(lastWall, wall)
  }
  const walls: Array<Wall> = []
  for (let wall = firstWall; wall <= lastWall; wall++) walls.push(wallOf(wall))
  return { walls, instants, offsetBeforeGap }
}

/**
 * The fires in `[from, to]`: each matching wall-clock minute fires at its
 * one instant; skipped (no instant), at the offset before the gap; repeated
 * (two instants), at the first unless the hour field is `*`.
 */
const referenceFires = (reference: Reference, index: WallIndex, from: number, to: number): ReadonlyArray<number> => {
  const fires = new Set<number>()
  for (const wall of index.walls) {
    if (!reference.matches(wall)) continue
    const instants = index.instants.get(wall.wall) ?? []
    if (instants.length === 0) fires.add((wall.wall - index.offsetBeforeGap.get(wall.wall)!) * MINUTE)
    else if (reference.hourIsStar) for (const instant of instants) fires.add(instant * MINUTE)
    else fires.add(instants[0]! * MINUTE)
  }
  return [...fires].filter((fire) => fire >= from && fire <= to).sort((a, b) => a - b)
}

const ZONES = [
  "Australia/Lord_Howe",
  "America/Santiago",
  "Africa/Cairo",
  "America/Havana",
  "Asia/Beirut",
  "Pacific/Chatham",
  "Australia/Sydney",
  "Australia/Adelaide",
  "America/New_York",
  "Europe/London",
  "Pacific/Auckland"
] as const

const EXPRESSIONS = [
  "0 2 * * *",
  "30 2 * * *",
  "15 1 * * *",
  "0 23 * * *",
  "0 */2 * * *",
  "30 */2 * * *",
  "0 * * * *",
  "*/15 * * * *",
  "0 0 * * *",
  "30 0 * * *",
  "0 0 * * 0",
  "30 2 * * 6",
  "0 0 1 * *",
  "0 2 1 * *",
  "* 0 * * *"
] as const

/** The fires in `[from, to]` found by stepping `nextAfter`. */
const steppedFires = (expression: string, timeZone: string, from: number, to: number): ReadonlyArray<number> => {
  const fires: Array<number> = []
  let fire = CronTime.nextAfter(expression, timeZone, from - 1)
  while (fire <= to) {
    fires.push(fire)
    fire = CronTime.nextAfter(expression, timeZone, fire)
  }
  return fires
}

/** The largest of the sorted `fires` at or before `at`. */
const latestOf = (fires: ReadonlyArray<number>, at: number): number => {
  let latest = fires[0]!
  for (const fire of fires) if (fire <= at) latest = fire
  return latest
}

describe("cronTime against a minute-by-minute reference, around every 2026-2027 offset change", () => {
  for (const timeZone of ZONES) {
    it(timeZone, () => {
      const changes = changesOf(timeZone)
      expect(changes.map((change) => change.kind).sort()).toEqual(["gap", "gap", "overlap", "overlap"])
      for (const change of changes) {
        const from = change.at - 36 * HOUR
        const to = change.at + 36 * HOUR
        const index = indexWalls(timeZone, from - 2 * HOUR, to + 2 * HOUR)
        for (const expression of EXPRESSIONS) {
          const label = `${expression} ${timeZone} ${change.kind} ${iso(change.at)}`
          const expected = referenceFires(referenceOf(expression), index, from, to)
          expect([label, steppedFires(expression, timeZone, from, to).map(iso)]).toEqual([label, expected.map(iso)])
          if (expected.length === 0) continue
          const first = expected[0]!
          const instants = [...expected, ...expected.map((fire) => fire - 1)]
          for (let at = first; at <= to; at += 7 * MINUTE) instants.push(at)
          for (const at of instants) {
            if (at < first) continue
            const latest = CronTime.latestAtOrBefore(expression, timeZone, first, at)
            if (latest !== latestOf(expected, at)) {
              expect([label, "latest at", iso(at), iso(latest)]).toEqual([label, "latest at", iso(at), iso(latestOf(expected, at))])
            }
          }
        }
      }
    }, 30_000) // minute by minute over three days per change: about 1 s a zone, a few on a slow machine
  }
})

describe("cronTime: the reported daylight-saving cases", () => {
  // Lord Howe: +10:30 until 2026-10-04 02:00, then +11 (clocks 02:00 -> 02:30),
  // at 2026-10-03T15:30Z. 02:00 on the 4th does not exist: with the offset
  // before the gap (+10:30) it is 15:30Z, the first instant after the gap.
  it("`0 2 * * *`, Australia/Lord_Howe, 2026-10-03/04", () => {
    expect(firesAfter("0 2 * * *", "Australia/Lord_Howe", "2026-10-02T00:00:00Z", 3)).toEqual([
      "2026-10-02T15:30:00.000Z", // 02:00 +10:30 on the 3rd
      "2026-10-03T15:30:00.000Z", // 02:00 on the 4th, skipped: 02:30 +11
      "2026-10-04T15:00:00.000Z" // 02:00 +11 on the 5th
    ])
    expect(iso(CronTime.nextAfter("0 2 * * *", "Australia/Lord_Howe", ms("2026-10-03T15:30:00Z")))).toBe(
      "2026-10-04T15:00:00.000Z"
    )
  })

  // Santiago: -04 until Sunday 2026-09-06 00:00, then -03 (clocks 00:00 ->
  // 01:00), at 04:00Z. Midnight of the 6th does not exist: at -04 it is 04:00Z.
  it("`0 0 * * *`, America/Santiago, 2026-09-06", () => {
    expect(firesAfter("0 0 * * *", "America/Santiago", "2026-09-05T00:00:00Z", 3)).toEqual([
      "2026-09-05T04:00:00.000Z", // 00:00 -04
      "2026-09-06T04:00:00.000Z", // 00:00 skipped: 01:00 -03
      "2026-09-07T03:00:00.000Z" // 00:00 -03
    ])
  })

  // Cairo: +02 until Friday 2026-04-24 00:00, then +03 (clocks 00:00 -> 01:00),
  // at 2026-04-23T22:00Z. Midnight of the 24th: at +02 it is 22:00Z.
  it("`0 0 * * *`, Africa/Cairo, 2026-04-24", () => {
    expect(firesAfter("0 0 * * *", "Africa/Cairo", "2026-04-22T12:00:00Z", 3)).toEqual([
      "2026-04-22T22:00:00.000Z", // 00:00 +02 on the 23rd
      "2026-04-23T22:00:00.000Z", // 00:00 on the 24th, skipped: 01:00 +03
      "2026-04-24T21:00:00.000Z" // 00:00 +03 on the 25th
    ])
  })

  it("`0 */2 * * *` across the same three changes", () => {
    expect(firesAfter("0 */2 * * *", "Australia/Lord_Howe", "2026-10-03T13:00:00Z", 4)).toEqual([
      "2026-10-03T13:30:00.000Z", // 00:00 +10:30
      "2026-10-03T15:30:00.000Z", // 02:00 skipped: 02:30 +11
      "2026-10-03T17:00:00.000Z", // 04:00 +11
      "2026-10-03T19:00:00.000Z" // 06:00 +11
    ])
    expect(firesAfter("0 */2 * * *", "America/Santiago", "2026-09-06T01:00:00Z", 4)).toEqual([
      "2026-09-06T02:00:00.000Z", // 22:00 -04 on the 5th
      "2026-09-06T04:00:00.000Z", // 00:00 skipped: 01:00 -03
      "2026-09-06T05:00:00.000Z", // 02:00 -03
      "2026-09-06T07:00:00.000Z" // 04:00 -03
    ])
    expect(firesAfter("0 */2 * * *", "Africa/Cairo", "2026-04-23T19:00:00Z", 4)).toEqual([
      "2026-04-23T20:00:00.000Z", // 22:00 +02
      "2026-04-23T22:00:00.000Z", // 00:00 skipped: 01:00 +03
      "2026-04-23T23:00:00.000Z", // 02:00 +03
      "2026-04-24T01:00:00.000Z" // 04:00 +03
    ])
  })

  // The changes back: Lord Howe 2026-04-05 02:00 +11 -> 01:30 +10:30 (15:00Z),
  // Santiago 2026-04-05 00:00 -03 -> 23:00 -04 on the 4th (03:00Z), Cairo
  // 2026-10-30 00:00 +03 -> 23:00 +02 on the 29th (2026-10-29T21:00Z). A fixed
  // hour fires once, at its first occurrence.
  it("`0 */2 * * *` across the changes back", () => {
    expect(firesAfter("0 */2 * * *", "Australia/Lord_Howe", "2026-04-04T12:00:00Z", 3)).toEqual([
      "2026-04-04T13:00:00.000Z", // 00:00 +11
      "2026-04-04T15:30:00.000Z", // 02:00 +10:30 (01:30-01:59 repeat, 02:00 does not)
      "2026-04-04T17:30:00.000Z" // 04:00 +10:30
    ])
    expect(firesAfter("0 */2 * * *", "America/Santiago", "2026-04-05T00:00:00Z", 3)).toEqual([
      "2026-04-05T01:00:00.000Z", // 22:00 -03 on the 4th
      "2026-04-05T04:00:00.000Z", // 00:00 -04 (23:00-23:59 repeat and do not match)
      "2026-04-05T06:00:00.000Z" // 02:00 -04
    ])
    expect(firesAfter("0 */2 * * *", "Africa/Cairo", "2026-10-29T18:00:00Z", 3)).toEqual([
      "2026-10-29T19:00:00.000Z", // 22:00 +03
      "2026-10-29T22:00:00.000Z", // 00:00 +02 on the 30th
      "2026-10-30T00:00:00.000Z" // 02:00 +02
    ])
  })

  // Chatham: 02:45 +12:45 -> 03:45 +13:45 (2026-09-26T14:00Z, 2000-09-30T14:00Z,
  // 2007-09-29T14:00Z). 02:50 and 03:00 are skipped and fire with +12:45;
  // 03:45-03:59 +13:45 exist and fire as they are.
  it("Pacific/Chatham's 45-minute gap", () => {
    expect(iso(CronTime.nextAfter("50 2 * * *", "Pacific/Chatham", ms("2026-09-26T13:00:00Z")))).toBe(
      "2026-09-26T14:05:00.000Z" // 02:50 skipped: 03:50 +13:45
    )
    expect(iso(CronTime.nextAfter("0 */3 * * *", "Pacific/Chatham", ms("2000-09-30T13:59:59.999Z")))).toBe(
      "2000-09-30T14:15:00.000Z" // 03:00 skipped: 04:00 +13:45
    )
    expect(firesAfter("* 3 * * *", "Pacific/Chatham", "2007-09-29T13:59:59.999Z", 16).filter((_, i) => i % 5 === 0)).toEqual([
      "2007-09-29T14:00:00.000Z", // 03:45 +13:45
      "2007-09-29T14:05:00.000Z", // 03:50 +13:45
      "2007-09-29T14:10:00.000Z", // 03:55 +13:45
      "2007-09-29T14:15:00.000Z" // 03:00 skipped: 04:00 +13:45
    ])
  })

  // Santiago, 2026-09-06: each minute of 00:00-00:59 is skipped and fires
  // with the offset before (-04), at 04:00Z-04:59Z (01:00-01:59 -03).
  it("every minute of a skipped midnight hour fires, an hour later (`* 0 * * *`, Santiago)", () => {
    const fires = firesAfter("* 0 * * *", "America/Santiago", "2026-09-06T03:58:00Z", 61)
    expect([fires[0], fires[1], fires[59], fires[60]]).toEqual([
      "2026-09-06T04:00:00.000Z", // 00:00 skipped: 01:00 -03
      "2026-09-06T04:01:00.000Z", // 00:01 skipped: 01:01 -03
      "2026-09-06T04:59:00.000Z", // 00:59 skipped: 01:59 -03
      "2026-09-07T03:00:00.000Z" // 00:00 -03 the next day
    ])
  })
})

describe("cronTime in every IANA time zone", () => {
  it("nextAfter and latestAtOrBefore never throw around the 2026-2027 changes, and agree with each other", () => {
    const disagreements: Array<string> = []
    for (const timeZone of Intl.supportedValuesOf("timeZone")) {
      const changes = changesOf(timeZone).map((change) => change.at)
      for (const center of changes.length > 0 ? changes : [Date.UTC(2026, 6, 1)]) {
        for (const expression of ["0 2 * * *", "0 */2 * * *"]) {
          const fires = steppedFires(expression, timeZone, center - DAY, center + DAY)
          if (fires.length === 0) disagreements.push(`${expression} ${timeZone} ${iso(center)}: no fire`)
          for (let i = 1; i < fires.length; i++) {
            const latest = CronTime.latestAtOrBefore(expression, timeZone, fires[0]!, fires[i]!)
            const before = CronTime.latestAtOrBefore(expression, timeZone, fires[0]!, fires[i]! - 1)
            if (!(fires[i]! > fires[i - 1]!) || latest !== fires[i] || before !== fires[i - 1]) {
              disagreements.push(`${expression} ${timeZone} ${iso(fires[i]!)}: latest ${iso(latest)}, before ${iso(before)}`)
            }
          }
        }
      }
    }
    expect(disagreements).toEqual([])
  }, 20_000)
})

describe("cronTime: long spans", () => {
  it("latestAtOrBefore after a year of downtime, for an every-second cron, without stepping through the year", () => {
    const from = ms("2026-01-01T00:00:00Z")
    const at = ms("2027-01-01T12:34:56.789Z")
    const started = performance.now()
    expect(iso(CronTime.latestAtOrBefore("* * * * * *", "Europe/London", from, at))).toBe("2027-01-01T12:34:56.000Z")
    expect(iso(CronTime.latestAtOrBefore("* 0 * * *", "America/Santiago", from, at))).toBe("2027-01-01T03:59:00.000Z")
    expect(iso(CronTime.latestAtOrBefore("0 12 29 2 *", "UTC", ms("2096-02-29T12:00:00Z"), ms("2104-02-29T11:59:59Z"))))
      .toBe("2096-02-29T12:00:00.000Z")
    expect(performance.now() - started).toBeLessThan(500)
  })

  it("nextAfter finds a leap day across 2100, which is not a leap year", () => {
    expect(iso(CronTime.nextAfter("0 12 29 2 *", "Australia/Lord_Howe", ms("2096-03-01T00:00:00Z")))).toBe(
      "2104-02-29T01:00:00.000Z" // 12:00 +11
    )
  })

  it("a rare but possible date is valid, and found: the fifth Monday of February (a Monday 29th)", () => {
    const cron = CronTime.compile("0 0 * 2 1#5")
    expect(CronTime.firesAtAll(cron)).toBe(true)
    expect(iso(CronTime.nextAfter("0 0 * 2 1#5", "UTC", ms("2026-01-01T00:00:00Z")))).toBe("2044-02-29T00:00:00.000Z")
  })
})

// In UTC, cron-parser's own iteration is right: it checks the day rules
// (L, nL, n#k, either day field) on instants far from any offset change.
const dayOfMonthArb = fc.oneof(
  fc.constantFrom("*", "?", "L", "1", "15", "31", "*/2", "1-7", "10-20/3", "15,L", "29,30,31"),
  fc.integer({ min: 1, max: 31 }).map(String)
)
const dayOfWeekArb = fc.oneof(
  fc.constantFrom("*", "?", "0", "7", "1-5", "5-7", "*/2", "1,3,5", "5L", "0L", "7L", "1,5L", "sat", "mon-fri"),
  fc.tuple(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 1, max: 5 })).map(([day, nth]) => `${day}#${nth}`)
)
const cronArb = fc
  .tuple(
    fc.constantFrom("0", "*/20", "5,35"),
    fc.constantFrom("0", "*/7", "15"),
    fc.constantFrom("0", "*/5", "9-17", "23"),
    dayOfMonthArb,
    fc.constantFrom("*", "2", "1-6", "*/3", "2,4,6"),
    dayOfWeekArb
  )
  .map((fields) => fields.join(" "))

describe("cronTime against cron-parser in UTC (day-of-month and day-of-week rules)", () => {
  it.prop(
    "the same next fire",
    [cronArb, fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2040, 0, 1) })],
    ([expression, after]) => {
      let parsed: ReturnType<typeof CronExpressionParser.parse>
      try {
        parsed = CronExpressionParser.parse(expression, { currentDate: new Date(after), tz: "UTC", strict: false })
      } catch {
        expect(() => CronTime.compile(expression)).toThrow()
        return
      }
      expect([expression, iso(after), iso(CronTime.nextAfter(expression, "UTC", after))]).toEqual([
        expression,
        iso(after),
        parsed.next().toISOString()
      ])
    },
    { fastCheck: { numRuns: 200 } }
  )
})
