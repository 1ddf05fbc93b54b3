import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const alias = {
  "@lunora/scheduler/testing": fileURLToPath(new URL("./src/testing.ts", import.meta.url)),
  "@lunora/scheduler/cloudflare": fileURLToPath(new URL("./src/cloudflare/index.ts", import.meta.url)),
  "@lunora/scheduler": fileURLToPath(new URL("./src/index.ts", import.meta.url))
}

export default defineConfig({
  resolve: { alias },
  test: {
    projects: [
      {
        resolve: { alias },
        test: {
          name: "node",
          include: ["test/**/*.test.ts", "examples/**/*.test.ts"],
          exclude: ["test/workerd/**", "test/queue/**"],
          environment: "node"
        }
      },
      "./test/workerd/vitest.config.ts",
      "./test/queue/vitest.config.ts"
    ]
  }
})
