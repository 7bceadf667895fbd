/** Signing zones for tests with BIND's own tools (dnssec-keygen, dnssec-signzone). */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, timeout: 60_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/**
 * Signs `text` as zone `origin` in `dir` with fresh keys (`keys`: dnssec-keygen arguments per key)
 * and returns the signed zone file text. `signArgs` go to dnssec-signzone (e.g. `-3 - -H 0`).
 */
export async function signZone(
  dir: string,
  origin: string,
  text: string,
  keys: string[][],
  signArgs: string[],
): Promise<string> {
  const file = path.join(dir, `${origin}.zone`);
  fs.writeFileSync(file, text);
  for (const k of keys) await run('dnssec-keygen', ['-q', '-K', dir, ...k, origin], dir);
  await run(
    'dnssec-signzone',
    ['-q', '-S', '-K', dir, '-d', dir, '-o', origin, '-f', `${file}.signed`, ...signArgs, file],
    dir,
  );
  return fs.readFileSync(`${file}.signed`, 'utf8');
}
