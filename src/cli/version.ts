// `weft version`: the client's version and, when it answers, the control plane's.
import { parseCommandArgs } from './cli-errors';
import type { CliIo } from './cli-io';
import { CONTROL_HELP, CONTROL_OPTION, ControlClient } from './control-client';

export const CLIENT_VERSION: string = require('../../../package.json').version;

export const VERSION_USAGE = `Usage: weft version [--client] [-o json]

Prints the client version and the version of the control plane at --control (with the snapshot it
serves). Exits 1 when the control plane cannot be reached (the client version is still printed).

Options:
      --client         the client version only (no control plane needed)
  -o, --output json    as JSON
${CONTROL_HELP}
`;

interface ServerVersion {
  version: string;
  snapshot?: string;
  resources: number;
  proxies: number;
}

export async function runVersion(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs(
    argv,
    { client: { type: 'boolean' }, output: { type: 'string', short: 'o' }, short: { type: 'boolean' }, ...CONTROL_OPTION },
    VERSION_USAGE,
  );
  const json = values.output === 'json';
  if (values.client) {
    io.out(json ? JSON.stringify({ clientVersion: CLIENT_VERSION }, null, 2) + '\n' : `client version: ${CLIENT_VERSION}\n`);
    return 0;
  }
  const client = ControlClient.fromFlag(values.control, io.env, VERSION_USAGE);
  let server: ServerVersion;
  try {
    server = await client.get<ServerVersion>('/api/v1/version');
  } catch (err) {
    io.out(json ? JSON.stringify({ clientVersion: CLIENT_VERSION }, null, 2) + '\n' : `client version: ${CLIENT_VERSION}\n`);
    throw err;
  }
  if (json) {
    io.out(JSON.stringify({ clientVersion: CLIENT_VERSION, controlPlane: { address: client.address.text, ...server } }, null, 2) + '\n');
    return 0;
  }
  io.out(`client version: ${CLIENT_VERSION}\n`);
  io.out(
    `control plane version: ${server.version} (${client.address.text}; snapshot ${server.snapshot ?? 'none yet'}, ${server.resources} resources, ${server.proxies} proxies connected)\n`,
  );
  return 0;
}
