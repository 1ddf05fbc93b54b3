/** The Schemas of the names and small values every layer checks: pool names and caps, keys. */
import * as Schema from "effect/Schema"

/** A pool's name: letters, digits, `_`, `-`, `.` and `:`, 1 to 64 characters. */
/** What a pool name looks like. */
export const POOL_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/

export const PoolName = Schema.String.pipe(
  Schema.pattern(POOL_NAME_PATTERN, {
    message: () => "a pool name is 1 to 64 letters, digits, _, -, . or :, starting with a letter or digit"
  })
)

/** A pool's cap: an integer from 1 to 1000. */
export const MaxConcurrency = Schema.Int.pipe(
  Schema.between(1, 1000, { message: () => "maxConcurrency must be an integer from 1 to 1000" })
)

/** The longest key or shard key, in characters. */
export const OPTION_TEXT_MAX = 256

/** A key or shard key: 1 to 256 characters. */
export const OptionText = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(OPTION_TEXT_MAX))

/** A stable 32-bit hash (FNV-1a) of `text`, for short ids and keys that name what they derive from. */
export const fnv1a = (text: string): number => {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193)
  return hash >>> 0
}
