/// <reference types="node" />
/**
 * Runs the `lunora-scheduler` command line in this process, as the tests of
 * its commands do: its exit code, and what it printed on stdout and stderr.
 */
import { type Console, Effect } from "effect"
import * as Cli from "../../src/bin/cli.js"
import * as Platform from "../../src/bin/platform.js"

export interface Ran {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** `lunora-scheduler ...args`, with relative paths from `directory` when given. */
export const runCli = (args: ReadonlyArray<string>, directory?: string): Effect.Effect<Ran> =>
  Effect.gen(function*() {
    const stdout: Array<string> = []
    const stderr: Array<string> = []
    const base = yield* Effect.console
    const capture: Console.Console = {
      ...base,
      log: (...line) => Effect.sync(() => void stdout.push(line.join(" "))),
      error: (...line) => Effect.sync(() => void stderr.push(line.join(" ")))
    }
    const run = Cli.run(["node", "lunora-scheduler", ...args]).pipe(Effect.withConsole(capture))
    const code = yield* (directory === undefined ? run : Effect.provideService(run, Cli.WorkingDirectory, directory)).pipe(
      Effect.provide(Platform.layer)
    )
    const text = (lines: ReadonlyArray<string>) => lines.map((line) => `${line}\n`).join("")
    return { code, stdout: text(stdout), stderr: text(stderr) }
  })
