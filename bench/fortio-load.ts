// `fortio load` for the demo, as Istio's tasks use it: `node dist/bench/fortio-load.js -c 3 -n 30
// -x 127.0.10.1:15001 http://httpbin:8000/get` sends 30 requests over 3 keep-alive connections
// through a sidecar (HTTP_PROXY style) and prints fortio's code summary. -qps and -loglevel are
// accepted for copy-paste from Istio's docs and ignored (always as fast as possible).
import { formatLoadResult, runLoad } from '../test/support/load-client';

const USAGE = 'usage: node dist/bench/fortio-load.js [-c CONNECTIONS] [-n REQUESTS] [-t SECONDS] -x PROXY_HOST:PORT URL\n';

async function main(argv: string[]): Promise<number> {
  let connections = 1;
  let requests = 100;
  let seconds = 60;
  let proxy: string | undefined;
  let url: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-c') connections = Number(argv[++i]);
    else if (a === '-n') requests = Number(argv[++i]);
    else if (a === '-t') seconds = Number(argv[++i]);
    else if (a === '-x') proxy = argv[++i];
    else if (a === '-qps' || a === '-loglevel') i++;
    else if (a === 'load') continue;
    else if (!a.startsWith('-')) url = a;
    else {
      process.stderr.write(`unknown option ${a}\n${USAGE}`);
      return 2;
    }
  }
  if (!url || !proxy || !/^https?:\/\//.test(url) || !(connections > 0) || !(requests > 0)) {
    process.stderr.write(USAGE);
    return 2;
  }
  const at = proxy.lastIndexOf(':');
  const result = await runLoad({ address: proxy.slice(0, at), port: Number(proxy.slice(at + 1)), url, connections, requests, maxDurationMs: seconds * 1000 });
  process.stdout.write(`${formatLoadResult(`fortio load -c ${connections} -n ${requests} ${url}`, result)}\n`);
  return 0;
}

main(process.argv.slice(2)).then((code) => process.exit(code));
