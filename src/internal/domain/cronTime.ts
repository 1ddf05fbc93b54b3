/**
 * Fire times of cron expressions in IANA time zones, from their parsed
 * fields (`cronParse.ts` parses). Pure: no clock, no I/O, no parser;
 * offsets come from `Intl`.
 *
 * The fires of an expression are a set of instants: each wall-clock time
 * matching the fields fires once, at its first occurrence, or in every
 * occurrence when the hour field is `*`; a wall-clock time skipped by a
 * forward change fires at the instant the offset before the change gives it.
 * Time is cut into segments of constant offset (at each change, and at each
 * UTC new year), and each segment is searched on the wall clock directly.
 */
const SECOND = 1_000
const DAY = 86_400_000

/** How far `nextAfter` looks: the Gregorian calendar repeats every 400 years. */
const HORIZON = 400 * 365.2425 * DAY + 2 * DAY

/** The instants `Date` and `Intl` accept. */
const MAX_INSTANT = 8.64e15

/**
 * A cron expression's fields, as plain data: the allowed values of each
 * field, and the flags of its special forms. This is what a definition
 * carries to the runtime, so the runtime evaluates crons without a parser.
 */
export interface Fields {
  readonly second: ReadonlyArray<number>
  readonly minute: ReadonlyArray<number>
  readonly hour: ReadonlyArray<number>
  readonly dayOfMonth: ReadonlyArray<number>
  /** `L` in the day of month: the month's last day. */
  readonly lastDayOfMonth: boolean
  readonly month: ReadonlyArray<number>
  /** Sunday is 0. */
  readonly dayOfWeek: ReadonlyArray<number>
  /** `<day>L`: the last such weekday of the month. */
  readonly lastWeekdays: ReadonlyArray<number>
  /** `<day>#<n>`: the nth such weekday of the month (0: no such restriction). */
  readonly nthWeekday: number
  readonly dayOfMonthWildcard: boolean
  readonly dayOfWeekWildcard: boolean
  readonly hourWildcard: boolean
}

/**
 * An expression compiled for the wall-clock search: the `next*` tables give
 * the first allowed value at or after an index, or -1.
 */
export interface Cron {
  readonly nextSecond: Int8Array
  readonly nextMinute: Int8Array
  readonly nextHour: Int8Array
  readonly months: ReadonlyArray<boolean>
  readonly daysOfMonth: ReadonlyArray<boolean>
  readonly lastDayOfMonth: boolean
  readonly daysOfWeek: ReadonlyArray<boolean>
  readonly lastWeekdays: ReadonlyArray<boolean>
  readonly nthWeekday: number
  readonly dayOfMonthWildcard: boolean
  readonly dayOfWeekWildcard: boolean
  readonly hourWildcard: boolean
}

const nextTable = (values: ReadonlyArray<number>, size: number): Int8Array => {
  const table = new Int8Array(size + 1).fill(-1)
  const allowed = new Set(values)
  for (let index = size - 1; index >= 0; index--) table[index] = allowed.has(index) ? index : table[index + 1]!
  return table
}

const flags = (size: number, values: Iterable<number>): Array<boolean> => {
  const set: Array<boolean> = new Array<boolean>(size).fill(false)
  for (const value of values) set[value] = true
  return set
}

/** The search tables of a cron's fields (values out of a field's range are ignored). */
export const compile = (fields: Fields): Cron => ({
  nextSecond: nextTable(fields.second, 60),
  nextMinute: nextTable(fields.minute, 60),
  nextHour: nextTable(fields.hour, 24),
  months: flags(13, fields.month),
  daysOfMonth: flags(32, fields.dayOfMonth),
  lastDayOfMonth: fields.lastDayOfMonth,
  daysOfWeek: flags(7, fields.dayOfWeek),
  lastWeekdays: flags(7, fields.lastWeekdays),
  nthWeekday: fields.nthWeekday,
  dayOfMonthWildcard: fields.dayOfMonthWildcard,
  dayOfWeekWildcard: fields.dayOfWeekWildcard,
  hourWildcard: fields.hourWildcard
})

// Civil dates, counted in days from 1970-01-01 (proleptic Gregorian).

const daysFromCivil = (year: number, month: number, date: number): number => {
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yearOfEra = y - era * 400
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + date - 1
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear
  return era * 146_097 + dayOfEra - 719_468
}

/** `[year, month, date]` of a day counted from 1970-01-01. */
const civilOfDay = (day: number): readonly [number, number, number] => {
  const z = day + 719_468
  const era = Math.floor(z / 146_097)
  const dayOfEra = z - era * 146_097
  const yearOfEra = Math.floor(
    (dayOfEra - Math.floor(dayOfEra / 1_460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365
  )
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100))
  const shiftedMonth = Math.floor((5 * dayOfYear + 2) / 153)
  const month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
  const date = dayOfYear - Math.floor((153 * shiftedMonth + 2) / 5) + 1
  return [yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, date]
}

const isLeapYear = (year: number): boolean => (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0

const DAYS_IN_MONTH = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const

const daysInMonth = (year: number, month: number): number =>
  month === 2 && isLeapYear(year) ? 29 : DAYS_IN_MONTH[month]!

const weekdayOfDay = (day: number): number => (((day + 4) % 7) + 7) % 7

/** cron-parser's day rule: both day fields restricted, either matches; one restricted, that one. */
const matchesDay = (cron: Cron, date: number, weekday: number, length: number): boolean => {
  const dayOfMonth = cron.daysOfMonth[date] === true || (cron.lastDayOfMonth && date === length)
  const dayOfWeek =
    (cron.daysOfWeek[weekday] === true && (cron.nthWeekday <= 0 || Math.ceil(date / 7) === cron.nthWeekday)) ||
    (cron.lastWeekdays[weekday] === true && date > length - 7)
  if (!cron.dayOfMonthWildcard && !cron.dayOfWeekWildcard) return dayOfMonth || dayOfWeek
  return cron.dayOfWeekWildcard ? dayOfMonth : dayOfWeek
}

/** The first matching second of the day at or after `from` (seconds since midnight), or -1. */
const timeOfDay = (cron: Cron, from: number): number => {
  const fromHour = Math.floor(from / 3_600)
  const fromMinute = Math.floor(from / 60) % 60
  const fromSecond = from % 60
  for (let hour = cron.nextHour[fromHour]!; hour >= 0; hour = cron.nextHour[hour + 1]!) {
    const sameHour = hour === fromHour
    for (let minute = cron.nextMinute[sameHour ? fromMinute : 0]!; minute >= 0; minute = cron.nextMinute[minute + 1]!) {
      const second = cron.nextSecond[sameHour && minute === fromMinute ? fromSecond : 0]!
      if (second >= 0) return hour * 3_600 + minute * 60 + second
    }
  }
  return -1
}

/**
 * The first wall-clock time matching `cron` in `[from, end)`, both written
 * as if the wall clock were UTC (epoch ms, whole seconds).
 */
const nextWall = (cron: Cron, from: number, end: number): number | undefined => {
  let day = Math.floor(from / DAY)
  let time = Math.floor((from - day * DAY) / SECOND)
  let [year, month, date] = civilOfDay(day)
  while (day * DAY < end) {
    if (cron.months[month] === true) {
      const length = daysInMonth(year, month)
      for (; date <= length; date++, day++, time = 0) {
        if (day * DAY >= end) return undefined
        if (matchesDay(cron, date, weekdayOfDay(day), length)) {
          const second = timeOfDay(cron, time)
          if (second >= 0) {
            const wall = day * DAY + second * SECOND
            return wall < end ? wall : undefined
          }
        }
      }
    }
    month++
    if (month > 12) {
      month = 1
      year++
    }
    date = 1
    time = 0
    day = daysFromCivil(year, month, 1)
  }
  return undefined
}

// Offsets: wall clock = instant + offset.

interface Year {
  readonly start: number
  readonly end: number
  readonly offsetBefore: number
  /** Instants in `(start, end)` where the offset changes. */
  readonly changes: ReadonlyArray<number>
  /** `offsets[i]` holds from `changes[i - 1]` (or `start`) to `changes[i]` (or `end`). */
  readonly offsets: ReadonlyArray<number>
  readonly offsetAfter: number
}

interface Zone {
  readonly format: Intl.DateTimeFormat
  readonly years: Map<number, Year>
}

const MAX_ZONES = 1_024
const MAX_YEARS_PER_ZONE = 64
const zones = new Map<string, Zone>()

/** The zone's formatter and offset tables; throws a RangeError for an unknown time zone. */
const zoneOf = (timeZone: string): Zone => {
  let zone = zones.get(timeZone)
  if (zone === undefined) {
    zone = {
      format: new Intl.DateTimeFormat("en-US", {
        timeZone,
        hourCycle: "h23",
        year: "numeric",
        month: "numeric",
        day: "numeric",
        hour: "numeric",
        minute: "numeric",
        second: "numeric"
      }),
      years: new Map()
    }
    if (zones.size >= MAX_ZONES) zones.delete(zones.keys().next().value!)
    zones.set(timeZone, zone)
  }
  return zone
}

/** Whether `Intl` knows the time zone. */
export const isTimeZone = (timeZone: string): boolean => {
  try {
    zoneOf(timeZone)
    return true
  } catch {
    return false
  }
}

const offsetAt = (zone: Zone, at: number): number => {
  const instant = Math.min(MAX_INSTANT, Math.max(-MAX_INSTANT, Math.floor(at / SECOND) * SECOND))
  const parts = zone.format.format(instant).match(/\d+/g)
  if (parts === null || parts.length < 6) return 0
  const [month, date, year, hour, minute, second] = parts.map(Number) as [number, number, number, number, number, number]
  return daysFromCivil(year, month, date) * DAY + ((hour * 60 + minute) * 60 + second) * SECOND - instant
}

const yearStart = (year: number): number => daysFromCivil(year, 1, 1) * DAY

/** The offset changes of a UTC year: sampled daily, each bisected to the second. */
const scanYear = (zone: Zone, year: number): Year => {
  const start = yearStart(year)
  const end = yearStart(year + 1)
  const changes: Array<number> = []
  const offsets: Array<number> = [offsetAt(zone, start)]
  let known = start
  let offset = offsets[0]!
  for (let sample = Math.min(start + DAY, end - SECOND); ; sample = Math.min(sample + DAY, end - SECOND)) {
    while (offsetAt(zone, sample) !== offset) {
      let low = known
      let high = sample
      while (high - low > SECOND) {
        const middle = low + Math.floor((high - low) / 2 / SECOND) * SECOND
        if (offsetAt(zone, middle) === offset) low = middle
        else high = middle
      }
      known = high
      offset = offsetAt(zone, high)
      changes.push(high)
      offsets.push(offset)
    }
    known = sample
    if (sample === end - SECOND) break
  }
  return { start, end, offsetBefore: offsetAt(zone, start - SECOND), changes, offsets, offsetAfter: offsetAt(zone, end) }
}

const yearTable = (zone: Zone, year: number): Year => {
  let table = zone.years.get(year)
  if (table === undefined) {
    table = scanYear(zone, year)
    if (zone.years.size >= MAX_YEARS_PER_ZONE) zone.years.delete(zone.years.keys().next().value!)
    zone.years.set(year, table)
  }
  return table
}

interface Segment {
  readonly start: number
  readonly end: number
  readonly offset: number
  readonly offsetBefore: number
  readonly offsetAfter: number
}

/**
 * The span of constant offset holding instant `at`. Its end may be a new
 * year; its start is the change before, read from the year before when `at`
 * is a day or two into a year.
 */
const segmentAt = (zone: Zone, at: number): Segment => {
  const year = civilOfDay(Math.floor(at / DAY))[0]
  const table = yearTable(zone, year)
  let index = 0
  while (index < table.changes.length && table.changes[index]! <= at) index++
  const last = index === table.changes.length
  const offset = table.offsets[index]!
  let start = index === 0 ? table.start : table.changes[index - 1]!
  let offsetBefore = index === 0 ? table.offsetBefore : table.offsets[index - 1]!
  if (index === 0 && offsetBefore === offset && at - start < 2 * DAY) {
    const previous = yearTable(zone, year - 1)
    const count = previous.changes.length
    start = count === 0 ? previous.start : previous.changes[count - 1]!
    offsetBefore = count === 0 ? previous.offsetBefore : previous.offsets[count - 1]!
  }
  return {
    start,
    end: last ? table.end : table.changes[index]!,
    offset,
    offsetBefore,
    offsetAfter: last ? table.offsetAfter : table.offsets[index + 1]!
  }
}

/** The first fire strictly after `after` and at or before `limit`, if any. */
const nextFire = (cron: Cron, zone: Zone, after: number, limit: number): number | undefined => {
  let at = Math.floor(after / SECOND) * SECOND + SECOND
  while (at <= limit) {
    const segment = segmentAt(zone, at)
    let from = at + segment.offset
    if (!cron.hourWildcard && segment.offsetBefore > segment.offset) {
      from = Math.max(from, segment.start + segment.offsetBefore)
    }
    const wall = nextWall(cron, from, limit + segment.offset + 2 * DAY)
    let fire = wall !== undefined && wall < segment.end + segment.offset ? wall - segment.offset : undefined
    if (segment.offsetBefore < segment.offset && at < segment.start + segment.offset - segment.offsetBefore) {
      const skipped = nextWall(cron, at + segment.offsetBefore, segment.start + segment.offset)
      if (skipped !== undefined && (fire === undefined || skipped - segment.offsetBefore < fire)) {
        fire = skipped - segment.offsetBefore
      }
    }
    if (fire !== undefined) return fire <= limit ? fire : undefined
    const laterWallsSearched = from <= segment.end + Math.min(segment.offset, segment.offsetAfter)
    if (wall === undefined && laterWallsSearched) return undefined
    const ahead = wall === undefined ? segment.end : wall - segment.offset - 2 * DAY
    at = laterWallsSearched && ahead > segment.end ? ahead : segment.end
  }
  return undefined
}

/** Whether some wall-clock date matches: then the expression fires, in every zone. */
export const firesAtAll = (cron: Cron): boolean => {
  const from = yearStart(2000)
  return nextWall(cron, from, from + HORIZON) !== undefined
}

/** The first fire strictly after `after` (epoch ms); throws when there is none within 400 years. */
export const nextAfter = (cron: Cron, timeZone: string, after: number): number => {
  const fire = nextFire(cron, zoneOf(timeZone), after, Math.min(after + HORIZON, MAX_INSTANT - 2 * DAY))
  if (fire === undefined) throw new Error(`no fire within 400 years after ${new Date(after).toISOString()}`)
  return fire
}

/**
 * The last fire at or before `at`, given that `from` (at or before `at`) is
 * one: a window widened backwards from `at` until it holds a fire, then a few
 * steps forward, then bisection.
 */
export const latestAtOrBefore = (cron: Cron, timeZone: string, from: number, at: number): number => {
  const zone = zoneOf(timeZone)
  let last = from
  let empty = at
  for (let window = SECOND; at - window >= from; window *= 4) {
    const fire = nextFire(cron, zone, at - window, empty)
    if (fire !== undefined) {
      last = fire
      break
    }
    empty = at - window
  }
  for (let step = 0; step < 4; step++) {
    const fire = nextFire(cron, zone, last, empty)
    if (fire === undefined) return last
    last = fire
  }
  let low = last
  let high = empty
  while (high - low > SECOND) {
    const middle = low + Math.floor((high - low) / 2)
    if (nextFire(cron, zone, middle, high) !== undefined) low = middle
    else high = middle
  }
  for (let fire = nextFire(cron, zone, low, high); fire !== undefined; fire = nextFire(cron, zone, last, high)) last = fire
  return last
}
