// `weft token create`: has the control plane write a bootstrap token file for a proxy that has no
// WorkloadEntry (a gateway), and prints the file's path for `weft proxy` to read.
import { CliError, parseCommandArgs, UsageError } from './cli-errors';
import type { CliIo } from './cli-io';
import { ApiError, CONTROL_HELP, CONTROL_OPTION, ControlClient, withHint } from './control-client';

export const TOKEN_USAGE = `Usage: weft token create -n NS --service-account SA --workload NAME [--control HOST:PORT]

Writes a bootstrap token for service account SA in namespace NS into the control plane's state
directory (tokens/NS/NAME.jwt, readable only by its owner) and prints the file's path. A proxy
presents the token to the control plane's CA to get its first certificate. WorkloadEntries get
theirs automatically; this is for gateways and other proxies without one. With -o json it prints
the token and the root certificate's path too.

Options:
  -n, --namespace NS          namespace of the identity (default "default")
      --service-account SA    service account of the identity (default "default")
      --workload NAME         name of the proxy the token is for (required)
  -o, --output FORMAT         path (default) | json
${CONTROL_HELP}
`;

interface TokenResponse {
  path: string;
  token: string;
  rootCert?: string;
}

export async function runToken(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    argv,
    {
      namespace: { type: 'string', short: 'n', default: 'default' },
      'service-account': { type: 'string', default: 'default' },
      workload: { type: 'string' },
      output: { type: 'string', short: 'o', default: 'path' },
      ...CONTROL_OPTION,
    },
    TOKEN_USAGE,
    true,
  );
  const [verb, ...rest] = positionals;
  if (verb !== 'create') throw new UsageError(verb === undefined ? 'missing subcommand: create' : `unknown subcommand "${verb}"; use create`, TOKEN_USAGE);
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`, TOKEN_USAGE);
  if (!values.workload) throw new UsageError('--workload NAME is required', TOKEN_USAGE);
  if (values.output !== 'path' && values.output !== 'json') throw new UsageError(`unknown output format "${values.output}"; use path or json`, TOKEN_USAGE);
  const client = ControlClient.fromFlag(values.control, io.env, TOKEN_USAGE);
  let created: TokenResponse;
  try {
    created = await client.request<TokenResponse>('POST', '/api/v1/tokens', {
      contentType: 'application/json',
      text: JSON.stringify({ namespace: values.namespace, serviceAccount: values['service-account'], workload: values.workload }),
    });
  } catch (err) {
    throw err instanceof ApiError ? new CliError(withHint(err)) : err;
  }
  io.out(values.output === 'json' ? JSON.stringify(created, null, 2) + '\n' : `${created.path}\n`);
  return 0;
}
