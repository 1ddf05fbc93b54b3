/// <reference types="@cloudflare/workers-types" />
/**
 * The worker the workerd tests run against: a bare SQLite-backed Durable
 * Object whose `ctx.storage` the tests reach with `runInDurableObject`.
 */
import { DurableObject } from "cloudflare:workers"

export class StoreTestDO extends DurableObject {}

export default {
  fetch: () => new Response("not found", { status: 404 })
} satisfies ExportedHandler
