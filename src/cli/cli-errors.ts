// The CLI's two failures: a usage mistake (exit 2, usage shown) and an operational error (exit 1).
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Exit status 1: the command was understood but failed (unreachable, refused, not found). */
export class CliError extends Error {
  readonly exitCode: number = 1;
  /** Printed as it is, without main's `error: ` prefix (kubectl's `Error from server (NotFound): ...`). */
  bare = false;
}

/** A CliError printed without the `error: ` prefix. */
export function bareError(message: string): CliError {
  const err = new CliError(message);
  err.bare = true;
  return err;
}

/** Exit status 2: the command line itself is wrong; `usage` is printed after the message. */
export class UsageError extends CliError {
  override readonly exitCode = 2;
  constructor(
    message: string,
    readonly usage?: string,
  ) {
    super(message);
  }
}

/** node:util parseArgs, with its errors turned into UsageErrors that carry the command's usage. */
export function parseCommandArgs<T extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: T,
  usage: string,
  allowPositionals = false,
) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    const message = (err as Error).message.replace(/^Unexpected argument '(.*?)'.*$/s, "unexpected argument '$1'");
    throw new UsageError(message, usage);
  }
}

/** One of `allowed` for `-o`, or a UsageError. */
export function outputFormat<F extends string>(value: string | undefined, allowed: readonly F[], usage: string): F | undefined {
  if (value === undefined) return undefined;
  if ((allowed as readonly string[]).includes(value)) return value as F;
  throw new UsageError(`unknown output format "${value}"; use one of ${allowed.join(', ')}`, usage);
}
