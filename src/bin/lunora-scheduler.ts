#!/usr/bin/env node
/// <reference types="node" />
/**
 * The `lunora-scheduler` executable: runs the command line of `process.argv`
 * and sets the exit code (0 done or up to date, 1 out of date with `--check`,
 * 2 error or bad input; of the operator commands, 3 not found, 4
 * unauthorized, 5 conflict, 6 unavailable or unreachable).
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Cli from "./cli.js"
import * as Platform from "./platform.js"

Cli.run(process.argv).pipe(Effect.provide(Platform.layer), Effect.runPromise).then((code) => {
  process.exitCode = code
})
