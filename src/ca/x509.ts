// @peculiar/x509 bound to Node's WebCrypto, loaded once: every CA module imports `x509` from here
// so the library's decorator metadata and crypto provider are in place before first use.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

// @types/node's webcrypto and the DOM Crypto the library is typed against are the same object.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };
