// Random identifiers (stream ids, nonces, session ids) from a pooled CSPRNG buffer: one
// randomFillSync per few hundred ids instead of one per id (a visible cost per login).
import { randomFillSync } from 'node:crypto';

const POOL_SIZE = 4096;
const pool = Buffer.alloc(POOL_SIZE);
let offset = POOL_SIZE;

export function randomId(bytes: number, encoding: 'base64url' | 'hex' = 'base64url'): string {
  if (bytes > POOL_SIZE) return randomFillSync(Buffer.alloc(bytes)).toString(encoding);
  if (offset + bytes > POOL_SIZE) {
    randomFillSync(pool);
    offset = 0;
  }
  const id = pool.toString(encoding, offset, offset + bytes);
  offset += bytes;
  return id;
}
