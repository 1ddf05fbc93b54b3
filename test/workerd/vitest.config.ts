import { defineWorkersProject } from "@cloudflare/vitest-pool-workers/config"

export default defineWorkersProject({
  test: {
    name: "workerd",
    include: ["**/*.test.ts"],
    globalSetup: ["./origin-server.ts"],
    poolOptions: {
      workers: {
        singleWorker: true,
        isolatedStorage: false,
        wrangler: { configPath: "./wrangler.jsonc" }
      }
    }
  }
})
