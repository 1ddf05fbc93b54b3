/**
 * The one job of the size Workers, and its handler.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Job from "@lunora/scheduler/Job"

export const BuildExport = Job.make("exports:build", {
  payload: Schema.Struct({ userId: Schema.String, format: Schema.Literal("csv", "json") }),
  success: Schema.Struct({ url: Schema.String })
})

export const handlers = BuildExport.toLayer((payload) =>
  Effect.succeed({ url: `https://files.example.com/exports/${payload.userId}.${payload.format}` })
)
