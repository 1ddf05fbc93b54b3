/**
 * Where a job lives when a scheduler is spread over several `SchedulerDO`
 * instances: the shard count's bounds, the shard a job, pool or cron is
 * placed on, and the shard field of a job id (`job_<shard>_…`, base 36).
 */
import * as Schema from "effect/Schema"
import { fnv1a } from "./names.js"

/** The most shards one scheduler instance may be spread over. */
export const MAX_SHARDS = 1024

/** A shard count: an integer from 1 to `MAX_SHARDS`. */
export const ShardCount = Schema.Number.pipe(
  Schema.filter((count) => Number.isInteger(count) && count >= 1 && count <= MAX_SHARDS, {
    message: () => `shards must be an integer from 1 to ${MAX_SHARDS}`
  })
)

/** The shard `text` (a shard key, a dedupe key, a pool or cron name) is placed on, of `count`. */
export const shardFor = (text: string, count: number): number => count === 1 ? 0 : fnv1a(text) % count

const SHARD_FIELD = /^job_([0-9a-z]{1,8})_/

/** The shard named by a job id's shard field; `undefined` for text that is not a job id of a possible shard. */
export const shardOfId = (id: string): number | undefined => {
  const field = SHARD_FIELD.exec(id)?.[1]
  if (field === undefined) return undefined
  const shard = parseInt(field, 36)
  return shard < MAX_SHARDS ? shard : undefined
}

/** `id` (as `submission.prepare` builds it, on shard 0) with its shard field set to `shard`. */
export const withShard = (id: string, shard: number): string =>
  shard === 0 ? id : id.replace(SHARD_FIELD, `job_${shard.toString(36)}_`)

/** The instance name of shard `shard` of the scheduler instance `instanceName`: shard 0 is the instance itself. */
export const shardInstance = (instanceName: string, shard: number): string =>
  shard === 0 ? instanceName : `${instanceName}#${shard}`
