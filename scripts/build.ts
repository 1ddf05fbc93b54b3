/// <reference types="node" />
/**
 * The package build (`npm run build`, also run by `prepack`): `tsc` to
 * `dist/` in two passes, each program emitting `.js`, `.d.ts` and maps.
 *
 * - `tsconfig.build.cloudflare.json`: the Cloudflare entry, against
 *   `@cloudflare/workers-types`;
 * - then `tsconfig.build.json`: the root and testing entries (and the CLI)
 *   against `ES2022 + DOM` only. It overwrites the root files the first pass
 *   emitted, so their `.d.ts` name web globals, never workers-types' `Request`.
 *
 * One transform on the way, the one Effect's own build applies: every call
 * and `new` evaluated when a module loads (outside any function body) is
 * marked `#__PURE__`. A bundler may then drop a module-level value nothing
 * uses (a layer, a Schema, a tag), and what only it imports: a Worker that
 * uses the live `Scheduler` does not carry the memory backend its module also
 * exports. The package's `sideEffects: []` says the same of whole modules.
 */
import { rmSync } from "node:fs"
import path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

const root = fileURLToPath(new URL("..", import.meta.url))

const isFunctionBody = (node: ts.Node): boolean =>
  ts.isFunctionLike(node) || ts.isClassStaticBlockDeclaration(node)

/** Marks each call and `new` of a module-level statement that runs at load, not those inside function bodies. */
const annotatePure: ts.TransformerFactory<ts.SourceFile> = (context) => {
  const mark = (node: ts.Node): ts.Node => {
    if (isFunctionBody(node)) return node
    if (ts.isCallExpression(node) || ts.isNewExpression(node)) {
      ts.addSyntheticLeadingComment(node, ts.SyntaxKind.MultiLineCommentTrivia, "#__PURE__", false)
    }
    return ts.visitEachChild(node, mark, context)
  }
  const statement = (node: ts.Node): ts.Node => {
    if (ts.isVariableStatement(node)) return ts.visitEachChild(node, mark, context)
    // `class X extends Schema.TaggedError<X>()("X", {…}) {}`: the heritage clause runs at load
    if (ts.isClassDeclaration(node) && node.heritageClauses !== undefined) {
      for (const clause of node.heritageClauses) ts.visitEachChild(clause, mark, context)
    }
    return node
  }
  return (file) => ts.visitEachChild(file, statement, context)
}

const format: ts.FormatDiagnosticsHost = {
  getCanonicalFileName: (name) => name,
  getCurrentDirectory: () => root,
  getNewLine: () => "\n"
}

/** Type-checks and emits one tsconfig; returns its error diagnostics, formatted. */
const emit = (config: string): ReadonlyArray<string> => {
  const parsed = ts.getParsedCommandLineOfConfigFile(path.join(root, config), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
      throw new Error(ts.formatDiagnostic(diagnostic, format))
    }
  })
  if (parsed === undefined) throw new Error(`${config}: cannot be read`)
  const program = ts.createProgram({ rootNames: parsed.fileNames, options: parsed.options })
  const result = program.emit(undefined, undefined, undefined, false, { before: [annotatePure] })
  const diagnostics = [...ts.getPreEmitDiagnostics(program), ...result.diagnostics, ...parsed.errors]
    .filter((diagnostic) => diagnostic.category === ts.DiagnosticCategory.Error)
  return diagnostics.map((diagnostic) => ts.formatDiagnostic(diagnostic, format).trim())
}

rmSync(path.join(root, "dist"), { recursive: true, force: true })
let failed = false
for (const config of ["tsconfig.build.cloudflare.json", "tsconfig.build.json"]) {
  const errors = emit(config)
  for (const error of errors) console.error(error)
  if (errors.length > 0) failed = true
}
if (failed) process.exit(1)
