/**
 * OpenTelemetry export of the scheduler's spans, metrics and logs over
 * OTLP/HTTP (JSON), through `@effect/opentelemetry`'s `Otlp` module: an
 * optional peer dependency (`npm install @effect/opentelemetry`), needed only
 * by this entry, which the root entry does not re-export.
 *
 * The metrics are the `lunora_scheduler_*` Effect `Metric`s that a
 * `SchedulerDO` keeps (the admin API's `/metrics` names them), and the spans
 * are the services' (`Scheduler.runAfter`, `SchedulerDO.schedule`, …) and the
 * object's (`SchedulerDO.alarm`, one `SchedulerDO.dispatch` per batch with its
 * job ids). Provide `layer` to the app's runtime for the services' spans, and
 * give it to `SchedulerDO.withTelemetry` for the object's.
 *
 * @since 0.1.0
 */
import * as Otlp from "@effect/opentelemetry/Otlp"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type * as Duration from "effect/Duration"
import * as Layer from "effect/Layer"

/**
 * Where and how to export.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The OTLP/HTTP receiver's base URL: spans go to `<baseUrl>/v1/traces`, metrics to `/v1/metrics`, logs to `/v1/logs`. */
  readonly baseUrl: string
  /** The `service.name` of the resource (default `"lunora-scheduler"`). */
  readonly serviceName?: string | undefined
  /** The `service.version` of the resource. */
  readonly serviceVersion?: string | undefined
  /** Sent with every export, for example `{ authorization: "Bearer …" }` or a vendor's API key header. */
  readonly headers?: Readonly<Record<string, string>> | undefined
  /** How often spans, metrics and logs are sent (default 5 seconds); each export is one request. */
  readonly exportInterval?: Duration.DurationInput | undefined
}

/**
 * Exports spans, metrics and logs to an OTLP/HTTP receiver with `fetch`, so
 * it runs in a Worker, a Durable Object or Node alike. An export that fails
 * is retried a few times and then dropped (the exporter pauses for a
 * minute); it never fails the effects it observes.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<never> =>
  Otlp.layerJson({
    baseUrl: options.baseUrl,
    resource: { serviceName: options.serviceName ?? "lunora-scheduler", serviceVersion: options.serviceVersion },
    headers: options.headers,
    metricsExportInterval: options.exportInterval,
    tracerExportInterval: options.exportInterval,
    loggerExportInterval: options.exportInterval
  }).pipe(Layer.provide(FetchHttpClient.layer))
