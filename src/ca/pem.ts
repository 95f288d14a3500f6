// PEM text: splitting bundles into single certificates and wrapping DER the way OpenSSL does.

const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Each certificate of a PEM bundle, normalised to end with one newline; other blocks are ignored. */
export function splitPemCertificates(text: string): string[] {
  return (text.match(CERTIFICATE_BLOCK) ?? []).map((block) => block + '\n');
}

export function toPem(der: ArrayBuffer | Uint8Array, label: string): string {
  const base64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString('base64');
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
