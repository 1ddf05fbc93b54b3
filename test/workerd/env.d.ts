/// <reference types="@cloudflare/workers-types" />
/// <reference types="@cloudflare/vitest-pool-workers" />
declare module "cloudflare:test" {
  interface ProvidedEnv {
    readonly STORE_TEST: DurableObjectNamespace<import("./worker.js").StoreTestDO>
    readonly SCHEDULER: DurableObjectNamespace<import("./worker.js").SchedulerDO>
    readonly WRONG_SECRET_SCHEDULER: DurableObjectNamespace<import("./worker.js").WrongSecretSchedulerDO>
    readonly LONG_LEASE_SCHEDULER: DurableObjectNamespace<import("./worker.js").LongLeaseSchedulerDO>
    readonly SINGLE_SCHEDULER: DurableObjectNamespace<import("./worker.js").SingleDispatchSchedulerDO>
    readonly NO_SECRET_SCHEDULER: DurableObjectNamespace<import("./worker.js").NoSecretSchedulerDO>
    readonly THROWING_TELEMETRY_SCHEDULER: DurableObjectNamespace<import("./worker.js").SchedulerDO>
    readonly FAILING_TELEMETRY_SCHEDULER: DurableObjectNamespace<import("./worker.js").SchedulerDO>
    readonly WEBHOOK_SCHEDULER: DurableObjectNamespace<import("./worker.js").WebhookSchedulerDO>
    readonly ALLOW_LIST_WEBHOOK_SCHEDULER: DurableObjectNamespace<import("./worker.js").AllowListWebhookSchedulerDO>
    readonly REPORTS: Workflow<{ readonly day: string }>
    readonly LUNORA_SCHEDULER_SECRET: string
    readonly LUNORA_SCHEDULER_ADMIN_TOKEN: string
    /** The Node dispatch endpoint of test/workerd/origin-server.ts. */
    readonly ORIGIN_URL: string
  }
}
