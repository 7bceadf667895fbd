/**
 * Starts a worker thread running one of our modules. Compiled, the module is the .js beside the
 * caller; under tsx (tests run the .ts sources) a worker does not inherit tsx's loader, so it is
 * registered there first.
 */
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/** `base`: the caller's import.meta.url; `name`: the module's file name without extension. */
export function startThread(base: string, name: string, workerData: unknown): Worker {
  const ts = base.endsWith('.ts');
  const entry = new URL(`./${name}.${ts ? 'ts' : 'js'}`, base);
  // tsx resolved from here, not from the cwd the eval'd worker would resolve it against.
  return ts
    ? new Worker(
        `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((t) => { t.register(); return import(${JSON.stringify(entry.href)}); })`,
        { eval: true, workerData },
      )
    : new Worker(fileURLToPath(entry), { workerData });
}
