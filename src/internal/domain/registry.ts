/**
 * The handlers of an application's jobs, by function path: what `Job.toLayer`
 * registers into and what a due job runs through. The public `JobRegistry`
 * module re-exports it.
 */
import * as Cause from "effect/Cause"
import * as FiberRef from "effect/FiberRef"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { Any, JobContext } from "./job.js"
import { describeCause } from "./failure.js"
import { encodeJson } from "./payload.js"

/**
 * A handler as the registry stores it.
 *
 * @since 0.1.0
 * @category models
 */
export type Handler = (payload: any, context: JobContext) => Effect.Effect<unknown, unknown, any>

/**
 * How one run of a handler ended, in the terms of the wire contract:
 * `Succeeded` (2xx), `Rejected` (4xx: the request itself is wrong, so no retry
 * can mend it) or `Failed` (5xx: a failed attempt, retried under the job's
 * policy).
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome =
  | { readonly _tag: "Succeeded"; readonly result: string | null }
  | { readonly _tag: "Rejected"; readonly reason: string }
  | { readonly _tag: "Failed"; readonly error: string }

/**
 * The job whose handler is running on this fiber, if any: what the handler
 * schedules records it as its parent.
 */
export class CurrentJob extends Context.Reference<CurrentJob>()("@lunora/scheduler/CurrentJob", {
  defaultValue: () => Option.none<string>()
}) {}

/**
 * A registered job: decodes the stored payload, runs the handler with the
 * services captured at registration, and encodes the result.
 *
 * @since 0.1.0
 * @category models
 */
export interface Entry {
  readonly job: Any
  /**
   * With `ownFiber`, the run is the rest of its fiber's life (a dispatch, a
   * test-layer attempt): the handler's services are set on the fiber, not
   * restored after it (no `locally`: about 25 Effect steps a job).
   */
  readonly run: (args: unknown, context: JobContext, ownFiber?: boolean) => Effect.Effect<Outcome>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class JobRegistry extends Context.Tag("@lunora/scheduler/JobRegistry")<JobRegistry, {
  readonly register: (entry: Entry) => Effect.Effect<void>
  readonly lookup: (functionPath: string) => Option.Option<Entry>
}>() {}

/**
 * An empty registry for handlers to be added to.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<JobRegistry["Type"]> = Effect.sync(() => {
  const entries = new Map<string, Entry>()
  return JobRegistry.of({
    register: (entry) =>
      Effect.suspend(() =>
        entries.has(entry.job.path)
          ? Effect.dieMessage(`a handler for ${entry.job.path} is registered twice`)
          : Effect.sync(() => void entries.set(entry.job.path, entry))
      ),
    lookup: (functionPath) => Option.fromNullable(entries.get(functionPath))
  })
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<JobRegistry> = Layer.effect(JobRegistry, make)

const failure = (cause: Cause.Cause<unknown>): Outcome => ({ _tag: "Failed", error: describeCause(cause) })

/**
 * Registers `handler` for `job`, capturing the services it needs now.
 *
 * @since 0.1.0
 * @category combinators
 */
export const register = (job: Any, handler: Handler): Effect.Effect<void, never, any> =>
  Effect.gen(function*() {
    const registry = yield* JobRegistry
    const context = yield* Effect.context<any>()
    const decode = Schema.decodeUnknown(job.payloadSchema)
    const encode = Schema.encodeUnknown(job.successSchema)
    // the runner's services with the captured ones over them, as `Effect.provide(context)` gives: merged once per
    // runner context, not once per job (each run adds only the job running to it)
    let runnerContext: Context.Context<never> | undefined
    let merged: Context.Context<never> = context
    const withCaptured = (current: Context.Context<never>) => {
      if (current !== runnerContext) {
        runnerContext = current
        merged = Context.merge(current, context)
      }
      return merged
    }
    // what `Effect.provide(context)` types: the captured services, and the job running, meet what the handler requires
    const provideCaptured = (id: string, ownFiber: boolean) => <A, E>(effect: Effect.Effect<A, E, any>): Effect.Effect<A, E> => {
      const running = (current: Context.Context<never>) => Context.add(withCaptured(current), CurrentJob, Option.some(id))
      return (ownFiber
        ? Effect.zipRight(FiberRef.update(FiberRef.currentContext, running), effect)
        : Effect.locallyWith(effect, FiberRef.currentContext, running)) as Effect.Effect<A, E>
    }
    yield* registry.register({
      job,
      run: (args, jobContext, ownFiber = false) =>
        decode(args).pipe(
          Effect.matchCauseEffect({
            onFailure: (cause) =>
              Effect.succeed<Outcome>({
                _tag: "Rejected",
                reason: Option.match(Cause.failureOption(cause), {
                  onNone: () => describeCause(cause),
                  onSome: (error) => `payload does not match the Schema of ${job.path}: ${ParseResult.TreeFormatter.formatErrorSync(error)}`
                })
              }),
            onSuccess: (payload) =>
              Effect.suspend(() => handler(payload, jobContext)).pipe(
                Effect.flatMap(encode),
                Effect.flatMap((encoded) => encodeJson(encoded)),
                provideCaptured(jobContext.id, ownFiber),
                Effect.matchCause({
                  onFailure: failure,
                  onSuccess: (result): Outcome => ({ _tag: "Succeeded", result })
                })
              )
          })
        )
    })
  })

/**
 * Runs the handler registered for `functionPath`; an unknown path is
 * `Rejected`. With `ownFiber`, the run is the rest of its fiber's life
 * (`Entry.run`).
 *
 * @since 0.1.0
 * @category combinators
 */
export const run = (
  functionPath: string,
  args: unknown,
  context: JobContext,
  ownFiber = false
): Effect.Effect<Outcome, never, JobRegistry> =>
  Effect.flatMap(JobRegistry, (registry) => runIn(registry, functionPath, args, context, ownFiber))

/**
 * `run` through `registry`, given rather than read from the context (no
 * service lookup per job); with `ownFiber`, as the rest of its fiber's life
 * (`Entry.run`).
 */
export const runIn = (
  registry: JobRegistry["Type"],
  functionPath: string,
  args: unknown,
  context: JobContext,
  ownFiber = false
): Effect.Effect<Outcome> =>
  Option.match(registry.lookup(functionPath), {
    onNone: () => Effect.succeed<Outcome>({ _tag: "Rejected", reason: `no handler is registered for ${functionPath}` }),
    onSome: (entry) => entry.run(args, context, ownFiber)
  })
