// Node flags for every proxy process Weft starts (demo, `weft run`, --concurrency workers, the
// benchmark). A proxy allocates many short-lived objects per request; with V8's default young
// generation (semi-spaces growing to 16 MB each) a loaded proxy sat at ~107 MB RSS, with 2 MB
// semi-spaces at ~75 MB and no measurable CPU difference per request (docs/PERFORMANCE.md). V8
// reads it only at process start, so it is a command-line flag; for `weft proxy` started by hand,
// NODE_OPTIONS=--max-semi-space-size=2 does the same.
export const PROXY_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];
