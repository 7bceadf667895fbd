/**
 * TLS for our listeners (RFC 7858 DNS over TLS, RFC 9103 zone transfers over TLS): the server
 * options for node:tls from `tlsListen` entries. TLS 1.3 only and ALPN "dot" (RFC 9103 §7.1);
 * a client that offers ALPN without "dot" fails the handshake, one that offers none is served.
 * The certificate and key are read from their files here, at start and on reload.
 */
import { readFileSync } from 'node:fs';
import type tls from 'node:tls';

export interface TlsListen {
  address: string;
  port: number;
  certFile: string;
  keyFile: string;
}

/** The certificate and key of `l`, read now (throws naming the file that cannot be read). */
export function tlsCredentials(l: TlsListen): tls.SecureContextOptions {
  const read = (what: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (e) {
      throw new Error(`${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  return { cert: read('certFile', l.certFile), key: read('keyFile', l.keyFile), minVersion: 'TLSv1.3' };
}

export function tlsServerOptions(l: TlsListen, handshakeMs: number): tls.TlsOptions {
  return { ...tlsCredentials(l), ALPNProtocols: ['dot'], handshakeTimeout: handshakeMs };
}
