/**
 * The Cloudflare entry as Node loads it (the `node` export condition): the
 * same facades and handlers, and a `SchedulerDO` that says where it runs.
 * Its types are those of `./index.ts`.
 */
export * from "./facades.js"

/** A stand-in: the Durable Object runs in workerd only (a Worker, `wrangler dev`, Miniflare). */
export class SchedulerDO {
  constructor() {
    throw new Error(
      "SchedulerDO runs in workerd only: export it from your Worker; in Node, test with Scheduler.layerMemory or @lunora/scheduler/testing"
    )
  }
}
