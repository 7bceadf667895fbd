/**
 * A UDP echo server on src/net, for measuring datagram I/O alone (no DNS work): each datagram is
 * sent back with the QR bit set in byte 2, so dnsperf counts it as a response.
 *
 *   taskset -c 0 node --import tsx bench/echo.ts --io native|dgram --port N [--address 127.0.0.1]
 *   taskset -c 1 dnsperf -s 127.0.0.1 -p N -d queries.txt -l 10 -c 4 -q 500
 *
 * Prints one JSON line when listening ({ pid, kind, port, ... }) and one with the socket's stats
 * and the process's CPU seconds when stopped by SIGINT or SIGTERM.
 */
import { parseArgs } from 'node:util';
import { nativeDatagram, openDatagramSocket } from '../src/net/datagram.js';

const { values: opt } = parseArgs({
  options: {
    io: { type: 'string', default: 'native' },
    port: { type: 'string', default: '0' },
    address: { type: 'string', default: '127.0.0.1' },
    'receive-buffer': { type: 'string', default: String(4 << 20) },
  },
});
if (opt.io !== 'native' && opt.io !== 'dgram') throw new Error(`--io native|dgram, not ${opt.io}`);
if (opt.io === 'native') {
  const n = nativeDatagram();
  if (!n.ok) throw new Error(`--io native: ${n.reason}`);
}

const socket = await openDatagramSocket({
  address: opt.address,
  port: Number(opt.port),
  receiveBuffer: Number(opt['receive-buffer']),
  native: opt.io === 'native',
});
socket.onBatch((b) => {
  const { data, reply, length, replyLength, slotSize } = b;
  for (let i = 0; i < b.count; i++) {
    const off = i * slotSize;
    const len = length[i];
    data.copy(reply, off, off, off + len);
    if (len > 2) reply[off + 2] |= 0x80;
    replyLength[i] = len;
  }
});

const cpu0 = process.cpuUsage();
console.log(
  JSON.stringify({
    pid: process.pid,
    kind: socket.kind,
    ...socket.address(),
    receiveBuffer: socket.receiveBufferSize(),
  }),
);

const stop = async (): Promise<void> => {
  const cpu = process.cpuUsage(cpu0);
  const stats = socket.stats();
  await socket.close();
  const cpuSec = (cpu.user + cpu.system) / 1e6;
  console.log(
    JSON.stringify({ ...stats, cpuSec, answersPerCpuSec: cpuSec > 0 ? Math.round(stats.sent / cpuSec) : 0 }),
  );
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
