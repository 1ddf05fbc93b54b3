/// <reference types="node" />
/**
 * The services `@effect/cli` runs on (`FileSystem`, `Path`, `Terminal`), over
 * `node:` builtins: what the `lunora-scheduler` command and `@effect/cli`'s own
 * path options, help and prompts call, and nothing more. A file system
 * operation not written here fails with `NotFound`, as `FileSystem.makeNoop`
 * does.
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Terminal from "@effect/platform/Terminal"
import { BadArgument, SystemError, type SystemErrorReason } from "@effect/platform/Error"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Mailbox from "effect/Mailbox"
import * as Option from "effect/Option"
import type { Stats } from "node:fs"
import * as NodeFs from "node:fs/promises"
import { tmpdir } from "node:os"
import * as NodePath from "node:path"
import * as Readline from "node:readline"
import { fileURLToPath, pathToFileURL } from "node:url"

const REASONS: Readonly<Record<string, SystemErrorReason>> = {
  ENOENT: "NotFound",
  EACCES: "PermissionDenied",
  EPERM: "PermissionDenied",
  EEXIST: "AlreadyExists",
  EISDIR: "BadResource",
  ENOTDIR: "BadResource",
  EBUSY: "Busy",
  ETIMEDOUT: "TimedOut"
}

const systemError = (method: string, path: string) => (cause: unknown): SystemError => {
  const error = cause as NodeJS.ErrnoException
  return new SystemError({
    module: "FileSystem",
    method,
    pathOrDescriptor: path,
    reason: REASONS[error.code ?? ""] ?? "Unknown",
    ...(error.syscall === undefined ? {} : { syscall: error.syscall }),
    description: error.message,
    cause
  })
}

const call = <A>(method: string, path: string, run: () => Promise<A>) =>
  Effect.tryPromise({ try: run, catch: systemError(method, path) })

const typeOf = (stats: Stats): FileSystem.File.Type =>
  stats.isFile() ? "File" :
  stats.isDirectory() ? "Directory" :
  stats.isSymbolicLink() ? "SymbolicLink" :
  stats.isBlockDevice() ? "BlockDevice" :
  stats.isCharacterDevice() ? "CharacterDevice" :
  stats.isFIFO() ? "FIFO" :
  stats.isSocket() ? "Socket" :
  "Unknown"

const infoOf = (stats: Stats): FileSystem.File.Info => ({
  type: typeOf(stats),
  mtime: Option.some(stats.mtime),
  atime: Option.some(stats.atime),
  birthtime: Option.some(stats.birthtime),
  dev: stats.dev,
  ino: Option.some(stats.ino),
  mode: stats.mode,
  nlink: Option.some(stats.nlink),
  uid: Option.some(stats.uid),
  gid: Option.some(stats.gid),
  rdev: Option.some(stats.rdev),
  size: FileSystem.Size(stats.size),
  blksize: Option.some(FileSystem.Size(stats.blksize)),
  blocks: Option.some(stats.blocks)
})

const makeTempDirectory = (options?: FileSystem.MakeTempDirectoryOptions) => {
  const prefix = NodePath.join(options?.directory ?? tmpdir(), options?.prefix ?? "")
  return call("makeTempDirectory", prefix, () => NodeFs.mkdtemp(prefix))
}

const remove = (path: string, options?: FileSystem.RemoveOptions) =>
  call("remove", path, () => NodeFs.rm(path, { recursive: options?.recursive ?? false, force: options?.force ?? false }))

/**
 * `FileSystem` over `node:fs/promises`: access, exists, read, write, stat,
 * temporary directories and remove.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFileSystem: Layer.Layer<FileSystem.FileSystem> = FileSystem.layerNoop({
  access: (path) => call("access", path, () => NodeFs.access(path)),
  exists: (path) => Effect.promise(() => NodeFs.access(path).then(() => true, () => false)),
  readFile: (path) => call("readFile", path, () => NodeFs.readFile(path)),
  readFileString: (path, encoding) =>
    call("readFileString", path, () => NodeFs.readFile(path, { encoding: (encoding ?? "utf8") as BufferEncoding })),
  writeFile: (path, data, options) =>
    call("writeFile", path, () => NodeFs.writeFile(path, data, { flag: options?.flag, mode: options?.mode })),
  writeFileString: (path, data, options) =>
    call("writeFileString", path, () => NodeFs.writeFile(path, data, { flag: options?.flag, mode: options?.mode })),
  stat: (path) => Effect.map(call("stat", path, () => NodeFs.stat(path)), infoOf),
  makeTempDirectory,
  makeTempDirectoryScoped: (options) =>
    Effect.acquireRelease(makeTempDirectory(options), (directory) =>
      Effect.ignore(remove(directory, { recursive: true, force: true }))),
  remove
})

const fileUrlError = (method: string, cause: unknown) =>
  new BadArgument({ module: "Path", method, description: cause instanceof Error ? cause.message : String(cause), cause })

/**
 * `Path` over `node:path` and `node:url`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerPath: Layer.Layer<Path.Path> = Layer.succeed(Path.Path, {
  [Path.TypeId]: Path.TypeId,
  ...NodePath,
  fromFileUrl: (url) => Effect.try({ try: () => fileURLToPath(url), catch: (cause) => fileUrlError("fromFileUrl", cause) }),
  toFileUrl: (path) => Effect.try({ try: () => pathToFileURL(path), catch: (cause) => fileUrlError("toFileUrl", cause) })
})

const isQuit = (input: Terminal.UserInput) => input.key.ctrl && (input.key.name === "c" || input.key.name === "d")

const readInput = Effect.gen(function*() {
  const input = process.stdin
  yield* Effect.acquireRelease(
    Effect.sync(() => {
      const lines = Readline.createInterface({ input, escapeCodeTimeout: 50 })
      Readline.emitKeypressEvents(input, lines)
      if (input.isTTY) input.setRawMode(true)
      return lines
    }),
    (lines) =>
      Effect.sync(() => {
        if (input.isTTY) input.setRawMode(false)
        lines.close()
      })
  )
  const mailbox = yield* Mailbox.make<Terminal.UserInput>()
  const onKeypress = (text: string | undefined, key: Readline.Key | undefined) => {
    const userInput: Terminal.UserInput = {
      input: Option.fromNullable(text),
      key: { name: key?.name ?? "", ctrl: key?.ctrl ?? false, meta: key?.meta ?? false, shift: key?.shift ?? false }
    }
    mailbox.unsafeOffer(userInput)
    if (isQuit(userInput)) mailbox.unsafeDone(Exit.void)
  }
  input.on("keypress", onKeypress)
  yield* Effect.addFinalizer(() => Effect.sync(() => input.off("keypress", onKeypress)))
  return mailbox as Mailbox.ReadonlyMailbox<Terminal.UserInput>
})

const readLine = Effect.async<string, Terminal.QuitException>((resume) => {
  const lines = Readline.createInterface({ input: process.stdin })
  const onLine = (line: string) => {
    lines.off("close", onClose)
    lines.close()
    resume(Effect.succeed(line))
  }
  const onClose = () => resume(Effect.fail(new Terminal.QuitException()))
  lines.once("line", onLine)
  lines.once("close", onClose)
  return Effect.sync(() => {
    lines.off("line", onLine)
    lines.off("close", onClose)
    lines.close()
  })
})

/**
 * `Terminal` over `process.stdin` and `process.stdout`: the size, keypresses
 * and lines the prompts read, and the text they display.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerTerminal: Layer.Layer<Terminal.Terminal> = Layer.succeed(Terminal.Terminal, {
  columns: Effect.sync(() => process.stdout.columns ?? 80),
  rows: Effect.sync(() => process.stdout.rows ?? 24),
  isTTY: Effect.sync(() => process.stdout.isTTY === true),
  readInput,
  readLine,
  display: (text) =>
    Effect.async<void, BadArgument>((resume) => {
      process.stdout.write(text, (error) =>
        resume(
          error === null || error === undefined
            ? Effect.void
            : Effect.fail(new BadArgument({ module: "Terminal", method: "display", description: error.message, cause: error }))
        ))
    }).pipe(Effect.uninterruptible)
})

/**
 * Every service `@effect/cli` needs (`CliApp.Environment`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<FileSystem.FileSystem | Path.Path | Terminal.Terminal> = Layer.mergeAll(
  layerFileSystem,
  layerPath,
  layerTerminal
)
