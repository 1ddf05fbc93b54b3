/**
 * The check of `lunora-scheduler crons --handlers`, bundled with the app's
 * handlers module and run there, so that it builds the module's layer with
 * the copy of Effect and of this package the module itself uses: the
 * handlers layer (the module's default export, or its export named
 * `handlers`) over a fresh `JobRegistry`, and which declared function paths
 * it has no handler for.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { describeCause } from "../internal/domain/failure.js"
import * as JobRegistry from "../JobRegistry.js"

/**
 * What the check found: no handlers layer in the module, a layer that
 * failed to build (and why), or the paths without a handler.
 *
 * @since 0.1.0
 * @category models
 */
export type HandlersCheck =
  | { readonly _tag: "NoLayer" }
  | { readonly _tag: "BuildFailed"; readonly reason: string }
  | { readonly _tag: "Checked"; readonly unknown: ReadonlyArray<string> }

/**
 * Builds the handlers layer of `module` (its default export, or else its
 * export named `handlers`) with only a fresh `JobRegistry` provided, and
 * looks up each of `functionPaths`; the layer is released after.
 *
 * @since 0.1.0
 * @category checks
 */
export const checkHandlers = (
  module: Readonly<Record<string, unknown>>,
  functionPaths: ReadonlyArray<string>
): Promise<HandlersCheck> => {
  const handlers = [module.default, module.handlers].find(Layer.isLayer)
  if (handlers === undefined) return Promise.resolve({ _tag: "NoLayer" })
  const layer = (handlers as Layer.Layer<never, unknown, JobRegistry.JobRegistry>).pipe(
    Layer.provideMerge(JobRegistry.layer)
  )
  return Effect.runPromiseExit(
    Effect.scoped(Effect.map(Layer.build(layer), (context) => {
      const registry = Context.get(context, JobRegistry.JobRegistry)
      return functionPaths.filter((functionPath) => Option.isNone(registry.lookup(functionPath)))
    }))
  ).then(Exit.match({
    onFailure: (cause): HandlersCheck => ({ _tag: "BuildFailed", reason: describeCause(cause) }),
    onSuccess: (unknown): HandlersCheck => ({ _tag: "Checked", unknown })
  }))
}
