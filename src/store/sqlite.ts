/**
 * The SQLite binding, chosen by Node version. better-sqlite3 12 wraps its objects in the raw
 * node::ObjectWrap, whose destructor on Node >= 24.19 aborts the process (SIGABRT, `Assertion
 * failed: (env) != nullptr` in RemoveEnvironmentCleanupHook) when a Statement is garbage-collected
 * outside a JavaScript context (nodejs/node#65446), which happens at exit and in idle GCs.
 * better-sqlite3 13 uses Node-API and ships prebuilt binaries, but needs Node >= 22 and crashes
 * on 20. So: 13 (the optional dependency `better-sqlite3-napi`, skipped by npm on Node 20) on
 * Node >= 22, 12 (`better-sqlite3`) on 20 or where 13 is not installed. Same API.
 */
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';

const require = createRequire(import.meta.url);
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

function load(): { Database: typeof BetterSqlite3; module: string } {
  if (NODE_MAJOR >= 22) {
    try {
      return {
        Database: require('better-sqlite3-napi') as typeof BetterSqlite3,
        module: 'better-sqlite3-napi',
      };
    } catch {
      // Not installed (npm ci --omit=optional): version 12 below, with its Node 24 caveat.
    }
  }
  return { Database: require('better-sqlite3') as typeof BetterSqlite3, module: 'better-sqlite3' };
}

const loaded = load();

/** The Database constructor (better-sqlite3's default export). */
const Database = loaded.Database;
export default Database;

/** The package name that was loaded, and its version, e.g. `better-sqlite3-napi 13.2.0`. */
export function sqliteBinding(): string {
  const pkg = require(`${loaded.module}/package.json`) as { version: string };
  return `${loaded.module} ${pkg.version}`;
}
