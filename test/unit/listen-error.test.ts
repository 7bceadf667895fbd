/** The one-line reasons `ns2 serve` gives when a listening socket cannot be opened. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { listenError, listenErrorMessage } from '../../src/serve/listen-error.js';

const sysErr = (code: string, message = code) => Object.assign(new Error(message), { code });

test('address in use names the address, the transport and how to find the holder', () => {
  assert.equal(
    listenErrorMessage('UDP', '::1', 5353, sysErr('EADDRINUSE')),
    "cannot listen on [::1]:5353 (UDP): address already in use: another process (another nameserver, or ns2 still running) holds it; find it with `ss -ulnp 'sport = :5353'`",
  );
  assert.match(listenErrorMessage('TCP', '0.0.0.0', 53, sysErr('EADDRINUSE')), /\(TCP\).*ss -tlnp/);
});

test('EACCES below the unprivileged port limit explains the capability and the sysctl', () => {
  const m = listenErrorMessage('TCP', '0.0.0.0', 53, sysErr('EACCES'), 1024);
  assert.match(m, /^cannot listen on 0\.0\.0\.0:53 \(TCP\): permission denied: port 53 is below/);
  assert.match(m, /CAP_NET_BIND_SERVICE/);
  assert.match(m, /net\.ipv4\.ip_unprivileged_port_start \(1024\)/);
  // Above the limit the capability is not the reason: no advice about it.
  assert.equal(
    listenErrorMessage('TCP', '127.0.0.1', 60000, sysErr('EACCES'), 1024),
    'cannot listen on 127.0.0.1:60000 (TCP): permission denied',
  );
});

test('other causes, and the error object', () => {
  assert.match(
    listenErrorMessage('UDP', '192.0.2.1', 53, sysErr('EADDRNOTAVAIL')),
    /no interface of this host/,
  );
  assert.match(listenErrorMessage('UDP', '::', 53, sysErr('EAFNOSUPPORT')), /no IPv6 support/);
  assert.equal(
    listenErrorMessage('HTTP', '127.0.0.1', 8053, new Error('boom')),
    'cannot listen on 127.0.0.1:8053 (HTTP): boom',
  );
  const e = listenError('UDP', '127.0.0.1', 53, sysErr('EADDRINUSE'));
  assert.equal(e.code, 'NS2_ERR_LISTEN');
  assert.equal(e.errno, 'EADDRINUSE');
  assert.equal((e.cause as Error).message, 'EADDRINUSE');
});
