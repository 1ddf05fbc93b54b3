/// <reference types="node" />
/**
 * A pull worker in a process of its own, as one outside Cloudflare runs:
 * `PullWorker.run` over the admin API at LUNORA_SCHEDULER_URL, on the pull
 * pool PULL_POOL of PULL_INSTANCE, with a lease of PULL_LEASE_MS. Its one
 * handler prints `started <job id> <attempt>` and then works for a minute:
 * test/PullProcess.test.ts kills the process by its PID mid-job.
 */
import { Console, Duration, Effect } from "effect"
import * as Admin from "../../src/Admin.js"
import * as PullWorker from "../../src/PullWorker.js"

const env = (name: string) => {
  const value = process.env[name]
  if (value === undefined) throw new Error(`${name} is not set`)
  return value
}

const program = Effect.gen(function*() {
  const client = yield* Admin.pullWorker({
    url: env("LUNORA_SCHEDULER_URL"),
    token: env("LUNORA_SCHEDULER_TOKEN"),
    instance: env("PULL_INSTANCE"),
    pool: env("PULL_POOL")
  })
  return yield* PullWorker.run(client, {
    "admin:echo": (_, job) => Effect.zipRight(Console.log(`started ${job.id} ${job.attempt}`), Effect.sleep("1 minute"))
  }, { concurrency: 1, lease: Duration.millis(Number(env("PULL_LEASE_MS"))), idle: "100 millis" })
}).pipe(Effect.provide(Admin.clientLayer))

Effect.runPromise(program).catch((error) => {
  console.error(error)
  process.exit(1)
})
