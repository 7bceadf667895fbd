/**
 * A small UDP DNS client for timing: one socket, queries matched by ID, and pollUntil(), which
 * sends a fresh query every `everyMs` whatever happened to the previous one (a server busy in a
 * synchronous transaction drops or delays some) and resolves at the first reply that satisfies
 * the check. Spawning `dig` every 10-20 ms would cost more CPU than the thing measured.
 */
import dgram from 'node:dgram';
import dnsPacket, { type Packet } from 'dns-packet';
import { HOST, now } from '../../test/harness/proc.js';

export type { Packet };

type Waiter = (p: Packet, at: number) => void;

export class Prober {
  private readonly sock = dgram.createSocket('udp4');
  private readonly waiting = new Map<number, { port: number; cb: Waiter }>();
  private nextId = Math.floor(Math.random() * 65536);
  private ready: Promise<void>;

  constructor() {
    this.sock.on('message', (msg, rinfo) => {
      const at = now();
      if (msg.length < 12) return;
      const id = msg.readUInt16BE(0);
      const w = this.waiting.get(id);
      if (!w || w.port !== rinfo.port) return;
      this.waiting.delete(id);
      let p: Packet;
      try {
        p = dnsPacket.decode(msg);
      } catch {
        return;
      }
      w.cb(p, at);
    });
    // Unconnected UDP: ICMP port unreachable is not reported, but be safe.
    this.sock.on('error', () => undefined);
    this.ready = new Promise((r) => this.sock.bind(0, HOST, () => r()));
  }

  private send(port: number, name: string, type: string, cb: Waiter): number {
    const id = this.nextId;
    this.nextId = (this.nextId + 1) & 0xffff;
    const buf = dnsPacket.encode({
      type: 'query',
      id,
      flags: 0,
      questions: [{ name, type: type as dnsPacket.RecordType, class: 'IN' }],
    });
    this.waiting.set(id, { port, cb });
    this.sock.send(buf, port, HOST);
    return id;
  }

  /** One query; undefined after `timeoutMs` without a reply. */
  async query(port: number, name: string, type: string, timeoutMs = 1000): Promise<Packet | undefined> {
    await this.ready;
    return new Promise((resolve) => {
      const id = this.send(port, name, type, (p) => {
        clearTimeout(timer);
        resolve(p);
      });
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(undefined);
      }, timeoutMs);
    });
  }

  /**
   * Queries every `everyMs` until a reply passes `ok`; resolves to performance.now() of that reply.
   * Rejects after `timeoutMs`, describing the last reply seen.
   */
  async pollUntil(
    port: number,
    name: string,
    type: string,
    ok: (p: Packet) => boolean,
    opts: { everyMs: number; timeoutMs: number; abort?: () => string | undefined },
  ): Promise<number> {
    await this.ready;
    return new Promise((resolve, reject) => {
      let last = 'no reply';
      const ids = new Set<number>();
      const finish = (err: Error | undefined, at?: number) => {
        clearInterval(tick);
        clearTimeout(limit);
        for (const id of ids) this.waiting.delete(id);
        if (err) reject(err);
        else resolve(at!);
      };
      const fire = () => {
        const why = opts.abort?.();
        if (why) return finish(new Error(`${name} ${type} @${port}: ${why}`));
        const id = this.send(port, name, type, (p, at) => {
          ids.delete(id);
          if (ok(p)) finish(undefined, at);
          else last = describe(p);
        });
        ids.add(id);
        // Forget queries that will never be answered, so the map stays small.
        if (ids.size > 200) {
          const oldest = ids.values().next().value as number;
          ids.delete(oldest);
          this.waiting.delete(oldest);
        }
      };
      const tick = setInterval(fire, opts.everyMs);
      const limit = setTimeout(
        () =>
          finish(
            new Error(`${name} ${type} @${port}: not as expected after ${opts.timeoutMs} ms (last: ${last})`),
          ),
        opts.timeoutMs,
      );
      fire();
    });
  }

  close(): void {
    this.sock.close();
  }
}

export interface ProbeStats {
  sent: number;
  answered: number;
  /** Longest time an answered probe query waited. */
  maxMs: number;
  p99Ms: number;
  /**
   * Longest stretch with no probe answer arriving (start → first answer, between answers, last
   * answer → end): how long the server stopped answering. Queries sent into a stall may be
   * dropped (the socket buffer overflows under load), so this, not the wait of the answered
   * ones, is the honest measure.
   */
  maxGapMs: number;
}

/**
 * Sends `name type` every `everyMs` and records how long each answer took: the longest wait is
 * how long the server stopped answering (e.g. blocked in a synchronous transaction).
 */
export function startLatencyProbe(
  prober: Prober,
  port: number,
  name: string,
  type: string,
  everyMs = 10,
  timeoutMs = 5000,
): { stop(): Promise<ProbeStats> } {
  const waits: number[] = [];
  const arrivals: number[] = [];
  const startedAt = now();
  const pending: Promise<void>[] = [];
  let sent = 0;
  let answered = 0;
  const tick = setInterval(() => {
    const t = now();
    sent++;
    pending.push(
      prober.query(port, name, type, timeoutMs).then((p) => {
        if (!p) return;
        answered++;
        arrivals.push(now());
        waits.push(now() - t);
      }),
    );
  }, everyMs);
  return {
    async stop() {
      clearInterval(tick);
      const stoppedAt = now();
      await Promise.all(pending);
      const times = [startedAt, ...arrivals.filter((a) => a <= stoppedAt).sort((x, y) => x - y), stoppedAt];
      let maxGapMs = 0;
      for (let i = 1; i < times.length; i++) maxGapMs = Math.max(maxGapMs, times[i] - times[i - 1]);
      const sorted = Float64Array.from(waits).sort();
      const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
      return {
        sent,
        answered,
        maxMs: sorted.length ? sorted[sorted.length - 1] : Number.NaN,
        p99Ms: sorted.length ? at(0.99) : Number.NaN,
        maxGapMs,
      };
    },
  };
}

export function describe(p: Packet): string {
  const rcode = (p as { rcode?: string }).rcode ?? String((p.flags ?? 0) & 0xf);
  const answers = (p.answers ?? []).map(
    (a) => `${a.name} ${a.type} ${JSON.stringify((a as { data?: unknown }).data)}`,
  );
  return `${rcode} [${answers.join('; ')}]`;
}

/** The SOA serial in the answer section, if any. */
export function soaSerial(p: Packet): number | undefined {
  for (const a of p.answers ?? [])
    if (a.type === 'SOA') return (a as { data: { serial: number } }).data.serial;
  return undefined;
}

/** The A addresses answered for `name`. */
export function aRecords(p: Packet, name: string): string[] {
  const n = name.toLowerCase().replace(/\.$/, '');
  return (p.answers ?? [])
    .filter((a) => a.type === 'A' && a.name.toLowerCase().replace(/\.$/, '') === n)
    .map((a) => (a as { data: string }).data);
}

export const isNoError = (p: Packet) => ((p.flags ?? 0) & 0xf) === 0;
export const isNxdomain = (p: Packet) => ((p.flags ?? 0) & 0xf) === 3;
