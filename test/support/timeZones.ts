/**
 * Time-zone facts read straight from `Intl`, for the cron tests: the wall
 * clock of an instant and the instants where a zone's offset changes. Kept
 * apart from the library's own evaluator, so that tests can use them as a
 * reference.
 */
const MINUTE = 60_000
const DAY = 86_400_000

const formatters = new Map<string, Intl.DateTimeFormat>()

const formatterOf = (timeZone: string): Intl.DateTimeFormat => {
  let formatter = formatters.get(timeZone)
  if (formatter === undefined) {
    formatter = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit"
    })
    formatters.set(timeZone, formatter)
  }
  return formatter
}

/** The wall-clock time of an instant in a zone, as `YYYY-MM-DD HH:mm:ss`. */
export const wallClock = (timeZone: string, epochMs: number): string => {
  const parts = Object.fromEntries(formatterOf(timeZone).formatToParts(new Date(epochMs)).map((p) => [p.type, p.value]))
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}`
}

/** The wall-clock time of an instant, in epoch milliseconds as if the wall clock were UTC (whole seconds). */
export const wallMillis = (timeZone: string, epochMs: number): number =>
  Date.parse(`${wallClock(timeZone, epochMs).replace(" ", "T")}Z`)

/** The zone's offset at an instant: wall clock minus instant, in milliseconds. */
export const offsetOf = (timeZone: string, epochMs: number): number => {
  const at = Math.floor(epochMs / 1000) * 1000
  return wallMillis(timeZone, at) - at
}

export interface Change {
  readonly at: number
  /** `gap`: clocks go forward (local times skipped); `overlap`: back (local times repeated). */
  readonly kind: "gap" | "overlap"
}

/**
 * Every offset change of a zone in `[from, to)`, to the minute: weeks
 * scanned, then bisected (the zones tested change at most twice a year).
 */
export const changesOf = (timeZone: string, from: number, to: number): ReadonlyArray<Change> => {
  const changes: Array<Change> = []
  let t = from
  let offset = offsetOf(timeZone, t)
  while (t < to) {
    const next = t + 7 * DAY
    const nextOffset = offsetOf(timeZone, next)
    if (nextOffset !== offset) {
      let low = t
      let high = next
      while (high - low > MINUTE) {
        const middle = Math.floor((low + high) / 2 / MINUTE) * MINUTE
        if (offsetOf(timeZone, middle) === offset) low = middle
        else high = middle
      }
      changes.push({ at: high, kind: nextOffset > offset ? "gap" : "overlap" })
    }
    t = next
    offset = nextOffset
  }
  return changes
}
