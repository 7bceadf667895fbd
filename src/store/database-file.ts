/**
 * Opening the database file. SQLite's own message ("unable to open database file") names neither
 * the file nor the reason, so every failure here is re-told as `database PATH: REASON`, the reason
 * found by looking at the file and its directory. The directory is never created: a `database`
 * pointing at a directory that does not exist is a mistake to report, not to paper over.
 */
import fs from 'node:fs';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import Database from './sqlite.js';

export type DatabaseMode = 'write' | 'read';

export class DatabaseOpenError extends Error {
  readonly code = 'NS2_ERR_DATABASE_OPEN';
  constructor(
    readonly file: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`database ${file}: ${reason}`, options);
    this.name = 'DatabaseOpenError';
  }
}

const who = () => (typeof process.getuid === 'function' ? `uid ${process.getuid()}` : 'this user');

function accessible(p: string, mode: number): boolean {
  try {
    fs.accessSync(p, mode);
    return true;
  } catch {
    return false;
  }
}

/**
 * What stands in the way of opening `file` (`write`: as the daemon does, creating it if need be,
 * with its -wal and -shm files beside it; `read`: an existing database, as the read-only commands
 * do), or undefined when nothing visible does.
 */
export function databaseProblem(file: string, mode: DatabaseMode): string | undefined {
  if (file === ':memory:') return undefined;
  const abs = path.resolve(file);
  const dir = path.dirname(abs);
  let dirStat: fs.Stats;
  try {
    dirStat = fs.statSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `directory ${dir} does not exist (create it: mkdir -p ${dir})`;
    if (code === 'ENOTDIR') return `${dir} is not a directory (a path component is a file)`;
    if (code === 'EACCES') return `directory ${dir} cannot be reached by ${who()} (permission denied)`;
    return `directory ${dir}: ${(e as Error).message}`;
  }
  if (!dirStat.isDirectory()) return `${dir} is not a directory`;
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(abs);
  } catch {
    st = undefined;
  }
  if (st?.isDirectory()) return 'is a directory, not a database file';
  if (!st) {
    if (mode === 'read')
      return 'does not exist (ns2 serve creates it: is this the config the daemon runs with?)';
    if (!accessible(dir, fs.constants.W_OK | fs.constants.X_OK))
      return `directory ${dir} is not writable by ${who()}, so the database cannot be created there`;
    return undefined;
  }
  if (!accessible(abs, fs.constants.R_OK)) return `not readable by ${who()}`;
  if (mode === 'write') {
    if (!accessible(abs, fs.constants.W_OK)) return `not writable by ${who()}`;
    // WAL mode keeps ns2.db-wal and ns2.db-shm next to the database.
    if (!accessible(dir, fs.constants.W_OK | fs.constants.X_OK))
      return `directory ${dir} is not writable by ${who()} (SQLite keeps its -wal and -shm files there)`;
  }
  return undefined;
}

/** The reason to show for `err`, raised while opening or first using `file`. */
function reasonFor(file: string, mode: DatabaseMode, err: unknown): string {
  const found = databaseProblem(file, mode);
  if (found) return found;
  const code = (err as { code?: unknown })?.code;
  if (code === 'SQLITE_NOTADB') return 'not an SQLite database (file is not a database)';
  const msg = err instanceof Error ? err.message : String(err);
  return typeof code === 'string' && code.startsWith('SQLITE_') ? `${msg} (${code})` : msg;
}

/**
 * Opens `file` and runs `setup` on the connection (pragmas, migrations); any failure in either is
 * thrown as a DatabaseOpenError naming the file and the reason. `read` opens an existing file
 * read-only and never creates one.
 */
export function openDatabase(
  file: string,
  mode: DatabaseMode,
  setup: (db: BetterSqlite3.Database) => void = () => {},
): BetterSqlite3.Database {
  // Look first: better-sqlite3 would create a missing file, or fail with a bare message.
  const problem = databaseProblem(file, mode);
  if (problem) throw new DatabaseOpenError(file, problem);
  let db: BetterSqlite3.Database | undefined;
  try {
    db = new Database(file, mode === 'read' ? { readonly: true, fileMustExist: true } : {});
    setup(db);
    return db;
  } catch (e) {
    if (db?.open) db.close();
    throw new DatabaseOpenError(file, reasonFor(file, mode, e), { cause: e });
  }
}
