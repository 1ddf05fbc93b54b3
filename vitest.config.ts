import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const src = fileURLToPath(new URL("./src/", import.meta.url))

/** The package's entries, resolved to their sources: the root, `/cloudflare`, and each module (`/testing`, `/Scheduler`, ...). */
const alias = [
  { find: /^@lunora\/scheduler$/, replacement: `${src}index.ts` },
  { find: /^@lunora\/scheduler\/cloudflare$/, replacement: `${src}cloudflare/index.ts` },
  { find: /^@lunora\/scheduler\/(\w+)$/, replacement: `${src}$1.ts` }
]

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
