/// <reference types="node" />
/**
 * The admin dashboard in a real headless Chromium (Debian's `chromium`,
 * driven by `playwright-core`; `.ci/run` installs it): the page of
 * `Admin.toFetchHandler` on the test/admin/ Worker, over real SchedulerDOs.
 * It loads with the token, shows the seeded jobs, crons, pools and metrics,
 * cancels a job, and saves a screenshot (test-results/dashboard.png, not
 * tracked; the README's docs/dashboard.png is a copy of one).
 */
import { existsSync } from "node:fs"
import { mkdir } from "node:fs/promises"
import { fileURLToPath } from "node:url"
import { chromium, type Browser } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ADMIN_TOKEN, startAdminWorker } from "./support/adminWorker.js"

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium"
const SCREENSHOT = fileURLToPath(new URL("../test-results/dashboard.png", import.meta.url))

let worker: Awaited<ReturnType<typeof startAdminWorker>> | undefined
let browser: Browser | undefined

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: install Debian's chromium (.ci/run does) or set CHROMIUM_PATH`)
  worker = await startAdminWorker()
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"] })
}, 90_000)

afterAll(async () => {
  await browser?.close()
  await worker?.dispose()
}, 30_000)

describe("the admin dashboard", () => {
  it("is served without the token and holds no data; every call it makes carries the token", async () => {
    const response = await fetch(`${worker!.origin}/_lunora/scheduler/admin/dashboard`)
    expect(response.status).toBe(200)
    expect(response.headers.get("content-type")).toContain("text/html")
    expect(response.headers.get("content-security-policy")).toContain("frame-ancestors 'none'")
    const html = await response.text()
    expect(html).toContain("<title>@lunora/scheduler</title>")
    expect(html).not.toContain(ADMIN_TOKEN)
  })

  it("loads an instance's jobs, crons, pools and metrics with the token, and cancels a job", async () => {
    const instance = `dashboard-${crypto.randomUUID()}`
    const seeded = await worker!.seed({
      instance,
      pending: 4,
      dead: 2,
      crons: true,
      pool: { name: "exports", maxConcurrency: 2, paused: true, queued: 3 }
    })
    const page = await browser!.newPage({ viewport: { width: 1280, height: 1400 } })
    try {
      await page.goto(`${worker!.origin}/_lunora/scheduler/admin/dashboard`)
      // a wrong token is refused, and shows why
      await page.fill("#token", "wrong")
      await page.fill("#instance", instance)
      await page.click("button[type=submit]")
      await expect.poll(() => page.textContent("#error")).toContain("Unauthorized")

      await page.fill("#token", ADMIN_TOKEN)
      await page.click("button[type=submit]")
      await page.waitForSelector("body[data-loaded]")
      expect(await page.textContent('.stat[data-state="pending"] b')).toBe("7")
      expect(await page.textContent('.stat[data-state="deadLettered"] b')).toBe("2")
      const listed = await page.$$eval("#jobs tr", (rows) => rows.map((row) => row.getAttribute("data-job")))
      expect([...listed].sort()).toEqual([...seeded.pending, ...seeded.dead, ...seeded.pooled].sort())
      expect(await page.textContent("#crons")).toContain("daily echo")
      expect(await page.textContent("#pools")).toContain("exports")
      expect(await page.$$eval("#drift div", (bars) => bars.length)).toBeGreaterThan(0)
      expect(await page.textContent("#driftNote")).toMatch(/^\d+ attempts started$/)
      expect(await page.textContent("#outcomeTable")).toContain("dead_lettered")

      // an action: cancel the first pending job, and the API says it is canceled
      const target = seeded.pending[0]!
      await page.click(`#jobs tr[data-job="${target}"] button[data-action="cancel"]`)
      await expect.poll(() => page.textContent(`#jobs tr[data-job="${target}"]`)).toContain("canceled")
      const job = await (await fetch(`${worker!.origin}/_lunora/scheduler/admin/instances/${instance}/jobs/${target}`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` }
      })).json() as { readonly state: string }
      expect(job.state).toBe("canceled")

      // the filter narrows the list to the dead letters, each with its replay
      await page.selectOption("#state", "deadLettered")
      await expect.poll(() => page.$$eval("#jobs tr", (rows) => rows.length)).toBe(2)
      expect(await page.$$eval("#jobs button[data-action=replay]", (buttons) => buttons.length)).toBe(2)
      await page.selectOption("#state", "")
      await expect.poll(() => page.$$eval("#jobs tr", (rows) => rows.length)).toBe(9)

      await mkdir(fileURLToPath(new URL("../test-results/", import.meta.url)), { recursive: true })
      await page.screenshot({ path: SCREENSHOT, fullPage: true })
      expect(existsSync(SCREENSHOT)).toBe(true)
    } finally {
      await page.close()
    }
  }, 60_000)
})
