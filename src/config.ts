/**
 * Loads and validates the JSON config (DESIGN.md "Config"); the frozen `Config` it returns is what
 * every other module receives.
 *
 * Validation runs in three passes so one run reports every problem, not just the first:
 *   1. structure — the zod schema below (types, ranges, unknown keys), issues mapped to one line each;
 *   2. relations — checks that span fields (duplicate zones, key references, Min > Max), run on
 *      the raw input and skipped wherever pass 1 already found the field malformed;
 *   3. secrets — `secretFile` / `secretEnv` are read and every secret is checked as base64.
 * Each problem is `<json path>: <what was expected>, got <what was found>`. A secret's value never
 * appears in a problem, whatever is wrong with it.
 *
 * Paths: `database` is resolved against the process cwd (like any path given on a command line);
 * `secretFile` and the TLS files (`primaries[].tls`, `tlsListen`) are resolved against the
 * directory of the config file (`baseDir`), so a config and its key files move together; the TLS
 * files are read in pass 3 too, so a missing or malformed certificate is a config problem.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import tls from 'node:tls';
import { z } from 'zod';
import { RATE_LIMIT_DEFAULTS, type RateLimitConfig } from './answer/rrl.js';
import { nsidPayload } from './dns/edns.js';

export type { RateLimitConfig } from './answer/rrl.js';

// ---------------------------------------------------------------------------------------------
// Public types: the resolved config. Durations are whole seconds, sizes bytes.

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
export type TsigAlgorithm =
  | 'hmac-md5'
  | 'hmac-sha1'
  | 'hmac-sha224'
  | 'hmac-sha256'
  | 'hmac-sha384'
  | 'hmac-sha512';

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/** A TSIG key (RFC 8945). `secret` is the decoded key; never log or print it. */
export interface TsigKey {
  /** Lower case, no trailing dot — the key's owner name on the wire. */
  readonly name: string;
  readonly algorithm: TsigAlgorithm;
  readonly secret: Buffer;
}

/**
 * Zone transfers from a primary over TLS (RFC 9103, XoT). Files are absolute paths (resolved
 * against the config file's directory) and are read at each connection, so renewed files are used
 * without a restart.
 */
export interface PrimaryTls {
  /** PEM CA certificates the primary's certificate must chain to; absent: the pin alone decides. */
  readonly caFile?: string;
  /** Name the certificate must carry (and SNI); absent: the certificate must carry the address. */
  readonly serverName?: string;
  /** `sha256/<base64>` of the certificate's SubjectPublicKeyInfo (RFC 7858 §4.2). */
  readonly pin?: string;
  /** Our client certificate and its key, for a primary that requires mutual TLS. */
  readonly certFile?: string;
  readonly keyFile?: string;
}

/** A primary to transfer from, or a peer to NOTIFY (`alsoNotify`). */
export interface Primary extends Endpoint {
  /** Name of the TSIG key in `Config.keys` (normalised); absent = unsigned. */
  readonly key?: string;
  /** SOA queries, IXFR and AXFR over TLS (primaries only; port 853 unless given). */
  readonly tls?: PrimaryTls;
}

/** A listener serving queries and zone transfers over TLS (RFC 7858, RFC 9103). */
export interface TlsListen extends Endpoint {
  /** Absolute paths of the PEM certificate chain and its private key (re-read on SIGHUP). */
  readonly certFile: string;
  readonly keyFile: string;
}

export interface ZoneConfig {
  /** Lower case, no trailing dot. */
  readonly name: string;
  readonly primaries: readonly Primary[];
  /**
   * Who may NOTIFY us: IP, CIDR (`192.0.2.0/24`) or `key:NAME` entries.
   * Empty = the primaries' addresses (the default).
   */
  readonly allowNotify: readonly string[];
  /**
   * Who may transfer the zone from us; same forms, and any of them prefixed `tls:` to match only
   * over TLS. Empty = refuse everyone (the default).
   */
  readonly allowTransfer: readonly string[];
  /** Transfers of this zone only over TLS (`tlsListen`), whatever `allowTransfer` admits. */
  readonly requireTls: boolean;
  readonly alsoNotify: readonly Primary[];
  /** `ixfr`: try IXFR, fall back to AXFR; `axfr`: always AXFR. */
  readonly transfer: 'ixfr' | 'axfr';
  /** `explicit`: NOTIFY only `alsoNotify`; `yes`: also the NS names' addresses; `no`: nobody. */
  readonly notify: 'explicit' | 'yes' | 'no';
  /** Clamps on the SOA timers, seconds; a `*Max` left undefined means no maximum. */
  readonly refreshMin: number;
  readonly refreshMax?: number;
  readonly retryMin: number;
  readonly retryMax?: number;
  readonly expireMin: number;
  readonly expireMax?: number;
  /** Limits on one incoming transfer (CVE-2016-6170..6173). */
  readonly maxRecords: number;
  readonly maxTransferBytes: number;
  readonly maxTransferSeconds: number;
  /** Longest silence from the primary during a transfer, seconds. */
  readonly maxIdleSeconds: number;
  /** Most RRs of one type at one owner (one RRset); BIND's CVE-2024-1737 limit. */
  readonly maxRecordsPerType: number;
  /** Most RR types at one owner (an RRSIG counts once per type it covers); CVE-2024-1737. */
  readonly maxTypesPerName: number;
  /** Refuse a transfer deleting more than this percentage of the zone's records; absent = off. */
  readonly maxDeletePercent?: number;
  /** Applied changes kept per zone in `changes` (older ones are pruned with their RRs). */
  readonly historyLimit: number;
  /**
   * What optional data answers carry, with BIND's `minimal-responses` meanings: `no-auth-recursive`
   * (default) leaves the zone's NS out of positive answers to queries with RD; `no-auth` always;
   * `yes` also leaves out additional data (referral glue stays); `no` adds both.
   */
  readonly minimalResponses: MinimalResponses;
  /** RFC 8482: answer ANY over UDP with one RRset (BIND's `minimal-any`); off by default. */
  readonly minimalAny: boolean;
}

/** A listen address; `rateLimit: false` exempts it from response rate limiting. */
export interface ListenEndpoint extends Endpoint {
  readonly rateLimit?: boolean;
}
export type MinimalResponses = 'no-auth-recursive' | 'no-auth' | 'yes' | 'no';

export interface Config {
  /** Each entry is bound for both UDP and TCP. */
  readonly listen: readonly ListenEndpoint[];
  /** TLS listeners (queries and zone transfers out); none by default. */
  readonly tlsListen: readonly TlsListen[];
  /** SQLite file, absolute (resolved against the cwd), or `:memory:`. */
  readonly database: string;
  readonly logLevel: LogLevel;
  /** Our EDNS UDP payload size (RFC 6891), bytes. */
  readonly udpSize: number;
  /** Idle TCP connections are closed after this many seconds (RFC 7766 §6.2.3). */
  readonly tcpIdleSeconds: number;
  /** Concurrent TCP client connections accepted (RFC 7766 §6.2.2); more are refused. */
  readonly maxTcpConnections: number;
  /**
   * Threads answering UDP, each with its own socket on every listen address (SO_REUSEPORT) and
   * its own answer cache, all reading the same in-memory zone images. 1: the main thread answers
   * UDP itself.
   */
  readonly workers: number;
  /** SO_RCVBUF asked for each UDP socket, bytes (a burst waits there rather than being dropped). */
  readonly udpReceiveBuffer: number;
  /** Bytes of encoded answers cached by each thread answering UDP (the clients of each differ). */
  readonly answerCacheBytes: number;
  /** Loopback HTTP status endpoint. */
  readonly control?: Endpoint;
  /** Scrape listener serving only /metrics, /healthz and /readyz (may face a monitoring network). */
  readonly metrics?: Endpoint;
  /**
   * Answers to class CH TXT identity queries (version.bind / version.server, hostname.bind /
   * id.server); absent, they are REFUSED so nothing about the server leaks.
   */
  readonly identity?: { readonly version?: string; readonly hostname?: string; readonly nsid?: string };
  /**
   * Response rate limiting of UDP answers (BIND's `rate-limit`), server-wide; absent = off.
   * Rates left out take BIND's defaults (resolved here).
   */
  readonly rateLimit?: RateLimitConfig;
  /** Keyed by normalised name (lower case, no trailing dot). */
  readonly keys: ReadonlyMap<string, TsigKey>;
  readonly zones: readonly ZoneConfig[];
  /** Catalog zones (RFC 9432) whose members ns2 serves as secondary zones. */
  readonly catalogs: readonly CatalogConfig[];
  /** A catalog of every zone ns2 serves, for secondaries chained behind it (RFC 9432). */
  readonly produceCatalog?: ProducedCatalog;
  /** SOA checks and transfers running at once; due zones wait, longest overdue first. */
  readonly maxConcurrentTransfers: number;
}

/** Zone-level settings as written (before defaults are filled in). */
export type ZoneFieldsInput = Readonly<z.output<typeof zoneFieldsSchema>>;

/** A consumed catalog zone (RFC 9432). */
export interface CatalogConfig {
  /** Lower case, no trailing dot. */
  readonly name: string;
  /** The catalog zone itself, a secondary zone transferred from `primaries` with `defaults`. */
  readonly zone: ZoneConfig;
  /** Settings of every member: `zoneDefaults` (over `defaults`); the member's groups go on top. */
  readonly zoneDefaults: ZoneFieldsInput;
  /** Settings by `group` property value (RFC 9432 §4.4.2). */
  readonly groups: ReadonlyMap<string, ZoneFieldsInput>;
  /** The top-level `defaults`, kept to resolve members. */
  readonly defaults: ZoneFieldsInput;
}

export interface ProducedCatalog {
  /** Lower case, no trailing dot. */
  readonly name: string;
  /**
   * As a zone: no primaries (ns2 writes it); `allowTransfer` and `alsoNotify` as given, else from
   * `defaults`.
   */
  readonly zone: ZoneConfig;
}

/** A config that cannot be used; `problems` holds one line per problem. */
export class ConfigError extends Error {
  readonly code = 'NS2_ERR_CONFIG';
  readonly problems: string[];
  readonly file?: string;

  constructor(problems: string[], file?: string) {
    const n = problems.length;
    super(
      `${file ? `${file}: ` : ''}invalid config (${n} problem${n === 1 ? '' : 's'}): ${problems.join('; ')}`,
    );
    this.name = 'ConfigError';
    this.problems = problems;
    this.file = file;
  }
}

// ---------------------------------------------------------------------------------------------
// Defaults

const DEFAULTS = {
  listen: [{ address: '127.0.0.1', port: 53 }],
  port: 53,
  tlsPort: 853, // RFC 7858 §3.1, RFC 9103 §7.1
  database: 'data/ns2.db',
  logLevel: 'info',
  udpSize: 1232, // bytes; the DNS Flag Day 2020 value, avoids IP fragmentation
  tcpIdleSeconds: 10, // seconds
  maxTcpConnections: 1000,
  workers: Math.max(1, Math.min(64, os.availableParallelism())), // one per CPU
  udpReceiveBuffer: 8 * 1024 * 1024, // bytes
  answerCacheBytes: 64 * 1024 * 1024, // bytes, per thread answering UDP
  maxConcurrentTransfers: 20,
} as const;

/** Built-in zone-level defaults; `defaults` in the config overrides them, a zone overrides both. */
export const ZONE_DEFAULTS = deepFreeze({
  allowNotify: [] as string[], // = the primaries' addresses
  allowTransfer: [] as string[], // = refuse everyone
  requireTls: false,
  alsoNotify: [] as Primary[],
  transfer: 'ixfr',
  notify: 'explicit',
  refreshMin: 2, // seconds
  refreshMax: undefined as number | undefined, // no maximum
  retryMin: 2, // seconds
  retryMax: undefined as number | undefined,
  expireMin: 2, // seconds
  expireMax: undefined as number | undefined,
  maxRecords: 5_000_000, // RRs per transfer
  maxTransferBytes: 1_000_000_000, // bytes per transfer
  maxTransferSeconds: 3600, // seconds per transfer
  maxIdleSeconds: 60, // seconds without data from the primary
  maxRecordsPerType: 100, // RRs in one RRset (BIND 9.18.28+ default, CVE-2024-1737)
  maxTypesPerName: 100, // RR types at one owner (BIND 9.18.28+ default, CVE-2024-1737)
  maxDeletePercent: undefined as number | undefined, // off
  historyLimit: 100, // changes kept per zone
  minimalResponses: 'no-auth-recursive' as MinimalResponses, // BIND 9.18's default
  minimalAny: false, // BIND's default: ANY answered in full
} as const);

const TIMER_PAIRS = [
  ['refreshMin', 'refreshMax'],
  ['retryMin', 'retryMax'],
  ['expireMin', 'expireMax'],
] as const;

const SECRET_SOURCES = ['secret', 'secretFile', 'secretEnv'] as const;

// ---------------------------------------------------------------------------------------------
// Names and addresses

const LABEL_CHARS = /^[a-z0-9_/-]+$/i;

/** Lower case, trailing dot removed. */
export function normaliseName(name: string): string {
  return (name.endsWith('.') ? name.slice(0, -1) : name).toLowerCase();
}

/**
 * Why `name` is not a usable domain name in presentation form, or undefined if it is. Letters,
 * digits, `-`, `_` and `/` (RFC 2317 classless reverse zones) are allowed; no escapes; the root
 * is refused (ns2 serves zones below it).
 */
export function domainNameProblem(name: string): string | undefined {
  if (name === '.' || name === '') return 'the root is not allowed';
  const n = name.endsWith('.') ? name.slice(0, -1) : name;
  if (n.length > 253) return `${n.length} characters, at most 253 allowed`;
  for (const label of n.split('.')) {
    if (label === '') return 'empty label';
    if (label.length > 63) return `label of ${label.length} characters, at most 63 allowed`;
    if (!LABEL_CHARS.test(label)) {
      const bad = [...label].find((c) => !LABEL_CHARS.test(c));
      return `character ${JSON.stringify(bad)} not allowed`;
    }
  }
  return undefined;
}

/** Why `entry` is not an ACL entry (IP, CIDR or `key:NAME`), or undefined if it is. */
function aclEntryProblem(entry: string): string | undefined {
  if (entry.startsWith('key:')) {
    const p = domainNameProblem(entry.slice(4));
    return p && `key name: ${p}`;
  }
  const slash = entry.indexOf('/');
  if (slash < 0) return isIP(entry) ? undefined : 'not an IP address';
  const family = isIP(entry.slice(0, slash));
  if (family === 0) return 'not an IP address before "/"';
  const bits = entry.slice(slash + 1);
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return `prefix length must be 0..${max}`;
  return undefined;
}

/** Why `entry` is not an allowTransfer entry: an ACL entry, optionally prefixed `tls:`. */
function transferAclEntryProblem(entry: string): string | undefined {
  return aclEntryProblem(entry.startsWith('tls:') ? entry.slice(4) : entry);
}

/** Why `pin` is not `sha256/<base64 of 32 bytes>`, or undefined if it is. */
function pinProblem(pin: string): string | undefined {
  if (!pin.startsWith('sha256/')) return 'must start with "sha256/"';
  const b64 = pin.slice(7);
  if (!BASE64.test(b64) || Buffer.from(b64, 'base64').length !== 32) return 'not 32 bytes of base64';
  return undefined;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

// ---------------------------------------------------------------------------------------------
// Schema (pass 1). Every leaf carries its own "expected …" text; `toProblems` adds the path and
// what was found. Zone-level fields have no zod defaults: resolution needs to know which level
// set them.

const e = (expected: string) => ({ error: `expected ${expected}` });

function intRange(min: number, max?: number) {
  const msg = e(max === undefined ? `an integer >= ${min}` : `an integer ${min}..${max}`);
  const schema = z.int(msg).min(min, msg);
  return max === undefined ? schema : schema.max(max, msg);
}

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, e(`one of ${values.map((v) => JSON.stringify(v)).join(', ')}`));
}

function checked(expected: string, problem: (s: string) => string | undefined) {
  const msg = `expected ${expected}`;
  return z.string({ error: msg }).superRefine((s, ctx) => {
    const reason = problem(s);
    if (reason !== undefined) ctx.addIssue({ code: 'custom', message: msg, params: { reason } });
  });
}

const strictObject = <T extends z.ZodRawShape>(shape: T) => z.strictObject(shape, e('an object'));
const array = <T extends z.ZodType>(item: T) => z.array(item, e('an array'));

const ipAddress = checked('an IP address', (s) => (isIP(s) ? undefined : 'not an IPv4 or IPv6 literal'));
const port = intRange(1, 65535);
const domainName = checked('a domain name', domainNameProblem).transform(normaliseName);
const normaliseAclEntry = (s: string): string =>
  s.startsWith('key:') ? `key:${normaliseName(s.slice(4))}` : s;
const aclEntry = checked('an IP address, CIDR prefix or "key:NAME"', aclEntryProblem).transform(
  normaliseAclEntry,
);
const transferAclEntry = checked(
  'an IP address, CIDR prefix or "key:NAME", optionally prefixed "tls:"',
  transferAclEntryProblem,
).transform((s) => (s.startsWith('tls:') ? `tls:${normaliseAclEntry(s.slice(4))}` : normaliseAclEntry(s)));
const filePath = z.string(e('a file path')).min(1, e('a file path'));
const seconds = intRange(1);

const listenEndpoint = strictObject({
  address: ipAddress,
  port: port.default(DEFAULTS.port),
  rateLimit: z.boolean(e('true or false')).optional(),
});
const cidr = checked('an IP address or CIDR prefix', (s) =>
  s.startsWith('key:') ? 'key: entries are not allowed here' : aclEntryProblem(s),
);
/** BIND's DNS_RRL_MAX_RATE. */
const perSecond = intRange(0, 1000);
const rateLimitSchema = strictObject({
  responsesPerSecond: perSecond.optional(),
  referralsPerSecond: perSecond.optional(),
  nodataPerSecond: perSecond.optional(),
  nxdomainsPerSecond: perSecond.optional(),
  errorsPerSecond: perSecond.optional(),
  allPerSecond: perSecond.optional(),
  window: intRange(1, 3600).optional(),
  slip: intRange(0, 10).optional(),
  ipv4PrefixLength: intRange(0, 32).optional(),
  ipv6PrefixLength: intRange(0, 128).optional(),
  exemptClients: array(cidr).optional(),
  logOnly: z.boolean(e('true or false')).optional(),
  maxTableSize: intRange(1, 10_000_000).optional(),
});
const peer = strictObject({
  address: ipAddress,
  port: port.default(DEFAULTS.port),
  key: domainName.optional(),
});

// Readability and PEM contents of the files are checked in pass 3 (`checkTlsFiles`).
const primaryTls = strictObject({
  caFile: filePath.optional(),
  serverName: domainName.optional(),
  pin: checked('"sha256/<base64 SPKI hash>"', pinProblem).optional(),
  certFile: filePath.optional(),
  keyFile: filePath.optional(),
});
const primary = peer
  .extend({ port: port.optional(), tls: primaryTls.optional() })
  .transform(({ port: p, ...rest }) => ({
    ...rest,
    port: p ?? (rest.tls ? DEFAULTS.tlsPort : DEFAULTS.port),
  }));
const tlsListen = strictObject({
  address: ipAddress,
  port: port.default(DEFAULTS.tlsPort),
  certFile: filePath,
  keyFile: filePath,
});

const zoneFieldsShape = {
  allowNotify: array(aclEntry).optional(),
  allowTransfer: array(transferAclEntry).optional(),
  requireTls: z.boolean(e('true or false')).optional(),
  alsoNotify: array(peer).optional(),
  transfer: oneOf(['ixfr', 'axfr']).optional(),
  notify: oneOf(['explicit', 'yes', 'no']).optional(),
  refreshMin: seconds.optional(),
  refreshMax: seconds.optional(),
  retryMin: seconds.optional(),
  retryMax: seconds.optional(),
  expireMin: seconds.optional(),
  expireMax: seconds.optional(),
  maxRecords: intRange(1).optional(),
  maxTransferBytes: intRange(1).optional(),
  maxTransferSeconds: seconds.optional(),
  maxIdleSeconds: seconds.optional(),
  maxRecordsPerType: intRange(1).optional(),
  maxTypesPerName: intRange(1).optional(),
  maxDeletePercent: z
    .number(e('a number 0..100 (percent)'))
    .min(0, e('a number 0..100 (percent)'))
    .max(100, e('a number 0..100 (percent)'))
    .optional(),
  historyLimit: intRange(1).optional(),
  minimalResponses: oneOf(['no-auth-recursive', 'no-auth', 'yes', 'no']).optional(),
  minimalAny: z.boolean(e('true or false')).optional(),
};

const zoneFieldsSchema = strictObject(zoneFieldsShape);

const zoneSchema = strictObject({
  name: domainName,
  primaries: array(primary).min(1, e('a non-empty array')),
  ...zoneFieldsShape,
});

const catalogSchema = strictObject({
  name: domainName,
  // As a zone's: `tls` here is used for the catalog and inherited by every member.
  primaries: array(primary).min(1, e('a non-empty array')),
  zoneDefaults: zoneFieldsSchema.default({}),
  groups: z.record(z.string(), zoneFieldsSchema, e('an object')).default({}),
});

const keySchema = strictObject({
  algorithm: oneOf(['hmac-md5', 'hmac-sha1', 'hmac-sha224', 'hmac-sha256', 'hmac-sha384', 'hmac-sha512']),
  // Exactly-one-of and the base64 check are pass 3: the value may come from a file or the env.
  secret: z.string(e('a base64 string')).optional(),
  secretFile: z.string(e('a file path')).min(1, e('a file path')).optional(),
  secretEnv: checked('an environment variable name', (s) =>
    /^[A-Za-z_][A-Za-z0-9_]*$/.test(s) ? undefined : 'letters, digits and "_" only',
  ).optional(),
});

const configSchema = strictObject({
  listen: array(listenEndpoint)
    .min(1, e('a non-empty array'))
    .default(() => DEFAULTS.listen.map((l) => ({ ...l }))),
  tlsListen: array(tlsListen).default([]),
  database: z.string(e('a file path')).min(1, e('a file path')).default(DEFAULTS.database),
  logLevel: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default(DEFAULTS.logLevel),
  udpSize: intRange(512, 4096).default(DEFAULTS.udpSize),
  tcpIdleSeconds: intRange(1, 3600).default(DEFAULTS.tcpIdleSeconds),
  maxTcpConnections: intRange(1, 100_000).default(DEFAULTS.maxTcpConnections),
  workers: intRange(1, 64).default(DEFAULTS.workers),
  udpReceiveBuffer: intRange(0, 1024 * 1024 * 1024).default(DEFAULTS.udpReceiveBuffer),
  answerCacheBytes: intRange(0, 64 * 1024 * 1024 * 1024).default(DEFAULTS.answerCacheBytes),
  control: strictObject({ address: ipAddress, port }).optional(),
  metrics: strictObject({ address: ipAddress, port }).optional(),
  identity: strictObject({
    version: z.string(e('a string')).max(255, e('at most 255 characters')).optional(),
    hostname: z.string(e('a string')).max(255, e('at most 255 characters')).optional(),
    // RFC 5001 §2.3: the payload is opaque octets; text, or "hex:" and an even number of hex digits.
    nsid: z
      .string(e('a string'))
      .refine(
        (v) => nsidPayload(v) !== undefined,
        e('text of 1 to 128 octets, or "hex:" and 2 to 256 hex digits'),
      )
      .optional(),
  }).optional(),
  rateLimit: rateLimitSchema.optional(),
  keys: z.record(z.string(), keySchema, e('an object')).default({}),
  defaults: zoneFieldsSchema.default({}),
  zones: array(zoneSchema).default([]),
  catalogs: array(catalogSchema).default([]),
  produceCatalog: strictObject({
    name: domainName,
    allowTransfer: array(aclEntry).optional(),
    alsoNotify: array(peer).optional(),
  }).optional(),
  maxConcurrentTransfers: intRange(1, 10_000).default(DEFAULTS.maxConcurrentTransfers),
});

type ParsedConfig = z.output<typeof configSchema>;
type ParsedZoneFields = ParsedConfig['defaults'];

// ---------------------------------------------------------------------------------------------
// Problem formatting

type Path = readonly PropertyKey[];

interface Problem {
  path: Path;
  text: string;
}

/** `zones[1].primaries[0].port`, `keys["xfr-key"].secret`; the root is `(root)`. */
export function formatPath(path: Path): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out || '(root)';
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const has = (o: object, k: PropertyKey) => Object.hasOwn(o, k);

function lookup(raw: unknown, path: Path): { found: boolean; value?: unknown } {
  let cur = raw;
  for (const seg of path) {
    if (typeof cur !== 'object' || cur === null || !has(cur, seg)) return { found: false };
    cur = (cur as Record<PropertyKey, unknown>)[seg];
  }
  return { found: true, value: cur };
}

/** What was found, for "got …". Anything under a `secret` key is described, never shown. */
function show(value: unknown, path: Path): string {
  if (path[path.length - 1] === 'secret') {
    return typeof value === 'string' ? 'a string that is not valid base64' : describeType(value);
  }
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') {
    return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  }
  if (Array.isArray(value)) return value.length === 0 ? '[]' : `an array of ${value.length}`;
  return describeType(value);
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function toProblems(issue: z.core.$ZodIssue, raw: unknown): Problem[] {
  const { path } = issue;
  if (issue.code === 'unrecognized_keys')
    return issue.keys.map((k) => ({ path: [...path, k], text: 'unknown key' }));
  const at = lookup(raw, path);
  if (!at.found) return [{ path, text: 'required' }];
  const expected = issue.message.startsWith('expected ') ? issue.message : `expected ${issue.message}`;
  const reason = issue.code === 'custom' ? (issue.params?.reason as string | undefined) : undefined;
  return [{ path, text: `${expected}, got ${show(at.value, path)}${reason ? ` (${reason})` : ''}` }];
}

/** Orders paths as their keys appear in the document, a parent before its children. */
function documentOrder(raw: unknown): (a: Problem, b: Problem) => number {
  return ({ path: a }, { path: b }) => {
    let node = raw;
    for (let i = 0; i < a.length && i < b.length; i++) {
      const x = a[i];
      const y = b[i];
      if (x !== y) {
        if (typeof x === 'number' && typeof y === 'number') return x - y;
        const keys = isObject(node) ? Object.keys(node) : [];
        const rank = (k: PropertyKey) => {
          const at = keys.indexOf(String(k));
          return at < 0 ? keys.length : at; // absent ("required") keys after present ones
        };
        return rank(x) - rank(y) || (String(x) < String(y) ? -1 : 1);
      }
      node =
        typeof node === 'object' && node !== null ? (node as Record<PropertyKey, unknown>)[x] : undefined;
    }
    return a.length - b.length;
  };
}

// ---------------------------------------------------------------------------------------------
// Passes 2 and 3: relations between fields, and secrets.

const asInt = (v: unknown) => (Number.isSafeInteger(v) ? (v as number) : undefined);

interface Checked {
  problems: Problem[];
  /** Decoded secrets by the raw (as written) key name. */
  secrets: Map<string, Buffer>;
}

function checkRelations(raw: unknown, baseDir: string): Checked {
  const problems: Problem[] = [];
  const secrets = new Map<string, Buffer>();
  if (!isObject(raw)) return { problems, secrets };
  const problem = (path: Path, text: string) => problems.push({ path, text });

  // The two HTTP listeners cannot share a TCP port on one address.
  const c = raw.control;
  const m = raw.metrics;
  if (isObject(c) && isObject(m) && c.port === m.port && c.address === m.address)
    problem(['metrics', 'port'], `same address and port as "control" (${c.address} ${c.port})`);

  // keys: names, duplicates after normalisation, secrets.
  const keyNames = new Map<string, string>(); // normalised → path of first definition
  if (isObject(raw.keys)) {
    for (const [rawName, entry] of Object.entries(raw.keys)) {
      const path = ['keys', rawName];
      const nameProblem = domainNameProblem(rawName);
      if (nameProblem) {
        problem(path, `expected a key name (a domain name), got ${JSON.stringify(rawName)} (${nameProblem})`);
      } else {
        const name = normaliseName(rawName);
        const first = keyNames.get(name);
        if (first) problem(path, `duplicate key ${JSON.stringify(name)} (also ${first})`);
        else keyNames.set(name, formatPath(path));
      }
      if (isObject(entry)) {
        const secret = resolveSecret(entry, path, baseDir, problem);
        if (secret) secrets.set(rawName, secret);
      }
    }
  }
  const checkKeyRef = (path: Path, ref: unknown) => {
    if (typeof ref !== 'string' || domainNameProblem(ref)) return; // reported by pass 1
    const name = normaliseName(ref);
    if (!keyNames.has(name)) problem(path, `unknown key ${JSON.stringify(name)} (not in keys)`);
  };

  // listen and tlsListen: the same address and TCP port twice cannot both be bound.
  const bound = new Map<string, string>();
  for (const [list, defaultPort] of [
    ['listen', DEFAULTS.port],
    ['tlsListen', DEFAULTS.tlsPort],
  ] as const) {
    const entries = raw[list];
    if (!Array.isArray(entries)) continue;
    entries.forEach((l, i) => {
      if (!isObject(l) || typeof l.address !== 'string' || !isIP(l.address)) return;
      const p = l.port === undefined ? defaultPort : asInt(l.port);
      if (p === undefined) return;
      const id = `${l.address} port ${p}`;
      const first = bound.get(id);
      if (first !== undefined) problem([list, i], `duplicate address ${id} (also ${first})`);
      else bound.set(id, `${list}[${i}]`);
    });
  }
  // tlsListen: the certificate and key must load together.
  const checkPair = (path: Path, certFile: unknown, keyFile: unknown, ca?: unknown) => {
    const pem = (k: string, f: unknown) =>
      typeof f === 'string' && f !== '' ? readPem([...path, k], f) : undefined;
    const cert = pem('certFile', certFile);
    const key = pem('keyFile', keyFile);
    const caPem = pem('caFile', ca);
    try {
      if (caPem) new X509Certificate(caPem);
    } catch (err) {
      problem(
        [...path, 'caFile'],
        `expected PEM CA certificates, got a file that does not load (${tlsReason(err)})`,
      );
    }
    if (!cert || !key) return;
    try {
      tls.createSecureContext({ cert, key });
    } catch (err) {
      problem(path, `certFile and keyFile do not load as a certificate and its key (${tlsReason(err)})`);
    }
  };
  const readPem = (path: Path, file: string): Buffer | undefined => {
    const abs = resolve(baseDir, file);
    try {
      return readFileSync(abs);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      problem(path, `cannot read ${JSON.stringify(abs)} (${code})`);
      return undefined;
    }
  };
  const checkPrimaryTls = (path: Path, t: Record<string, unknown>) => {
    if (!has(t, 'caFile') && !has(t, 'pin'))
      problem(path, 'expected caFile or pin (or both): how else is the primary authenticated?');
    if (has(t, 'certFile') !== has(t, 'keyFile'))
      problem(path, 'expected certFile and keyFile together (mutual TLS), got only one');
    checkPair(path, t.certFile, t.keyFile, t.caFile);
  };
  if (Array.isArray(raw.tlsListen))
    raw.tlsListen.forEach((l, i) => {
      if (isObject(l)) checkPair(['tlsListen', i], l.certFile, l.keyFile);
    });

  // Zone-level fields, in `defaults` and in each zone.
  const defaults = isObject(raw.defaults) ? raw.defaults : {};
  const checkZoneFields = (
    path: Path,
    fields: Record<string, unknown>,
    inherited?: Record<string, unknown>,
  ) => {
    for (const list of ['primaries', 'alsoNotify'] as const) {
      const peers = fields[list];
      if (!Array.isArray(peers)) continue;
      peers.forEach((p, i) => {
        if (isObject(p) && has(p, 'key')) checkKeyRef([...path, list, i, 'key'], p.key);
      });
    }
    for (const list of ['allowNotify', 'allowTransfer'] as const) {
      const acl = fields[list];
      if (!Array.isArray(acl)) continue;
      acl.forEach((entry, i) => {
        if (typeof entry !== 'string') return;
        const e = list === 'allowTransfer' && entry.startsWith('tls:') ? entry.slice(4) : entry;
        if (e.startsWith('key:')) checkKeyRef([...path, list, i], e.slice(4));
      });
    }
    if (Array.isArray(fields.primaries))
      fields.primaries.forEach((p, i) => {
        if (isObject(p) && isObject(p.tls)) checkPrimaryTls([...path, 'primaries', i, 'tls'], p.tls);
      });
    // A Min above its Max, after resolution; reported where at least one of the two was set.
    const where = inherited ? 'from defaults' : '';
    for (const [minKey, maxKey] of TIMER_PAIRS) {
      const resolveField = (k: string) => {
        if (has(fields, k)) return { value: fields[k], set: true, from: '' };
        if (inherited && has(inherited, k)) return { value: inherited[k], set: false, from: where };
        return {
          value: ZONE_DEFAULTS[k as keyof typeof ZONE_DEFAULTS],
          set: false,
          from: 'built-in default',
        };
      };
      const min = resolveField(minKey);
      const max = resolveField(maxKey);
      const minV = asInt(min.value);
      const maxV = asInt(max.value);
      if (minV === undefined || maxV === undefined || minV <= maxV || !(min.set || max.set)) continue;
      if (min.set) {
        const src = max.from ? `, ${max.from}` : '';
        problem([...path, minKey], `expected at most ${maxKey} (${maxV}${src}), got ${minV}`);
      } else {
        problem([...path, maxKey], `expected at least ${minKey} (${minV}, ${min.from}), got ${maxV}`);
      }
    }
  };
  checkZoneFields(['defaults'], defaults);

  // One name is one zone: a static zone, a catalog, or the catalog we produce.
  const seen = new Map<string, string>();
  const claim = (path: Path, name: unknown) => {
    if (typeof name !== 'string' || domainNameProblem(name)) return;
    const n = normaliseName(name);
    const first = seen.get(n);
    if (first !== undefined) problem(path, `duplicate zone ${JSON.stringify(n)} (also ${first})`);
    else seen.set(n, formatPath(path.slice(0, -1)));
  };
  if (Array.isArray(raw.zones)) {
    raw.zones.forEach((zone, i) => {
      if (!isObject(zone)) return;
      checkZoneFields(['zones', i], zone, defaults);
      claim(['zones', i, 'name'], zone.name);
    });
  }
  if (Array.isArray(raw.catalogs)) {
    raw.catalogs.forEach((cat, i) => {
      if (!isObject(cat)) return;
      checkZoneFields(['catalogs', i], { primaries: cat.primaries }, defaults);
      if (isObject(cat.zoneDefaults))
        checkZoneFields(['catalogs', i, 'zoneDefaults'], cat.zoneDefaults, defaults);
      if (isObject(cat.groups))
        for (const [g, fields] of Object.entries(cat.groups))
          if (isObject(fields)) checkZoneFields(['catalogs', i, 'groups', g], fields, defaults);
      claim(['catalogs', i, 'name'], cat.name);
    });
  }
  if (isObject(raw.produceCatalog)) {
    checkZoneFields(['produceCatalog'], raw.produceCatalog);
    claim(['produceCatalog', 'name'], raw.produceCatalog.name);
  }
  return { problems, secrets };
}

/** OpenSSL's reason without its library prefix (`error:0480006C:PEM routines::no start line` → `no start line`). */
function tlsReason(err: unknown): string {
  const m = (err as Error).message;
  return m.replace(/^error:[0-9A-F]+:[^:]*::?/, '');
}

/** Reads the one secret source of a key entry and decodes it; problems never include the secret. */
function resolveSecret(
  entry: Record<string, unknown>,
  path: Path,
  baseDir: string,
  problem: (path: Path, text: string) => void,
): Buffer | undefined {
  const sources = SECRET_SOURCES.filter((s) => has(entry, s));
  if (sources.length !== 1) {
    const got = sources.length === 0 ? 'none' : sources.join(' and ');
    problem(path, `expected exactly one of secret, secretFile, secretEnv, got ${got}`);
    return undefined;
  }
  const source = sources[0];
  const ref = entry[source];
  if (typeof ref !== 'string') return undefined; // reported by pass 1
  let text: string;
  let origin: string;
  if (source === 'secret') {
    text = ref;
    origin = '';
  } else if (source === 'secretFile') {
    if (ref === '') return undefined; // reported by pass 1
    const file = resolve(baseDir, ref);
    try {
      text = readFileSync(file, 'utf8').trim();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      problem([...path, source], `cannot read ${JSON.stringify(file)} (${code})`);
      return undefined;
    }
    origin = ` in file ${JSON.stringify(file)}`;
  } else {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(ref)) return undefined; // reported by pass 1
    const value = process.env[ref];
    if (value === undefined) {
      problem([...path, source], `environment variable ${ref} is not set`);
      return undefined;
    }
    text = value.trim();
    origin = ` in environment variable ${ref}`;
  }
  if (text === '' || !BASE64.test(text)) {
    const got = text === '' ? 'an empty string' : 'a string that is not valid base64';
    problem([...path, source], `expected a base64 secret${origin}, got ${got}`);
    return undefined;
  }
  return Buffer.from(text, 'base64');
}

// ---------------------------------------------------------------------------------------------
// Resolution

/**
 * The config of catalog member `zone`: transferred from the catalog's primaries, with `defaults`,
 * then the catalog's `zoneDefaults`, then each of the member's groups in order (unknown groups are
 * the caller's to report). Frozen like the rest of the config.
 */
export function memberConfig(cat: CatalogConfig, zone: string, groups: readonly string[] = []): ZoneConfig {
  let fields: ZoneFieldsInput = cat.zoneDefaults;
  for (const g of groups) {
    const extra = cat.groups.get(g);
    if (extra) fields = { ...fields, ...definedOnly(extra) };
  }
  return deepFreeze(resolveZone({ ...fields, name: zone, primaries: cat.zone.primaries }, cat.defaults));
}

function producedCatalog(
  p: NonNullable<ParsedConfig['produceCatalog']>,
  defaults: ParsedZoneFields,
): ProducedCatalog {
  const allowTransfer = [...(p.allowTransfer ?? defaults.allowTransfer ?? [])];
  const alsoNotify = (p.alsoNotify ?? defaults.alsoNotify ?? []).map(peerOf);
  const zone = resolveZone(
    { name: p.name, primaries: [], allowTransfer, alsoNotify, notify: 'explicit' },
    defaults,
  );
  return { name: p.name, zone };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function resolveZone(
  zone: ZoneFieldsInput & {
    name: string;
    /** TLS file paths already absolute (primaryOf). */
    primaries: readonly Primary[];
  },
  defaults: ParsedZoneFields,
): ZoneConfig {
  const pick = <K extends keyof ParsedZoneFields & keyof typeof ZONE_DEFAULTS>(k: K) =>
    zone[k] ?? defaults[k] ?? ZONE_DEFAULTS[k];
  const resolved: { -readonly [K in keyof ZoneConfig]: ZoneConfig[K] } = {
    name: zone.name,
    primaries: zone.primaries.map((p) => (p.tls ? { ...peerOf(p), tls: p.tls } : peerOf(p))),
    allowNotify: [...pick('allowNotify')],
    allowTransfer: [...pick('allowTransfer')],
    requireTls: pick('requireTls'),
    alsoNotify: pick('alsoNotify').map(peerOf),
    transfer: pick('transfer'),
    notify: pick('notify'),
    refreshMin: pick('refreshMin'),
    refreshMax: pick('refreshMax'),
    retryMin: pick('retryMin'),
    retryMax: pick('retryMax'),
    expireMin: pick('expireMin'),
    expireMax: pick('expireMax'),
    maxRecords: pick('maxRecords'),
    maxTransferBytes: pick('maxTransferBytes'),
    maxTransferSeconds: pick('maxTransferSeconds'),
    maxIdleSeconds: pick('maxIdleSeconds'),
    maxRecordsPerType: pick('maxRecordsPerType'),
    maxTypesPerName: pick('maxTypesPerName'),
    maxDeletePercent: pick('maxDeletePercent'),
    historyLimit: pick('historyLimit'),
    minimalResponses: pick('minimalResponses'),
    minimalAny: pick('minimalAny'),
  };
  // Leave unset maxima out rather than present-but-undefined, so deepEqual and spreads stay tidy.
  for (const [, maxKey] of TIMER_PAIRS) {
    if (resolved[maxKey] === undefined) delete resolved[maxKey];
  }
  if (resolved.maxDeletePercent === undefined) delete resolved.maxDeletePercent;
  return resolved;
}

/** BIND: the per-kind rates default to responses-per-second. */
function resolveRateLimit(r: NonNullable<ParsedConfig['rateLimit']>): RateLimitConfig {
  const d = RATE_LIMIT_DEFAULTS;
  const responses = r.responsesPerSecond ?? d.responsesPerSecond;
  return {
    responsesPerSecond: responses,
    referralsPerSecond: r.referralsPerSecond ?? responses,
    nodataPerSecond: r.nodataPerSecond ?? responses,
    nxdomainsPerSecond: r.nxdomainsPerSecond ?? responses,
    errorsPerSecond: r.errorsPerSecond ?? responses,
    allPerSecond: r.allPerSecond ?? d.allPerSecond,
    window: r.window ?? d.window,
    slip: r.slip ?? d.slip,
    ipv4PrefixLength: r.ipv4PrefixLength ?? d.ipv4PrefixLength,
    ipv6PrefixLength: r.ipv6PrefixLength ?? d.ipv6PrefixLength,
    exemptClients: [...(r.exemptClients ?? d.exemptClients)],
    logOnly: r.logOnly ?? d.logOnly,
    maxTableSize: r.maxTableSize ?? d.maxTableSize,
  };
}

function peerOf(p: { address: string; port: number; key?: string }): Primary {
  return p.key === undefined ? { address: p.address, port: p.port } : { ...p };
}

type ParsedPrimary = ParsedConfig['zones'][number]['primaries'][number];

/** A primary with its TLS file paths made absolute (against the config file's directory). */
function primaryOf(p: ParsedPrimary, baseDir: string): Primary {
  const { tls: t, ...peer } = p;
  if (!t) return peerOf(peer);
  const abs = (f?: string) => (f === undefined ? undefined : resolve(baseDir, f));
  const files = { caFile: abs(t.caFile), certFile: abs(t.certFile), keyFile: abs(t.keyFile) };
  const resolvedTls = Object.fromEntries(
    Object.entries({ ...t, ...files }).filter(([, v]) => v !== undefined),
  ) as PrimaryTls;
  return { ...peerOf(peer), tls: resolvedTls };
}

function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Buffer.isBuffer(value) || Object.isFrozen(value)) {
    return value;
  }
  if (value instanceof Map) {
    for (const v of value.values()) deepFreeze(v);
  } else {
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return Object.freeze(value);
}

// ---------------------------------------------------------------------------------------------
// Entry points

/**
 * Validates an already-parsed JSON value and returns the resolved, frozen config.
 * `baseDir` anchors relative `secretFile` paths (default: the cwd). Throws ConfigError with
 * every problem found.
 */
export function parseConfig(raw: unknown, baseDir: string = process.cwd()): Config {
  const parsed = configSchema.safeParse(raw);
  const problems = parsed.success ? [] : parsed.error.issues.flatMap((i) => toProblems(i, raw));
  const relations = checkRelations(raw, baseDir);
  problems.push(...relations.problems);
  if (problems.length > 0 || !parsed.success) {
    problems.sort(documentOrder(raw));
    throw new ConfigError([...new Set(problems.map((p) => `${formatPath(p.path)}: ${p.text}`))]);
  }

  const data = parsed.data;
  const keys = new Map<string, TsigKey>();
  for (const [rawName, k] of Object.entries(data.keys)) {
    const name = normaliseName(rawName);
    keys.set(name, { name, algorithm: k.algorithm, secret: relations.secrets.get(rawName)! });
  }
  const config: Config = {
    listen: data.listen,
    tlsListen: data.tlsListen.map((l) => ({
      ...l,
      certFile: resolve(baseDir, l.certFile),
      keyFile: resolve(baseDir, l.keyFile),
    })),
    database: data.database === ':memory:' ? data.database : resolve(data.database),
    logLevel: data.logLevel,
    udpSize: data.udpSize,
    tcpIdleSeconds: data.tcpIdleSeconds,
    maxTcpConnections: data.maxTcpConnections,
    workers: data.workers,
    udpReceiveBuffer: data.udpReceiveBuffer,
    answerCacheBytes: data.answerCacheBytes,
    ...(data.control ? { control: data.control } : {}),
    ...(data.metrics ? { metrics: data.metrics } : {}),
    ...(data.identity ? { identity: data.identity } : {}),
    ...(data.rateLimit ? { rateLimit: resolveRateLimit(data.rateLimit) } : {}),
    keys,
    zones: data.zones.map((z) =>
      resolveZone({ ...z, primaries: z.primaries.map((p) => primaryOf(p, baseDir)) }, data.defaults),
    ),
    catalogs: data.catalogs.map((c) => ({
      name: c.name,
      zone: resolveZone(
        { name: c.name, primaries: c.primaries.map((p) => primaryOf(p, baseDir)) },
        data.defaults,
      ),
      zoneDefaults: c.zoneDefaults,
      groups: new Map(Object.entries(c.groups)),
      defaults: data.defaults,
    })),
    ...(data.produceCatalog
      ? {
          produceCatalog: producedCatalog(data.produceCatalog, data.defaults),
        }
      : {}),
    maxConcurrentTransfers: data.maxConcurrentTransfers,
  };
  return deepFreeze(config);
}

/**
 * Reads and validates a JSON config file. Relative `secretFile` paths are taken from the file's
 * directory, a relative `database` from the cwd. Throws ConfigError (with `file` set) for an
 * unreadable file, a JSON syntax error (with line and column) or any invalid setting.
 */
export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new ConfigError([`${file}: cannot read config file (${code})`], file);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError([jsonSyntaxProblem(file, text, err as Error)], file);
  }
  try {
    return parseConfig(raw, dirname(resolve(file)));
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(err.problems, file);
    throw err;
  }
}

/**
 * `file:line:column: invalid JSON (reason)`. V8's message is cut to its reason: it sometimes
 * quotes the surrounding text, which may hold a secret, and only sometimes gives a position, so
 * the position comes from our own scan.
 */
function jsonSyntaxProblem(file: string, text: string, err: Error): string {
  const message = err.message
    .replace(/, ".*" is not valid JSON$/s, '')
    .replace(/(?: in JSON)? at position \d+.*$/s, '')
    .replace(/^Unexpected end of JSON input$/, 'unexpected end of input');
  // Keep the problem on one line: V8 quotes an unexpected newline token as is.
  const reason = [...message].map((c) => (c < ' ' ? JSON.stringify(c).slice(1, -1) : c)).join('');
  const v8pos = /at position (\d+)/.exec(err.message);
  const pos = v8pos ? Number(v8pos[1]) : jsonErrorOffset(text);
  if (pos === undefined) return `${file}: invalid JSON (${reason})`;
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const column = pos - before.lastIndexOf('\n');
  return `${file}:${line}:${column}: invalid JSON (${reason})`;
}

/** Offset of the first JSON syntax error in `text` (RFC 8259), or undefined if it parses. */
export function jsonErrorOffset(text: string): number | undefined {
  let i = 0;
  const fail = (): never => {
    throw new JsonSyntaxAt(i);
  };
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const expect = (c: string) => {
    if (text[i] !== c) fail();
    i++;
  };
  const string = () => {
    expect('"');
    for (;;) {
      if (i >= text.length) fail();
      const c = text.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) fail();
      if (c === 0x5c) {
        i++;
        if (text[i] === 'u') {
          for (let n = 0; n < 4; n++) {
            i++;
            if (!/[0-9a-fA-F]/.test(text[i] ?? '')) fail();
          }
        } else if (!'"\\/bfnrt'.includes(text[i] ?? 'x')) fail();
      }
      i++;
    }
    i++;
  };
  // Objects and arrays: `open` items separated by ',' then `close`; `item` reads one member.
  const list = (close: string, item: () => void) => {
    i++;
    ws();
    if (text[i] === close) {
      i++;
      return;
    }
    for (;;) {
      item();
      ws();
      if (text[i] !== ',') break;
      i++;
    }
    expect(close);
  };
  const digits = () => {
    if (!/[0-9]/.test(text[i] ?? '')) fail();
    while (/[0-9]/.test(text[i] ?? '')) i++;
  };
  const number = () => {
    if (text[i] === '-') i++;
    if (text[i] === '0') i++;
    else digits();
    if (text[i] === '.') {
      i++;
      digits();
    }
    if (text[i] === 'e' || text[i] === 'E') {
      i++;
      if (text[i] === '+' || text[i] === '-') i++;
      digits();
    }
  };
  const value = () => {
    ws();
    const c = text[i];
    if (c === '{') {
      list('}', () => {
        ws();
        string();
        ws();
        expect(':');
        value();
      });
    } else if (c === '[') {
      list(']', value);
    } else if (c === '"') {
      string();
    } else {
      const word = ['true', 'false', 'null'].find((w) => w[0] === c);
      if (word) {
        for (const ch of word) expect(ch);
      } else {
        number();
      }
    }
  };
  try {
    value();
    ws();
    if (i < text.length) fail();
    return undefined;
  } catch (err) {
    if (err instanceof JsonSyntaxAt) return err.offset;
    throw err;
  }
}

class JsonSyntaxAt {
  constructor(readonly offset: number) {}
}
