/// <reference types="@cloudflare/workers-types" />
/// <reference types="@cloudflare/vitest-pool-workers" />
declare module "cloudflare:test" {
  interface ProvidedEnv {
    readonly STORE_TEST: DurableObjectNamespace<import("./worker.js").StoreTestDO>
  }
}
