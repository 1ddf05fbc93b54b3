/**
 * Sending one attempt of a job whose target is its own, as the
 * `SchedulerDO` and the test layer both do: a webhook's delivery
 * (`webhook.ts`), or the creation of a Workflow instance (`workflow.ts`),
 * each within the job's lease. Never rejects.
 */
import type * as Redacted from "effect/Redacted"
import type { OwnTarget, WebhookPolicy } from "../domain/targets.js"
import type { JobRecord } from "../engine/store.js"
import type { Outcome } from "./dispatcher.js"
import { deliverWebhook } from "./webhook.js"
import { startWorkflow, type WorkflowBinding } from "./workflow.js"

/** What sending to own targets takes: the webhook secret and policy, and the Workflow bindings there are. */
export interface OwnTargetSender {
  readonly secret: Redacted.Redacted<string> | undefined
  readonly policy: WebhookPolicy
  readonly fetch?: typeof globalThis.fetch | undefined
  /** The Workflow binding named `name`, or why there is none. */
  readonly workflow: (name: string) => WorkflowBinding | string
}

/** Sends the attempt of `job` (leased, its lease ending at `runAt`) to its own `target`, at `now`. */
export const sendToOwnTarget = (sender: OwnTargetSender, target: OwnTarget, job: JobRecord, now: number): Promise<Outcome> => {
  const timeoutMs = job.runAt - now
  if ("webhook" in target) return deliverWebhook(sender.secret, sender.policy, target.webhook, job, now, timeoutMs, sender.fetch)
  const binding = sender.workflow(target.workflow.binding)
  return typeof binding === "string"
    ? Promise.resolve({ ok: false, retryable: false, error: binding })
    : startWorkflow(binding, job, timeoutMs)
}
