// Writing the state directory's files with the permissions secrets need: directories 0700, keys
// and tokens 0600, each file replaced atomically so a reader never sees half a key.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Creates `dir` (and missing parents) and makes it 0700, whatever the umask. */
export function ensurePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
}

/** Writes `content` to a temporary file beside `file` with `mode`, then renames it into place. */
export function writeFileAtomic(file: string, content: string, mode: number): void {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    fs.writeFileSync(temporary, content, { mode });
    // writeFileSync's mode is filtered by the umask; the file must end up exactly `mode`.
    fs.chmodSync(temporary, mode);
    fs.renameSync(temporary, file);
  } catch (err) {
    fs.rmSync(temporary, { force: true });
    throw err;
  }
}
