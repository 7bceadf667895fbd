/**
 * The TLS side of talking to a primary (RFC 9103, XoT): connection options for node:tls from a
 * primary's `tls` config, SPKI pin checks (RFC 7858 §4.2), and the reasons a failed handshake is
 * recorded with. TLS 1.3 only and ALPN "dot" (RFC 9103 §7.1).
 *
 * Authentication: with `caFile` the certificate must chain to it and carry `serverName` (or, with
 * no name, the primary's address); with `pin` its SubjectPublicKeyInfo must hash to the pin. With
 * both, both must hold. A pin alone is the trust anchor, as DANE-EE is (RFC 7671 §5.1): chain and
 * validity dates are not checked, the name is when `serverName` is given.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import type { PrimaryTls } from '../config.js';

/** `sha256/<base64>` of a DER SubjectPublicKeyInfo. */
export function spkiPin(spki: Buffer): string {
  return `sha256/${createHash('sha256').update(spki).digest('base64')}`;
}

/** The pin of a PEM or DER certificate. */
export function certificatePin(cert: Buffer | string): string {
  const spki = new X509Certificate(cert).publicKey.export({ type: 'spki', format: 'der' });
  return spkiPin(spki);
}

/** Why `cert` does not match `pin`, or undefined when it does. */
export function pinProblem(pin: string, cert: tls.PeerCertificate): Error | undefined {
  // `cert.pubkey` is the bare key for EC; the pin covers the whole SubjectPublicKeyInfo.
  if (!cert.raw) return new Error('certificate pin mismatch: the server sent no certificate');
  const got = certificatePin(cert.raw);
  return got === pin ? undefined : new Error(`certificate pin mismatch: got ${got}`);
}

/**
 * Options for `tls.connect` to `address`; the files are read now, so renewed files are taken at
 * the next connection. A pin alone turns chain verification off: `verifyPeer` then checks it.
 */
export function tlsConnectOptions(address: string, port: number, t: PrimaryTls): tls.ConnectionOptions {
  const read = (f?: string) => (f === undefined ? undefined : readFileSync(f));
  const host = t.serverName ?? address;
  return {
    host: address,
    port,
    // SNI carries host names only (RFC 6066 §3).
    ...(t.serverName ? { servername: t.serverName } : {}),
    minVersion: 'TLSv1.3',
    ALPNProtocols: ['dot'],
    ca: read(t.caFile),
    cert: read(t.certFile),
    key: read(t.keyFile),
    rejectUnauthorized: t.caFile !== undefined,
    checkServerIdentity: (_h, cert) =>
      tls.checkServerIdentity(host, cert) ?? (t.pin ? pinProblem(t.pin, cert) : undefined),
  };
}

/** After the handshake: the checks node:tls left to us (the pin, when it alone authenticates). */
export function verifyPeer(sock: tls.TLSSocket, t: PrimaryTls): Error | undefined {
  if (t.caFile !== undefined || !t.pin) return undefined;
  const cert = sock.getPeerCertificate(true);
  if (t.serverName) {
    const wrong = tls.checkServerIdentity(t.serverName, cert);
    if (wrong) return wrong;
  }
  return pinProblem(t.pin, cert);
}

/** OpenSSL's verify codes, as an operator would search for them. */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
]);

/**
 * The reason a TLS connection failed, short and stable: `certificate has expired`, `hostname
 * mismatch (…)`, `certificate not trusted (…)`, or OpenSSL's own words.
 */
export function tlsFailureReason(e: Error & { code?: string; reason?: string }): string {
  if (e.code === 'CERT_HAS_EXPIRED') return 'certificate has expired';
  if (e.code === 'CERT_NOT_YET_VALID') return 'certificate is not yet valid';
  if (e.code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `hostname mismatch (${e.reason ?? e.message})`;
  if (e.code && UNTRUSTED.has(e.code)) return `certificate not trusted (${e.message})`;
  return e.message.replace(/^[0-9A-F]+:error:[0-9A-F]+:[^:]*:[^:]*:/, '').replace(/:\.\.\/deps.*$/, '');
}
