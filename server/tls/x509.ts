// The X.509 pieces shared by selfsigned.ts and inspect.ts: object identifiers, domain-name
// normalisation, and a walk of a certificate's DER (RFC 5280 §4.1) for what node:crypto's
// X509Certificate does not expose in Node 20 (the signature algorithm, exact validity dates,
// otherName SANs such as id-on-xmppAddr).

import { isIP } from 'node:net';
import { domainToASCII, domainToUnicode } from 'node:url';
import {
  DerError, Tag, children, decodeOid, decodeString, decodeTime, isContext, isUniversal, readDer,
  type DerNode,
} from './der.js';

export const OID = {
  ecPublicKey: '1.2.840.10045.2.1',
  rsaEncryption: '1.2.840.113549.1.1.1',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  sha256WithRsaEncryption: '1.2.840.113549.1.1.11',
  commonName: '2.5.4.3',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  xmppAddr: '1.3.6.1.5.5.7.8.5',                              // RFC 6120 §13.7.1.4
  srvName: '1.3.6.1.5.5.7.8.7',                               // RFC 4985 SRV-ID
} as const;

/** Readable names for the signature algorithms one meets on XMPP servers. */
export const SIGNATURE_ALGORITHMS: Record<string, string> = {
  '1.2.840.10045.4.3.2': 'ecdsa-with-SHA256',
  '1.2.840.10045.4.3.3': 'ecdsa-with-SHA384',
  '1.2.840.10045.4.3.4': 'ecdsa-with-SHA512',
  '1.2.840.113549.1.1.5': 'sha1WithRSAEncryption',
  '1.2.840.113549.1.1.10': 'RSASSA-PSS',
  '1.2.840.113549.1.1.11': 'sha256WithRSAEncryption',
  '1.2.840.113549.1.1.12': 'sha384WithRSAEncryption',
  '1.2.840.113549.1.1.13': 'sha512WithRSAEncryption',
  '1.3.101.112': 'Ed25519',
  '1.3.101.113': 'Ed448',
};

// ---------------------------------------------------------------------------------------------
// Domain names

/** A certificate name as given by an admin, in the forms each SAN type needs. */
export interface CertName {
  /** Lower-case A-label form (dNSName, checkHost), or the IP literal. */
  ascii: string;
  /** U-label form, as XMPP addresses carry it. */
  unicode: string;
  wildcard: boolean;
  /** 4 or 6 for an IP literal, 0 for a domain name. */
  ip: 0 | 4 | 6;
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** Normalises a domain ('Bücher.example.', '*.example.com', '127.0.0.1'); throws when invalid. */
export function parseCertName(input: string): CertName {
  const text = input.trim().replace(/\.$/, '');
  const ip = isIP(text.replace(/^\[(.*)\]$/, '$1'));
  if (ip === 4 || ip === 6) {
    const literal = text.replace(/^\[(.*)\]$/, '$1').toLowerCase();
    return { ascii: literal, unicode: literal, wildcard: false, ip };
  }
  // RFC 6125 §6.4.3 / RFC 6120 §13.7.1.2: '*' only as the complete left-most label.
  const wildcard = text.startsWith('*.');
  const base = wildcard ? text.slice(2) : text;
  const ascii = domainToASCII(base);
  const labels = ascii.split('.');
  if (!ascii || ascii.length > 253 || !labels.every((label) => LABEL.test(label))
    || (wildcard && labels.length < 2)) {
    throw new Error(`'${input}' is not a valid domain name for a certificate`);
  }
  const prefix = wildcard ? '*.' : '';
  return { ascii: prefix + ascii, unicode: prefix + domainToUnicode(ascii), wildcard, ip: 0 };
}

// ---------------------------------------------------------------------------------------------
// Certificate walk

export interface SubjectAltNames {
  dns: string[];
  ip: string[];
  xmppAddr: string[];
  srvName: string[];
}

export interface ParsedCertificate {
  tbs: DerNode;
  signatureAlgorithm: string;
  validFrom: Date;
  validTo: Date;
  /** Extensions by OID: criticality and the extnValue contents. */
  extensions: Map<string, { critical: boolean; value: Buffer }>;
  subjectAltNames: SubjectAltNames;
}

/** Walks a DER certificate. Throws DerError when the structure is not a certificate. */
export function parseCertificateDer(der: Buffer): ParsedCertificate {
  const [tbs, signatureAlgorithm] = expectSequence(readDer(der), 3, 'Certificate');
  const fields = children(expectNode(tbs, 'TBSCertificate'));
  // version [0] EXPLICIT is absent on v1 certificates, which shifts every later field.
  const rest = fields[0] && isContext(fields[0], 0) ? fields.slice(1) : fields;
  const [, , , validity] = rest;
  const [notBefore, notAfter] = expectSequence(expectNode(validity, 'Validity'), 2, 'Validity');
  const extensionsNode = rest.find((node) => isContext(node, 3));
  const extensions = extensionsNode ? readExtensions(extensionsNode) : new Map();
  const san = extensions.get(OID.subjectAltName);
  return {
    tbs: expectNode(tbs, 'TBSCertificate'),
    signatureAlgorithm: decodeOid(expectNode(children(expectNode(signatureAlgorithm, 'algorithm'))[0], 'OID')),
    validFrom: decodeTime(expectNode(notBefore, 'notBefore')),
    validTo: decodeTime(expectNode(notAfter, 'notAfter')),
    extensions,
    subjectAltNames: san ? readGeneralNames(readDer(san.value)) : { dns: [], ip: [], xmppAddr: [], srvName: [] },
  };
}

function readExtensions(wrapper: DerNode): Map<string, { critical: boolean; value: Buffer }> {
  const map = new Map<string, { critical: boolean; value: Buffer }>();
  const [list] = children(wrapper);
  for (const extension of children(expectNode(list, 'Extensions'))) {
    const parts = children(extension);
    const id = decodeOid(expectNode(parts[0], 'extnID'));
    // critical BOOLEAN DEFAULT FALSE: DER omits it when false.
    const critical = parts.length === 3 && parts[1]?.value[0] === 0xff;
    const value = expectNode(parts[parts.length - 1], 'extnValue');
    if (!isUniversal(value, Tag.OCTET_STRING)) throw new DerError('extnValue is not an OCTET STRING');
    map.set(id, { critical, value: value.value });
  }
  return map;
}

function readGeneralNames(names: DerNode): SubjectAltNames {
  const out: SubjectAltNames = { dns: [], ip: [], xmppAddr: [], srvName: [] };
  for (const name of children(names)) {
    if (isContext(name, 2)) out.dns.push(name.value.toString('ascii'));
    else if (isContext(name, 7)) out.ip.push(formatIp(name.value));
    else if (isContext(name, 0) && name.constructed) {
      // otherName [0] IMPLICIT SEQUENCE { type-id OID, value [0] EXPLICIT ANY }
      const [typeId, wrapped] = children(name);
      const value = wrapped && isContext(wrapped, 0) ? children(wrapped)[0] : undefined;
      if (!typeId || !value) continue;
      const type = decodeOid(typeId);
      if (type === OID.xmppAddr) out.xmppAddr.push(decodeString(value));
      else if (type === OID.srvName) out.srvName.push(decodeString(value));
    }
  }
  return out;
}

function formatIp(bytes: Buffer): string {
  if (bytes.length === 4) return [...bytes].join('.');
  const groups: string[] = [];
  for (let i = 0; i + 1 < bytes.length; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  // RFC 5952 §4.2: the longest run of two or more zero groups becomes '::'.
  const runs = [...groups.join(':').matchAll(/(?:^|:)0(?::0)+(?::|$)/g)];
  const longest = runs.sort((a, b) => b[0].length - a[0].length)[0];
  const joined = groups.join(':');
  return longest?.index === undefined ? joined
    : `${joined.slice(0, longest.index)}::${joined.slice(longest.index + longest[0].length)}`;
}

/** IP literal to the 4 or 16 octets of an iPAddress SAN. */
export function ipBytes(literal: string, version: 4 | 6): Buffer {
  if (version === 4) return Buffer.from(literal.split('.').map(Number));
  let text = literal;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);               // ::ffff:192.0.2.1
  if (v4?.[1]) {
    const [a = 0, b = 0, c = 0, d = 0] = v4[1].split('.').map(Number);
    text = `${text.slice(0, v4.index)}${(a * 256 + b).toString(16)}:${(c * 256 + d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const zeros = Array<string>(8 - headGroups.length - tailGroups.length).fill('0');
  const groups = tail === undefined ? headGroups : [...headGroups, ...zeros, ...tailGroups];
  const out = Buffer.alloc(16);
  groups.forEach((group, i) => out.writeUInt16BE(parseInt(group, 16), i * 2));
  return out;
}

function expectSequence(node: DerNode, count: number, what: string): DerNode[] {
  if (!isUniversal(node, Tag.SEQUENCE)) throw new DerError(`${what} is not a SEQUENCE`);
  const items = children(node);
  if (items.length < count) throw new DerError(`${what} has ${items.length} fields, expected ${count}`);
  return items;
}

function expectNode(node: DerNode | undefined, what: string): DerNode {
  if (!node) throw new DerError(`${what} missing`);
  return node;
}
