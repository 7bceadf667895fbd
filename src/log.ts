/** pino JSON logs, one event per line; child loggers carry zone, serial and peer fields. */
import pino, { type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { name: 'ns2' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // "level":"info", as operators grep and log shippers map it (pino's default is the number 30).
      formatters: { level: (label) => ({ level: label }) },
      // TSIG secrets must never reach a log line, whatever object is logged.
      redact: { paths: ['secret', '*.secret', '*.*.secret', 'key.secret'], censor: '[redacted]' },
    },
    destination,
  );
}
