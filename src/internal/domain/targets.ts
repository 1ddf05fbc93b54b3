/**
 * A job's own targets, stored as its target instead of its call's: a
 * webhook (a URL, a method, headers) and a Workflow (a binding); and the
 * rule that keeps the scheduler from being turned against the network it
 * runs in (the SSRF guard). Checked where a job is prepared and again by
 * the `SchedulerDO`, against its own policy, when it stores the job and
 * when it sends it.
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

/** The methods a webhook is delivered with; each carries the payload as its JSON body. */
export const WebhookMethod = Schema.Literal("POST", "PUT", "PATCH", "DELETE")
export type WebhookMethod = typeof WebhookMethod.Type

/** At most so many headers of the user's own on a webhook. */
export const MAX_WEBHOOK_HEADERS = 32

/** The most of a receiver's answer that is read (and kept, as the job's result); the rest is dropped. */
export const MAX_WEBHOOK_RESPONSE_BYTES = 16_384

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/
/** Headers the delivery sets itself, or that a fetch would refuse. */
const RESERVED_HEADERS = /^(host|content-length|content-type|transfer-encoding|connection|x-lunora-.*)$/i

const headerNameProblem = (name: string): string | undefined =>
  !HEADER_NAME.test(name)
    ? `"${name}" is not a header name`
    : RESERVED_HEADERS.test(name)
    ? `the header ${name} is set by the delivery itself`
    : undefined

const WebhookHeaders = Schema.Record({
  key: Schema.String,
  value: Schema.String.pipe(
    Schema.maxLength(4_096),
    Schema.filter((value) => !/[\r\n\0]/.test(value) || "a header value may not hold a line break")
  )
}).pipe(
  Schema.filter((headers) => {
    const names = Object.keys(headers)
    if (names.length > MAX_WEBHOOK_HEADERS) return `a webhook takes at most ${MAX_WEBHOOK_HEADERS} headers`
    for (const name of names) {
      const problem = headerNameProblem(name)
      if (problem !== undefined) return problem
    }
    return true
  })
)

/** A webhook's target as stored with its job: `{ webhook: { url, method, headers } }` is the job's target. */
export const WebhookTarget = Schema.Struct({
  url: Schema.String.pipe(Schema.maxLength(2_048)),
  method: WebhookMethod,
  headers: WebhookHeaders
})
export type WebhookTarget = typeof WebhookTarget.Type

/** Which webhook URLs a scheduler sends to. */
export interface WebhookPolicy {
  /** `http://` and `https://` to loopback (localhost, 127.0.0.0/8, [::1]), for local development. */
  readonly allowLoopback: boolean
  /** When set, only these hosts (`api.example.com`, or `*.example.com` for its subdomains). */
  readonly hosts?: ReadonlyArray<string> | undefined
}

const isLoopback = (host: string) =>
  host === "localhost" || host.endsWith(".localhost") || host === "[::1]" || /^127(\.\d{1,3}){3}$/.test(host)

/** An IPv4 literal in a private, link-local, shared, reserved or multicast range. */
const privateIpv4 = (host: string): boolean => {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host)
  if (match === null) return false
  const [a, b] = [Number(match[1]), Number(match[2])]
  return a === 0 || a === 10 || a >= 224 || (a === 100 && b >= 64 && b < 128) || (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b < 32) || (a === 192 && b === 168) || (a === 192 && b === 0) ||
    (a === 198 && (b === 18 || b === 19))
}

/** An IPv6 literal other than a public unicast address: unspecified, unique-local, link-local, multicast, mapped or NAT64. */
const privateIpv6 = (host: string): boolean => {
  if (!host.startsWith("[")) return false
  const address = host.slice(1, -1).toLowerCase()
  return address === "::" || /^f[c-d]/.test(address) || /^fe[89ab]/.test(address) || address.startsWith("ff") ||
    address.startsWith("::ffff:") || address.startsWith("64:ff9b:") || address.startsWith("::")
}

const inHosts = (host: string, hosts: ReadonlyArray<string>) =>
  hosts.some((allowed) => {
    const entry = allowed.trim().toLowerCase()
    return entry.startsWith("*.") ? host.endsWith(entry.slice(1)) && host.length > entry.length - 1 : host === entry
  })

/**
 * Why the scheduler would not send to `url` under `policy`, or `undefined`:
 * `https` only (loopback also over `http`, when allowed), no credentials or
 * fragment, no private, link-local or reserved address literal and no
 * `.local` or `.internal` name, and a host of the allow-list when there is one.
 */
export const webhookUrlProblem = (url: string, policy: WebhookPolicy): string | undefined => {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return `${JSON.stringify(url)} is not a URL`
  }
  const host = parsed.hostname.toLowerCase()
  const loopback = isLoopback(host)
  if (parsed.protocol !== "https:" && !(parsed.protocol === "http:" && loopback)) {
    return `a webhook URL must be https:// (got ${parsed.protocol}//${host})`
  }
  if (parsed.username !== "" || parsed.password !== "") return "a webhook URL may not carry credentials: send them as a header"
  if (parsed.hash !== "") return "a webhook URL may not have a fragment"
  if (loopback) {
    return policy.allowLoopback
      ? undefined
      : `${host} is a loopback address: allowed only for local development (LUNORA_SCHEDULER_WEBHOOK_LOOPBACK=true)`
  }
  if (privateIpv4(host) || privateIpv6(host)) return `${host} is a private or reserved address`
  if (host.endsWith(".local") || host.endsWith(".internal") || !host.includes(".")) {
    return `${host} is not a public host name`
  }
  if (policy.hosts !== undefined && policy.hosts.length > 0 && !inHosts(host, policy.hosts)) {
    return `${host} is not among the allowed webhook hosts (LUNORA_SCHEDULER_WEBHOOK_HOSTS)`
  }
  return undefined
}

/** The rule a client checks before anything is sent: everything but what only the scheduler's own policy decides. */
export const clientPolicy: WebhookPolicy = { allowLoopback: true }

const decodeTarget = Schema.decodeUnknownEither(WebhookTarget)

/** What a webhook's definition or a run gives: the URL, and optionally the method (POST) and headers. */
export interface Callback {
  readonly url: string
  readonly method?: WebhookMethod | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/**
 * The target to store for `callback`, or why it cannot be: the method and
 * headers checked, and the URL against every rule but the scheduler's own
 * loopback and allow-list settings.
 */
export const checkTarget = (callback: Callback): Either.Either<WebhookTarget, string> =>
  decodeTarget({ url: callback.url, method: callback.method ?? "POST", headers: callback.headers ?? {} }).pipe(
    Either.mapLeft((error) => ParseResult.TreeFormatter.formatErrorSync(error)),
    Either.flatMap((target) => {
      const problem = webhookUrlProblem(target.url, clientPolicy)
      return problem === undefined ? Either.right(target) : Either.left(problem)
    })
  )

/** A workflow target: the Worker's Workflow binding whose instance a job's attempt creates. */
export const WorkflowTarget = Schema.Struct({
  binding: Schema.String.pipe(Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]*$/, {
    message: () => "binding must be the name of a Workflow binding of the Worker"
  }))
})
export type WorkflowTarget = typeof WorkflowTarget.Type

/**
 * A job's own target, stored as its target instead of its call's: a
 * webhook, or a Workflow to start an instance of.
 */
export const OwnTarget = Schema.Union(
  Schema.Struct({ webhook: WebhookTarget }),
  Schema.Struct({ workflow: WorkflowTarget })
)
export type OwnTarget = typeof OwnTarget.Type

/** The JSON of an own target, as a job's (or a cron's) stored target. */
export const ownTargetText = (target: OwnTarget): string => JSON.stringify(target)

/** Whether a stored target is a job's own (a webhook's or a Workflow's): one job per request, never a batch. */
export const isOwnTargetText = (target: string | null): boolean =>
  target !== null && (target.startsWith("{\"webhook\"") || target.startsWith("{\"workflow\""))

const decodeOwnTarget = Schema.decodeUnknownEither(Schema.parseJson(OwnTarget))

/** The own target a job's stored target is, if it is one (a damaged one is none: the job cannot be sent). */
export const ownTargetOf = (target: string | null): OwnTarget | undefined =>
  isOwnTargetText(target) ? Either.getOrUndefined(decodeOwnTarget(target)) : undefined
