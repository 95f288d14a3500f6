// What a subcommand may touch: its output streams, stdin and the environment (tests substitute them).

export interface CliIo {
  /** Writes to stdout (text is written as given; add '\n'). */
  out(text: string): void;
  /** Writes to stderr. */
  err(text: string): void;
  /** All of stdin, as text. */
  readStdin(): Promise<string>;
  env: NodeJS.ProcessEnv;
  /** stdout is a terminal: ANSI colours are allowed (unset in tests and pipes). */
  stdoutIsTTY?: boolean;
}

export function processIo(): CliIo {
  return {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk));
      return Buffer.concat(chunks).toString('utf8');
    },
    env: process.env,
    stdoutIsTTY: Boolean(process.stdout.isTTY),
  };
}
