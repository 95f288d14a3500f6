#!/usr/bin/env node
// Build step (after tsc): parses Envoy's .proto files once and writes their descriptors as JSON
// next to the compiled src/xds/protos.js, so every process builds its proto root from JSON
// instead of parsing ~100 .proto files at start-up (see envoyProtoRoot).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const protos = require(path.join(__dirname, '..', 'dist', 'src', 'xds', 'protos.js'));
const root = protos.parseEnvoyProtos();
const body = JSON.stringify({ key: protos.protoDescriptorsKey(), root: root.toJSON({ keepComments: false }) });
const tmp = `${protos.PROTO_DESCRIPTORS_FILE}.${process.pid}.tmp`;
fs.writeFileSync(tmp, body);
fs.renameSync(tmp, protos.PROTO_DESCRIPTORS_FILE);
