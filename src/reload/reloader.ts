/**
 * Reload (SIGHUP, `ns2 reload` → POST /reload): re-read the config file the daemon started with
 * and apply what changed, without a restart and without re-transferring unchanged zones.
 *
 *   read + validate ──problems──► refused: logged, returned; the running config stays
 *        │ ok
 *   participants prepare ──problems──► refused (nothing applied yet)
 *        │ ok
 *   participants beforeZones (catalogs let go of members that become static zones)
 *   diff (config-diff.ts) ──► zones removed (and zones only in the database), keys, zones
 *                             changed, zones added, logLevel
 *        ──► participants apply ──► keys that need a restart: reported, left as they run
 *
 * Reloads run one at a time, in the order asked. Subsystems with reloadable state of their own
 * (certificates, rate limits, catalogs) register a ReloadParticipant: `apply` runs on every
 * successful reload, changed or not, so e.g. certificate files are read again on each SIGHUP.
 */
import { type Config, ConfigError, loadConfig, type TsigKey } from '../config.js';
import type { Logger } from '../log.js';
import { type ConfigDiff, diffConfig } from './config-diff.js';
import type { ZoneSet } from './zone-set.js';

export type ReloadTrigger = 'SIGHUP' | 'control';

export interface ReloadParticipant {
  /** For logs and replies, e.g. "tls". */
  readonly name: string;
  /**
   * Checks the new config and readies what applying it needs (reads certificate files, …).
   * Problems (one line each, naming the config key path) refuse the whole reload.
   */
  prepare?(next: Config, running: Config): string[] | Promise<string[]>;
  /**
   * Runs before the zones are applied, e.g. to let go of catalog members that the new `zones`
   * configure statically (they are then reconfigured, not added).
   */
  beforeZones?(next: Config, running: Config, diff: ConfigDiff): void | Promise<void>;
  /** Applies the new config; runs after the zones and keys are applied. */
  apply(next: Config, running: Config, diff: ConfigDiff): void | Promise<void>;
}

/** What `ns2 reload` prints, and POST /reload returns as JSON. */
export type ReloadResult =
  | { ok: false; file?: string; problems: string[] }
  | {
      ok: true;
      file: string;
      added: string[];
      removed: string[];
      changed: { zone: string; fields: string[] }[];
      /** TSIG key names whose definition changed. */
      keys: string[];
      /** Other top-level keys applied live (e.g. logLevel). */
      live: string[];
      /** Changed top-level keys NOT applied: they take effect at the next restart. */
      restartRequired: string[];
      /** Parts that failed to apply (the rest was applied). */
      errors: string[];
    };

export interface ReloaderDeps {
  zones: ZoneSet;
  /** Installs new TSIG keys wherever requests are signed or verified. */
  setKeys(keys: ReadonlyMap<string, TsigKey>): void;
  setLogLevel(level: string): void;
  log: Logger;
  /** Reads and validates the file (default loadConfig); injectable for tests. */
  load?: (file: string) => Config;
}

export class Reloader {
  private readonly participants: ReloadParticipant[] = [];
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    /** The config file the daemon started with; undefined: nothing to re-read. */
    private readonly file: string | undefined,
    private running: Config,
    private readonly deps: ReloaderDeps,
  ) {}

  /** The config in effect (restart-only keys as they run, not as the file now says). */
  get config(): Config {
    return this.running;
  }

  register(p: ReloadParticipant): void {
    this.participants.push(p);
  }

  reload(trigger: ReloadTrigger): Promise<ReloadResult> {
    const run = this.queue.then(() => this.run(trigger));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async run(trigger: ReloadTrigger): Promise<ReloadResult> {
    const { log } = this.deps;
    const file = this.file;
    if (file === undefined) {
      const problems = ['(root): the daemon was not started from a config file: nothing to reload'];
      log.error({ trigger, problems }, 'reload refused');
      return { ok: false, problems };
    }
    let next: Config;
    try {
      next = (this.deps.load ?? loadConfig)(file);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      return this.refuse(trigger, file, e.problems);
    }
    const problems: string[] = [];
    for (const p of this.participants) {
      if (!p.prepare) continue;
      try {
        problems.push(...(await p.prepare(next, this.running)));
      } catch (e) {
        problems.push(`${p.name}: ${(e as Error).message}`);
      }
    }
    if (problems.length > 0) return this.refuse(trigger, file, problems);
    return this.apply(trigger, file, next);
  }

  private refuse(trigger: ReloadTrigger, file: string, problems: string[]): ReloadResult {
    this.deps.log.error(
      { trigger, file, problems },
      'reload refused: the new config is invalid, the running one stays',
    );
    return { ok: false, file, problems };
  }

  private async apply(trigger: ReloadTrigger, file: string, next: Config): Promise<ReloadResult> {
    const { zones, log } = this.deps;
    const running = this.running;
    const diff = diffConfig(running, next);
    const errors: string[] = [];
    const attempt = async (what: string, fn: () => unknown) => {
      try {
        await fn();
      } catch (e) {
        errors.push(`${what}: ${(e as Error).message}`);
        log.error({ err: e, what }, 'reload: could not apply');
      }
    };
    // Zones only in the database (dropped from the file while ns2 was stopped) go as well.
    const configured = new Set(next.zones.map((z) => z.name));
    const stale = zones.unserved().filter((n) => !configured.has(n) && !diff.removed.includes(n));
    const removed = [...diff.removed, ...stale];
    for (const p of this.participants)
      if (p.beforeZones) await attempt(p.name, () => p.beforeZones?.(next, running, diff));
    for (const name of removed) await attempt(`remove zone ${name}`, () => zones.remove(name));
    // Keys before zones: a zone's new primary key must verify from its first check.
    if (diff.keys.length > 0) await attempt('keys', () => this.deps.setKeys(next.keys));
    for (const c of diff.changed) await attempt(`zone ${c.zone.name}`, () => zones.update(c.zone, c.fields));
    // A zone served already is a catalog member just let go of (beforeZones): it keeps its data.
    for (const z of diff.added)
      await attempt(`add zone ${z.name}`, () =>
        zones.has(z.name) ? zones.update(z, ['catalog']) : zones.add(z),
      );
    if (diff.live.includes('logLevel')) await attempt('logLevel', () => this.deps.setLogLevel(next.logLevel));
    // Restart-only keys keep their running values, so the next reload reports them again.
    const kept = Object.fromEntries(
      diff.restart.map((k) => [k, (running as unknown as Record<string, unknown>)[k]]),
    );
    this.running = Object.freeze({ ...next, ...kept }) as Config;
    for (const p of this.participants) await attempt(p.name, () => p.apply(next, running, diff));
    const result: ReloadResult = {
      ok: true,
      file,
      added: diff.added.map((z) => z.name),
      removed,
      changed: diff.changed.map((c) => ({ zone: c.zone.name, fields: c.fields })),
      keys: diff.keys,
      live: diff.live,
      restartRequired: diff.restart,
      errors,
    };
    const { ok: _, ...fields } = result;
    log.info({ trigger, ...fields }, 'config reloaded');
    if (diff.restart.length > 0)
      log.warn(
        { trigger, keys: diff.restart },
        `changed ${diff.restart.join(', ')}: not applied until ns2 is restarted`,
      );
    return result;
  }
}
