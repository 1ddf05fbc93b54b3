/**
 * Codegen for Cron Triggers: the crons of a `cronJobs()` module, and its
 * one-function triggers, compiled to UTC cron expressions, and written into
 * the `triggers.crons` array of a `wrangler.jsonc` without touching its
 * comments or the rest of its layout.
 * The `lunora-scheduler crons` command runs both.
 *
 * Rules (one each, tested): the expressions are deduplicated and sorted; a
 * cron no trigger can express, or a trigger whose expression is not the one
 * `createCronTrigger` writes, refuses the whole set, naming every such one;
 * the config is left byte for byte as it was when `triggers.crons` already
 * holds exactly the expressions, so a second run changes nothing; an array
 * written on one line stays on one line, otherwise it has one expression a
 * line; a comment inside the array stays with the expression it annotates
 * and goes with it when that expression is removed.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import type { EditResult, FormattingOptions, JSONPath, Node, ParseError } from "jsonc-parser"
import { applyEdits, findNodeAtLocation, modify, parseTree, printParseErrorCode, visit } from "jsonc-parser"
export { CodegenError, type Refusal, triggerExpressions, triggerPlan } from "./internal/domain/triggers.js"

/**
 * The Wrangler config is not valid JSONC, or its `triggers.crons` cannot be
 * set (its root is not an object).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidConfig extends Data.TaggedError("InvalidConfig")<{
  readonly reason: string
}> {
  override get message(): string {
    return `invalid Wrangler config: ${this.reason}`
  }
}

/**
 * The Wrangler config `text` with `triggers.crons` set to `expressions`
 * (`triggers` created when absent), every comment and the rest of the
 * formatting kept; `text` itself when the array already holds exactly these
 * expressions. Throws `InvalidConfig` when `text` is not a JSONC object.
 *
 * @since 0.1.0
 * @category codegen
 */
export const updateWranglerJsonc = (text: string, expressions: ReadonlyArray<string>): string => {
  const root = parseConfig(text)
  const crons = findNodeAtLocation(root, CRONS)
  if (crons?.type === "array") return setCrons(text, root, crons, expressions)
  const prepared = applyEdits(text, emptyCrons(text, root))
  const preparedRoot = parseConfig(prepared)
  return setCrons(prepared, preparedRoot, findNodeAtLocation(preparedRoot, CRONS)!, expressions)
}

const CRONS: JSONPath = ["triggers", "crons"]

const setCrons = (text: string, root: Node, crons: Node, expressions: ReadonlyArray<string>): string => {
  if (holdsExactly(crons, expressions)) return text
  const formatting = detectFormatting(text, root)
  const tokens = tokensIn(text, crons)
  const strings = (crons.children ?? []).every((child) => child.type === "string")
  const oneLine = !/[\r\n]/.test(text.slice(crons.offset, crons.offset + crons.length))
  if (strings && oneLine && tokens.comments.length === 0) {
    const content = `[${expressions.map((expression) => JSON.stringify(expression)).join(", ")}]`
    return applyEdits(text, [{ offset: crons.offset, length: crons.length, content }])
  }
  if (!strings || tokens.comments.length === 0) {
    return applyEdits(text, modify(text, CRONS, expressions, { formattingOptions: formatting }))
  }
  const content = renderArray(text, crons, carry(text, crons, tokens), expressions, formatting)
  return applyEdits(text, [{ offset: crons.offset, length: crons.length, content }])
}

const parseConfig = (text: string): Node => {
  const errors: Array<ParseError> = []
  const root = parseTree(text, errors, { allowTrailingComma: true, disallowComments: false })
  const error = errors[0]
  if (error !== undefined) {
    const { line, column } = position(text, error.offset)
    throw new InvalidConfig({ reason: `${printParseErrorCode(error.error)} at line ${line}, column ${column}` })
  }
  if (root?.type !== "object") throw new InvalidConfig({ reason: "its root is not an object" })
  return root
}

const position = (text: string, offset: number) => {
  const before = text.slice(0, offset).split(/\r\n|\r|\n/)
  return { line: before.length, column: before[before.length - 1]!.length + 1 }
}

const holdsExactly = (array: Node, expressions: ReadonlyArray<string>): boolean => {
  const children = array.children ?? []
  return children.length === expressions.length &&
    children.every((child, i) => child.type === "string" && child.value === expressions[i])
}

const lineStart = (text: string, offset: number): number => {
  let start = offset
  while (start > 0 && text[start - 1] !== "\n" && text[start - 1] !== "\r") start--
  return start
}

/** The whitespace before `offset` on its line, if only whitespace precedes it there. */
const indentBefore = (text: string, offset: number): string | undefined => {
  const before = text.slice(lineStart(text, offset), offset)
  return /^[ \t]*$/.test(before) ? before : undefined
}

const detectFormatting = (text: string, root: Node): FormattingOptions => {
  const eol = text.includes("\r\n") ? "\r\n" : "\n"
  for (const property of root.children ?? []) {
    const indent = indentBefore(text, property.offset)
    if (indent === undefined || indent.length === 0) continue
    return indent.startsWith("\t")
      ? { insertSpaces: false, tabSize: 4, eol }
      : { insertSpaces: true, tabSize: indent.length, eol }
  }
  return { insertSpaces: true, tabSize: 2, eol }
}

const unitOf = (formatting: FormattingOptions): string =>
  formatting.insertSpaces === false ? "\t" : " ".repeat(formatting.tabSize ?? 2)

interface Comment {
  readonly offset: number
  readonly length: number
  readonly line: number
}

interface Tokens {
  readonly comments: ReadonlyArray<Comment>
  readonly commas: ReadonlyArray<number>
}

/** The comments and commas of `text`, or only those inside `node`. */
const tokensIn = (text: string, node?: Node): Tokens => {
  const comments: Array<Comment> = []
  const commas: Array<number> = []
  const within = (offset: number) => node === undefined || (offset > node.offset && offset < node.offset + node.length)
  visit(text, {
    onComment: (offset, length, line) => {
      if (within(offset)) comments.push({ offset, length, line })
    },
    onSeparator: (character, offset) => {
      if (character === "," && within(offset)) commas.push(offset)
    }
  }, { allowTrailingComma: true, disallowComments: false })
  return { comments, commas }
}

/** Edits that make `triggers.crons` an empty array, creating `triggers` when absent. */
const emptyCrons = (text: string, root: Node): EditResult => {
  const formatting = detectFormatting(text, root)
  const triggers = findNodeAtLocation(root, ["triggers"])
  if (triggers === undefined) return insertProperty(text, root, [], "triggers", { crons: [] }, formatting)
  if (triggers.type !== "object") return modify(text, ["triggers"], { crons: [] }, { formattingOptions: formatting })
  if (findNodeAtLocation(triggers, ["crons"]) !== undefined) {
    return modify(text, CRONS, [], { formattingOptions: formatting })
  }
  return insertProperty(text, triggers, ["triggers"], "crons", [], formatting)
}

/**
 * Adds `key: value` after the last property of `object`, on a line of its
 * own. `modify` alone would reformat the whole line it inserts on (the
 * previous property's line), so when that property ends its line the new
 * one is placed by hand; otherwise (an empty or one-line object) `modify`
 * does it, reformatting only that object's own line.
 */
const insertProperty = (
  text: string,
  object: Node,
  path: JSONPath,
  key: string,
  value: unknown,
  formatting: FormattingOptions
): EditResult => {
  const last = object.children?.[object.children.length - 1]
  const indent = last === undefined ? undefined : indentBefore(text, last.offset)
  const end = last === undefined ? undefined : endOfLine(text, last.offset + last.length, tokensIn(text).comments)
  if (last === undefined || indent === undefined || end === undefined) {
    return modify(text, [...path, key], value, { formattingOptions: formatting })
  }
  const eol = formatting.eol ?? "\n"
  const rendered = JSON.stringify(value, null, unitOf(formatting)).split("\n").join(eol + indent)
  const property = `${eol}${indent}${JSON.stringify(key)}: ${rendered}${end.comma ? "," : ""}`
  const comma: EditResult = end.comma ? [] : [{ offset: last.offset + last.length, length: 0, content: "," }]
  return [...comma, { offset: end.offset, length: 0, content: property }]
}

/**
 * Where the line ends after `offset`, when only blanks, one comma and
 * one-line comments follow on it, and whether that comma is there.
 */
const endOfLine = (
  text: string,
  offset: number,
  comments: ReadonlyArray<Comment>
): { readonly offset: number; readonly comma: boolean } | undefined => {
  let at = offset
  let comma = false
  while (at < text.length && text[at] !== "\n" && text[at] !== "\r") {
    const char = text[at]!
    const comment = comments.find((one) => one.offset === at)
    if (char === " " || char === "\t") at++
    else if (char === "," && !comma) {
      comma = true
      at++
    } else if (comment !== undefined && !/[\r\n]/.test(text.slice(comment.offset, comment.offset + comment.length))) {
      at = comment.offset + comment.length
    } else return undefined
  }
  return at < text.length ? { offset: at, comma } : undefined
}

interface Carried {
  /** Comments after `[` on its line. */
  readonly head: ReadonlyArray<string>
  /** Per old element: the comments on lines of their own before it. */
  readonly leading: ReadonlyArray<ReadonlyArray<string>>
  /** Per old element: the comments after it on its line. */
  readonly trailing: ReadonlyArray<ReadonlyArray<string>>
  /** Comments on lines of their own after the last element. */
  readonly dangling: ReadonlyArray<string>
  readonly trailingComma: boolean
}

/** The comments of an array of strings, each attached to the element it annotates. */
const carry = (text: string, array: Node, tokens: Tokens): Carried => {
  const children = array.children ?? []
  const lineOf = (offset: number) => position(text, offset).line - 1
  const head: Array<string> = []
  const leading: Array<Array<string>> = children.map(() => [])
  const trailing: Array<Array<string>> = children.map(() => [])
  const dangling: Array<string> = []
  for (const comment of tokens.comments) {
    const content = text.slice(comment.offset, comment.offset + comment.length)
    const index = children.filter((child) => child.offset < comment.offset).length
    const previous = children[index - 1]
    const sameLine = comment.line === lineOf(previous === undefined ? array.offset : previous.offset)
    if (sameLine && previous === undefined) head.push(content)
    else if (sameLine) trailing[index - 1]!.push(content)
    else if (index < children.length) leading[index]!.push(content)
    else dangling.push(content)
  }
  const last = children[children.length - 1]
  const trailingComma = last !== undefined && tokens.commas.some((comma) => comma > last.offset)
  return { head, leading, trailing, dangling, trailingComma }
}

/** One expression a line, each with the comments its old element had. */
const renderArray = (
  text: string,
  array: Node,
  carried: Carried,
  expressions: ReadonlyArray<string>,
  formatting: FormattingOptions
): string => {
  const outer = text.slice(lineStart(text, array.offset)).match(/^[ \t]*/)![0]
  const children = array.children ?? []
  const first = children[0]
  const inner = (first === undefined ? undefined : indentBefore(text, first.offset)) ?? outer + unitOf(formatting)
  const used = new Set<number>()
  const lines: Array<string> = [`[${carried.head.map((comment) => ` ${comment}`).join("")}`]
  expressions.forEach((expression, i) => {
    const old = children.findIndex((child, index) => !used.has(index) && child.value === expression)
    if (old >= 0) used.add(old)
    for (const comment of old >= 0 ? carried.leading[old]! : []) lines.push(inner + comment)
    const comma = i < expressions.length - 1 || carried.trailingComma ? "," : ""
    const after = (old >= 0 ? carried.trailing[old]! : []).map((comment) => ` ${comment}`).join("")
    lines.push(`${inner}${JSON.stringify(expression)}${comma}${after}`)
  })
  for (const comment of carried.dangling) lines.push(inner + comment)
  lines.push(`${outer}]`)
  return lines.join(formatting.eol ?? "\n")
}
