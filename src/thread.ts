/**
 * Starts a worker thread running one of our modules. Compiled, the module is the .js beside the
 * caller; under tsx (tests run the .ts sources) a worker does not inherit tsx's loader, so it is
 * registered there first.
 */
import { fileURLToPath } from 'node:url';
import { type ResourceLimits, Worker } from 'node:worker_threads';

/**
 * `base`: the caller's import.meta.url; `name`: the module's file name without extension;
 * `resourceLimits`: the thread's V8 heap sizes, when not the defaults.
 */
export function startThread(
  base: string,
  name: string,
  workerData: unknown,
  resourceLimits?: ResourceLimits,
): Worker {
  const ts = base.endsWith('.ts');
  const entry = new URL(`./${name}.${ts ? 'ts' : 'js'}`, base);
  // tsx resolved from here, not from the cwd the eval'd worker would resolve it against.
  return ts
    ? new Worker(
        `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((t) => { t.register(); return import(${JSON.stringify(entry.href)}); })`,
        { eval: true, workerData, resourceLimits },
      )
    : new Worker(fileURLToPath(entry), { workerData, resourceLimits });
}
