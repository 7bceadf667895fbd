/**
 * `ns2 demo` (what `npm start` runs): a throwaway BIND primary on 127.0.0.1:5300 serving
 * demo/example.test.zone, and ns2 on 127.0.0.1:5353 replicating it into data/demo.db.
 * Ctrl-C stops both.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from './config.js';
import { startDaemon } from './daemon.js';
import { createLogger } from './log.js';

const PRIMARY_PORT = 5300;
const NS2_PORT = 5353;

export async function runDemo(): Promise<number> {
  const named = ['/usr/sbin/named', '/usr/local/sbin/named'].find((p) => fs.existsSync(p));
  if (!named) {
    process.stderr.write(
      'ns2 demo needs BIND 9 as the primary: apt-get install bind9 (npm start does this when run as root)\n',
    );
    return 1;
  }
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const dir = path.resolve('data/demo');
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(path.join(root, 'demo/example.test.zone'), path.join(dir, 'example.test.zone'));
  fs.writeFileSync(
    path.join(dir, 'named.conf'),
    `options {
  directory "${dir}"; pid-file "${dir}/named.pid";
  listen-on port ${PRIMARY_PORT} { 127.0.0.1; }; listen-on-v6 { none; };
  recursion no; dnssec-validation no;
  notify-source 127.0.0.1; transfer-source 127.0.0.1;
};
zone "example.test" {
  type primary; file "${dir}/example.test.zone";
  allow-transfer { 127.0.0.1; }; allow-update { 127.0.0.1; };
  also-notify { 127.0.0.1 port ${NS2_PORT}; }; notify explicit;
};
`,
  );
  const primary = spawn(named, ['-g', '-n', '1', '-c', path.join(dir, 'named.conf')], {
    stdio: ['ignore', 'ignore', fs.openSync(path.join(dir, 'named.log'), 'w')],
  });
  const stopPrimary = () => {
    if (primary.exitCode === null) primary.kill('SIGTERM');
  };
  process.once('exit', stopPrimary);
  const config = parseConfig({
    listen: [{ address: '127.0.0.1', port: NS2_PORT }],
    database: 'data/demo.db',
    zones: [{ name: 'example.test', primaries: [{ address: '127.0.0.1', port: PRIMARY_PORT }] }],
  });
  const log = createLogger('info');
  const daemon = await startDaemon(config, log);
  process.stderr.write(
    `\nns2 demo: BIND primary on 127.0.0.1#${PRIMARY_PORT} (log ${dir}/named.log), ns2 on 127.0.0.1#${NS2_PORT}\n` +
      `  dig @127.0.0.1 -p ${NS2_PORT} www.example.test A\n` +
      `  sqlite3 data/demo.db "select name, type, ttl, rdata from records order by name"\n` +
      '  Ctrl-C stops both.\n\n',
  );
  await new Promise<void>((resolve) => {
    const stop = () => daemon.stop().then(resolve, resolve);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  stopPrimary();
  return 0;
}
