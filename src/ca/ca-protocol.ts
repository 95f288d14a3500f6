// Istio's certificate signing protocol (istio.v1.auth.IstioCertificateService/CreateCertificate),
// spoken on the control plane's mTLS port 15012: the proxy sends a PEM CSR for the key it made
// itself and gets back the signed chain, leaf first and the root last. The messages are declared
// here field-for-field with Istio's ca.proto, so istio-agent could talk to Weft's CA and Weft's
// proxy to istiod's.
import * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';

export interface CreateCertificateRequest {
  /** PEM-encoded PKCS#10 certificate signing request. */
  csr: string;
  /** Requested lifetime in seconds (the CA may shorten it). */
  validityDuration: number;
}

export interface CreateCertificateResponse {
  /** PEM certificates: the workload certificate first, then intermediates, the root last. */
  certChain: string[];
}

const root = protobuf.Root.fromJSON({
  nested: {
    istio: {
      nested: {
        v1: {
          nested: {
            auth: {
              nested: {
                // Field 4 (metadata, a Struct used for impersonation by trusted nodes) is not used by
                // Weft; protobuf keeps it wire-compatible by skipping unknown fields.
                IstioCertificateRequest: { fields: { csr: { type: 'string', id: 1 }, validityDuration: { type: 'int64', id: 3 } } },
                IstioCertificateResponse: { fields: { certChain: { rule: 'repeated', type: 'string', id: 1 } } },
              },
            },
          },
        },
      },
    },
  },
});

const RequestType = root.lookupType('istio.v1.auth.IstioCertificateRequest');
const ResponseType = root.lookupType('istio.v1.auth.IstioCertificateResponse');
const TO_OBJECT = { longs: Number, defaults: true, arrays: true } as const;

export const CA_SERVICE_NAME = 'istio.v1.auth.IstioCertificateService';

export const CA_SERVICE_DEFINITION: grpc.ServiceDefinition = {
  CreateCertificate: {
    path: `/${CA_SERVICE_NAME}/CreateCertificate`,
    requestStream: false,
    responseStream: false,
    originalName: 'createCertificate',
    requestSerialize: (m: CreateCertificateRequest) => Buffer.from(RequestType.encode(RequestType.fromObject(m)).finish()),
    requestDeserialize: (b: Buffer) => RequestType.toObject(RequestType.decode(b), TO_OBJECT) as CreateCertificateRequest,
    responseSerialize: (m: CreateCertificateResponse) => Buffer.from(ResponseType.encode(ResponseType.fromObject(m)).finish()),
    responseDeserialize: (b: Buffer) => ResponseType.toObject(ResponseType.decode(b), TO_OBJECT) as CreateCertificateResponse,
  } as grpc.MethodDefinition<CreateCertificateRequest, CreateCertificateResponse>,
};

/** Client constructor: `new CaClient('host:15012', credentials).CreateCertificate(req, metadata, cb)`. */
export const CaClient = grpc.makeGenericClientConstructor(CA_SERVICE_DEFINITION, 'IstioCertificateService');

/** Metadata key carrying the bootstrap credential, as Istio's agent sends it. */
export const AUTHORIZATION_METADATA = 'authorization';
