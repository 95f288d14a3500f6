// `weft iptables` (istio-iptables for Weft) and the SO_ORIGINAL_DST addon: the rules it prints,
// installing them in a network namespace of the test's own, `--cleanup` leaving the nat table
// exactly as before (iptables-save), the errors when capture cannot work, and the addon reading
// a REDIRECTed connection's original destination.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { captureRules, type CaptureRulesOptions } from '../../src/capture/iptables-rules';
import { CaptureUnavailableError, loadOriginalDstAddon } from '../../src/capture/original-destination';
import { requireCapturePrerequisites } from '../support/capture-prerequisites';
import { waitFor } from '../support/wait-for';

const REPO = path.resolve(__dirname, '../../..');
const WEFT = path.join(REPO, 'bin', 'weft');
const NS = 'weftcap-ipt';

function weft(args: string[], netns?: string): { status: number | null; stdout: string; stderr: string } {
  const argv = netns ? ['ip', 'netns', 'exec', netns, process.execPath, WEFT, ...args] : [process.execPath, WEFT, ...args];
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** iptables-save without its timestamp comments and packet counters. */
function natTable(netns: string): string {
  const r = spawnSync('ip', ['netns', 'exec', netns, 'iptables-save', '-t', 'nat'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .map((l) => l.replace(/\[\d+:\d+\]/, ''))
    .join('\n');
}

const DEFAULTS: CaptureRulesOptions = {
  outboundPort: 15001,
  inboundPort: 15006,
  proxyUids: [1337],
  proxyGids: [1337],
  includeOutboundCidrs: '*',
  excludeOutboundCidrs: [],
  includeInboundPorts: '*',
  excludeInboundPorts: [],
  excludeOutboundPorts: [],
};

describe('weft iptables: the rules', () => {
  it('redirects outbound TCP to 15001 and inbound TCP to 15006, sparing the proxy, loopback and its ports', () => {
    const text = captureRules(DEFAULTS).map((r) => r.join(' '));
    assert.ok(text.includes('-t nat -A WEFT_REDIRECT -p tcp -j REDIRECT --to-ports 15001'));
    assert.ok(text.includes('-t nat -A WEFT_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006'));
    assert.ok(text.includes('-t nat -A OUTPUT -p tcp -j WEFT_OUTPUT'));
    assert.ok(text.includes('-t nat -A PREROUTING -p tcp -j WEFT_INBOUND'));
    assert.ok(text.includes('-t nat -A WEFT_OUTPUT -m owner --uid-owner 1337 -j RETURN'));
    assert.ok(text.includes('-t nat -A WEFT_OUTPUT -m owner --gid-owner 1337 -j RETURN'));
    assert.ok(text.includes('-t nat -A WEFT_OUTPUT -d 127.0.0.1/32 -j RETURN'));
    for (const port of [15021, 15090]) assert.ok(text.includes(`-t nat -A WEFT_INBOUND -p tcp --dport ${port} -j RETURN`));
    // The proxy's RETURN comes before the catch-all redirect.
    assert.ok(text.indexOf('-t nat -A WEFT_OUTPUT -m owner --uid-owner 1337 -j RETURN') < text.indexOf('-t nat -A WEFT_OUTPUT -j WEFT_REDIRECT'));
  });

  it("takes istio-iptables' flags (--dry-run prints, changes nothing)", () => {
    const r = weft(['iptables', '--dry-run', '-p', '15101', '-z', '15106', '-u', '2000', '-i', '10.0.0.0/8,192.168.1.1', '-x', '10.9.0.0/16', '-b', '8080,9090', '-d', '9090', '-o', '5432']);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.ok(lines.includes('iptables -t nat -A WEFT_REDIRECT -p tcp -j REDIRECT --to-ports 15101'));
    assert.ok(lines.includes('iptables -t nat -A WEFT_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15106'));
    assert.ok(lines.includes('iptables -t nat -A WEFT_OUTPUT -d 10.0.0.0/8 -j WEFT_REDIRECT'));
    assert.ok(lines.includes('iptables -t nat -A WEFT_OUTPUT -d 192.168.1.1/32 -j WEFT_REDIRECT'));
    assert.ok(lines.includes('iptables -t nat -A WEFT_OUTPUT -d 10.9.0.0/16 -j RETURN'));
    assert.ok(lines.includes('iptables -t nat -A WEFT_INBOUND -p tcp --dport 8080 -j WEFT_IN_REDIRECT'));
    assert.ok(!lines.some((l) => l.includes('--dport 9090 -j WEFT_IN_REDIRECT')), 'excluded inbound port');
    assert.ok(lines.includes('iptables -t nat -A WEFT_OUTPUT -p tcp --dport 5432 -j RETURN'));
    assert.ok(lines.includes('iptables -t nat -A WEFT_OUTPUT -m owner --gid-owner 2000 -j RETURN'), 'gid defaults to the uid');
    const cleanup = weft(['iptables', '--cleanup', '--dry-run']);
    assert.equal(cleanup.status, 0);
    assert.match(cleanup.stdout, /iptables -t nat -X WEFT_OUTPUT/);
  });

  it('refuses bad flags with a usage error', () => {
    const r = weft(['iptables', '--dry-run', '-i', '10.0.0.300/8']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /not an IPv4 address or CIDR/);
    const none = weft(['iptables', '--dry-run', '-u', '', '-g', '']);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /proxy's own traffic would be captured/);
  });
});

describe('the SO_ORIGINAL_DST addon', () => {
  it('a missing addon is an error with a hint, not a silent fallback', () => {
    assert.throws(() => loadOriginalDstAddon('/nonexistent/original_dst.node'), (err: Error) => {
      assert.ok(err instanceof CaptureUnavailableError);
      assert.match(err.message, /npm run build:native/);
      return true;
    });
  });
});

describe('weft iptables in a network namespace', () => {
  before(() => {
    requireCapturePrerequisites();
    spawnSync('ip', ['netns', 'del', NS]);
    const r = spawnSync('ip', ['netns', 'add', NS], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    spawnSync('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  });
  after(() => {
    spawnSync('ip', ['netns', 'del', NS]);
  });

  it('installs the rules and --cleanup leaves the nat table exactly as it was', () => {
    const before = natTable(NS);
    const install = weft(['iptables', '-u', '1337', '-x', '10.9.0.0/16'], NS);
    assert.equal(install.status, 0, install.stderr);
    const during = natTable(NS);
    assert.match(during, /-A OUTPUT -p tcp -j WEFT_OUTPUT/);
    assert.match(during, /-A WEFT_REDIRECT -p tcp -j REDIRECT --to-ports 15001/);
    assert.match(during, /-A WEFT_OUTPUT -d 10\.9\.0\.0\/16 -j RETURN/);
    // A second install is refused rather than doubled.
    const again = weft(['iptables'], NS);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /already installed.*--cleanup/);
    const cleanup = weft(['iptables', '--cleanup'], NS);
    assert.equal(cleanup.status, 0, cleanup.stderr);
    assert.equal(natTable(NS), before);
    // Cleaning up what is not there is fine.
    assert.equal(weft(['iptables', '--cleanup'], NS).status, 0);
  });

  it('leaves rules that are not its own alone', () => {
    spawnSync('ip', ['netns', 'exec', NS, 'iptables', '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '--dport', '9', '-j', 'RETURN']);
    const before = natTable(NS);
    assert.equal(weft(['iptables'], NS).status, 0);
    assert.equal(weft(['iptables', '--cleanup'], NS).status, 0);
    assert.equal(natTable(NS), before);
    assert.match(natTable(NS), /--dport 9 -j RETURN/);
  });

  it('reads the original destination of a REDIRECTed connection', async () => {
    spawnSync('ip', ['netns', 'exec', NS, 'iptables', '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', '240.240.9.9', '-j', 'REDIRECT', '--to-ports', '15999']);
    const veth = spawnSync('ip', ['-n', NS, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1'], { encoding: 'utf8' });
    assert.equal(veth.status, 0, veth.stderr);
    spawnSync('ip', ['-n', NS, 'addr', 'add', '10.250.92.2/24', 'dev', 'v0']);
    spawnSync('ip', ['-n', NS, 'link', 'set', 'v0', 'up']);
    spawnSync('ip', ['-n', NS, 'link', 'set', 'v1', 'up']);
    spawnSync('ip', ['-n', NS, 'route', 'add', 'default', 'via', '10.250.92.1']);
    const server = `
      const { loadOriginalDstAddon, originalDestinationHook } = require(${JSON.stringify(path.join(REPO, 'dist', 'src', 'capture', 'original-destination.js'))});
      const hook = originalDestinationHook();
      require('net').createServer((s) => s.end(JSON.stringify(hook(s)) + '\\n')).listen(15999, '0.0.0.0', () => console.log('listening'));`;
    const child = spawn('ip', ['netns', 'exec', NS, process.execPath, '-e', server], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      await waitFor(() => out.includes('listening'), { timeoutMs: 30_000, message: 'server listening' });
      const client = `require('net').connect(9080, '240.240.9.9').on('data', (d) => { process.stdout.write(d); process.exit(0); });`;
      const r = spawnSync('ip', ['netns', 'exec', NS, process.execPath, '-e', client], { encoding: 'utf8', timeout: 30_000 });
      assert.deepEqual(JSON.parse(r.stdout), { ip: '240.240.9.9', port: 9080 });
    } finally {
      child.kill('SIGKILL');
    }
  });
});
