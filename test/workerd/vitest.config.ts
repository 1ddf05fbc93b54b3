import { defineWorkersProject, type WorkerPoolOptionsContext } from "@cloudflare/vitest-pool-workers/config"

export default defineWorkersProject({
  test: {
    name: "workerd",
    include: ["**/*.test.ts"],
    globalSetup: ["./origin-server.ts"],
    // end-to-end on real alarms and HTTP, beside the Node project on a 2-core machine: 5 s is too tight under load
    testTimeout: 20_000,
    poolOptions: {
      // a function, so the origin server's port (chosen in global setup) reaches the worker as a binding
      workers: ({ inject }: WorkerPoolOptionsContext) => ({
        singleWorker: true,
        isolatedStorage: false,
        wrangler: { configPath: "./wrangler.jsonc" },
        miniflare: { bindings: { ORIGIN_URL: inject("originUrl") } }
      })
    }
  }
})
