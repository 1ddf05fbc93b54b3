/**
 * The handlers of an application's jobs, registered with `Job.toLayer` and
 * looked up by function path when a job is due.
 *
 * @since 0.1.0
 */
export {
  /**
   * The registry's tag: the scheduler's layers provide it.
   *
   * @since 0.1.0
   * @category tags
   */
  JobRegistry,
  /**
   * The registry as a layer, empty until handlers are added with `Job.toLayer`.
   *
   * @since 0.1.0
   * @category layers
   */
  layer,
  /**
   * An empty registry for handlers to be added to.
   *
   * @since 0.1.0
   * @category constructors
   */
  make,
  /**
   * Registers a handler for a job, capturing the services it needs now.
   *
   * @since 0.1.0
   * @category combinators
   */
  register,
  /**
   * Runs the handler registered for a function path; an unknown path is `Rejected`. With `ownFiber`, the
   * run is the rest of its fiber's life: the handler's services are set on the fiber, not restored.
   *
   * @since 0.1.0
   * @category combinators
   */
  run
} from "./internal/domain/registry.js"

export type {
  /**
   * A registered job: decodes the stored payload, runs the handler with the
   * services captured at registration, and encodes the result.
   *
   * @since 0.1.0
   * @category models
   */
  Entry,
  /**
   * A handler as the registry stores it.
   *
   * @since 0.1.0
   * @category models
   */
  Handler,
  /**
   * How one run of a handler ended, in the terms of the wire contract:
   * `Succeeded` (2xx), `Rejected` (4xx: the request itself is wrong, so no
   * retry can mend it) or `Failed` (5xx: a failed attempt, retried under the
   * job's policy).
   *
   * @since 0.1.0
   * @category models
   */
  Outcome
} from "./internal/domain/registry.js"
