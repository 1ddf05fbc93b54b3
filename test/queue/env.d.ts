/// <reference types="@cloudflare/workers-types" />
/// <reference types="@cloudflare/vitest-pool-workers" />
declare module "cloudflare:test" {
  interface ProvidedEnv {
    /** The pool's queue; its consumer hands dead letters to the queue's own dead-letter queue. */
    readonly WORK: Queue
    /** A pool's queue whose consumer is given DEAD_LETTERS as its `deadLetterQueue`. */
    readonly WORK_EXPLICIT: Queue
    readonly DEAD_LETTERS: Queue
    /** The worker itself, through which consumers reach the dispatch endpoint. */
    readonly SELF_APP: Fetcher
    readonly LUNORA_SCHEDULER_SECRET: string
  }
}
