/**
 * Test certificates made by `openssl` at run time in a directory: a CA, certificates it signs
 * for a DNS name (valid now, or valid only in the past: `openssl ca -startdate/-enddate`, since
 * OpenSSL 3.0's `x509 -req -days` cannot go back), and a second, unrelated CA. EC P-256 keys:
 * quick to make.
 */
import fs from 'node:fs';
import path from 'node:path';
import { mustRun } from './proc.js';

export interface CertPair {
  certFile: string;
  keyFile: string;
}

export interface TestCa {
  dir: string;
  caFile: string;
  /** A certificate and key for `name` (subjectAltName DNS:name, IP:127.0.0.1 when `ip`). */
  issue(id: string, name: string, opts?: { expired?: boolean; ip?: boolean }): Promise<CertPair>;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

const CA_CONF = `[ ca ]
default_ca = test_ca
[ test_ca ]
dir = .
database = db/index.txt
serial = db/serial
new_certs_dir = db
default_md = sha256
policy = any_name
copy_extensions = copy
unique_subject = no
[ any_name ]
commonName = supplied
`;

/** A fresh CA in `dir` (created). */
export async function makeCa(dir: string, cn = 'ns2 test CA'): Promise<TestCa> {
  fs.mkdirSync(path.join(dir, 'db'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'db/index.txt'), '');
  fs.writeFileSync(path.join(dir, 'db/serial'), '01\n');
  fs.writeFileSync(path.join(dir, 'ca.cnf'), CA_CONF);
  const opts = { cwd: dir };
  await mustRun(
    'openssl',
    ['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '30', '-subj', `/CN=${cn}`],
    opts,
  );
  return {
    dir,
    caFile: path.join(dir, 'ca.pem'),
    async issue(id, name, o = {}) {
      const san = `subjectAltName=DNS:${name}${o.ip ? ',IP:127.0.0.1' : ''}`;
      await mustRun(
        'openssl',
        [
          'req',
          '-new',
          ...EC,
          '-keyout',
          `${id}.key`,
          '-out',
          `${id}.csr`,
          '-subj',
          `/CN=${name}`,
          '-addext',
          san,
        ],
        opts,
      );
      const dates = o.expired
        ? ['-startdate', '20200101000000Z', '-enddate', '20200201000000Z']
        : ['-days', '30'];
      await mustRun(
        'openssl',
        ['ca', '-batch', '-notext', '-config', 'ca.cnf', '-cert', 'ca.pem', '-keyfile', 'ca.key'].concat(
          ['-in', `${id}.csr`, '-out', `${id}.pem`],
          dates,
        ),
        opts,
      );
      return { certFile: path.join(dir, `${id}.pem`), keyFile: path.join(dir, `${id}.key`) };
    },
  };
}
