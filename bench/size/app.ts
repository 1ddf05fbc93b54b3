/// <reference types="@cloudflare/workers-types" />
/**
 * The baseline of the size report: the scheduler Worker's own code without
 * the library. The same router, the same job Schema decoded, the same
 * handler; no scheduler, no SchedulerDO, no dispatch endpoint. What the
 * scheduler Worker weighs beyond this one is the library's share.
 *
 *   POST /exports    answers what the job would be given
 */
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"

const Export = Schema.Struct({ userId: Schema.String, format: Schema.Literal("csv", "json") })

const requestExport = Effect.gen(function*() {
  const payload = yield* Schema.decodeUnknown(Export)({ userId: "u-1", format: "csv" })
  return HttpServerResponse.unsafeJson({ payload }, { status: 201 })
})

const router = HttpRouter.empty.pipe(HttpRouter.post("/exports", Effect.orDie(requestExport)))

const { handler } = HttpApp.toWebHandlerLayer(router, Layer.empty)

export default {
  fetch: (request) => handler(request)
} satisfies ExportedHandler
