/**
 * Loads build/Release/udp_batch.node (built by `npm ci` through the package's install script)
 * once per thread. The path is relative to the package root, two levels above this file both as
 * src/net/*.ts (tsx) and as dist/net/*.js.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** What native/udp_batch.c exports; see the comment at the top of that file. */
export interface UdpBatchAddon {
  readonly supported: boolean;
  readonly peerStride: number;
  open(
    family: 4 | 6,
    address: string,
    port: number,
    reusePort: boolean,
    receiveBuffer: number,
    batchSize: number,
    slotSize: number,
    onBatch: (count: number) => void,
  ): {
    handle: object;
    port: number;
    receiveBuffer: number;
    data: ArrayBuffer;
    reply: ArrayBuffer;
    length: ArrayBuffer;
    replyLength: ArrayBuffer;
    peer: ArrayBuffer;
  };
  start(handle: object): void;
  /** 0, or the errno of a failed sendto (counted in sendErrors by the addon). */
  send(handle: object, buf: Uint8Array, port: number, address: string): number;
  stats(handle: object): [received: number, sent: number, truncated: number, sendErrors: number];
  close(handle: object): void;
}

export const ADDON_PATH = fileURLToPath(new URL('../../build/Release/udp_batch.node', import.meta.url));

type Loaded = { ok: true; addon: UdpBatchAddon } | { ok: false; reason: string };
let loaded: Loaded | undefined;

export function loadAddon(): Loaded {
  loaded ??= load();
  return loaded;
}

function load(): Loaded {
  if (process.platform !== 'linux') {
    return {
      ok: false,
      reason: `batched UDP (recvmmsg/sendmmsg) is Linux-only; this is ${process.platform}`,
    };
  }
  try {
    const addon = createRequire(import.meta.url)(ADDON_PATH) as UdpBatchAddon;
    if (!addon.supported) return { ok: false, reason: `${ADDON_PATH} was built without Linux support` };
    return { ok: true, addon };
  } catch (err) {
    const msg = err instanceof Error ? err.message.split('\n')[0] : String(err);
    return { ok: false, reason: `cannot load ${ADDON_PATH} (${msg}); run npm run build:native` };
  }
}
