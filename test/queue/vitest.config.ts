import { defineWorkersProject } from "@cloudflare/vitest-pool-workers/config"

export default defineWorkersProject({
  test: {
    name: "queue",
    include: ["**/*.test.ts"],
    testTimeout: 15_000,
    poolOptions: {
      workers: {
        singleWorker: true,
        isolatedStorage: false,
        wrangler: { configPath: "./wrangler.jsonc" }
      }
    }
  }
})
