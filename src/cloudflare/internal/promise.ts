/**
 * The Promise facades' one way of running an Effect: resolve with its value,
 * or reject with its typed error itself (not a FiberFailure around it).
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"

export const runPromise = <A, E>(effect: Effect.Effect<A, E>): Promise<A> =>
  Effect.runPromiseExit(effect).then(Exit.match({
    onSuccess: (value) => value,
    onFailure: (cause) => {
      throw Cause.squash(cause)
    }
  }))

/** Runs a synchronous Effect: its value, or its typed error thrown itself (not a FiberFailure around it). */
export const runSyncOrThrow = <A, E>(effect: Effect.Effect<A, E>): A =>
  Exit.match(Effect.runSyncExit(effect), {
    onSuccess: (value) => value,
    onFailure: (cause) => {
      throw Cause.squash(cause)
    }
  })
