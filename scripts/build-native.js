#!/usr/bin/env node
// Builds the SO_ORIGINAL_DST addon (native/) at install time with node-gyp, offline: node-gyp is
// npm's own copy, and the headers are those of the running Node (<prefix>/include/node, which
// Debian's and nodejs.org's Node ship), passed as --nodedir so nothing is downloaded.
//
// Only transparent capture (`weft proxy --capture`, `weft run --netns`) needs the addon, so a
// machine without a compiler still installs Weft: the failure is written to
// native/build-error.txt and reported, with this text, when capture is asked for — never a
// silent fallback.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const native = path.resolve(__dirname, '..', 'native');
const errorFile = path.join(native, 'build-error.txt');

function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  try {
    candidates.push(require.resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    /* not a dependency */
  }
  return candidates.find((c) => c && fs.existsSync(c));
}

function nodeDir() {
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined;
}

function fail(reason) {
  fs.writeFileSync(errorFile, reason.trim() + '\n');
  process.stderr.write(
    `weft: the SO_ORIGINAL_DST addon (native/) was not built: ${reason.trim().split('\n').slice(-3).join(' | ')}\n` +
      'weft: everything but transparent capture works; see native/build-error.txt, then `npm run build:native`\n',
  );
  process.exit(process.env.WEFT_REQUIRE_NATIVE === '1' ? 1 : 0);
}

if (process.platform !== 'linux') fail(`transparent capture needs Linux (this is ${process.platform})`);
const gyp = nodeGyp();
if (!gyp) fail('node-gyp not found (it comes with npm; hint: run the install with npm)');
const dir = nodeDir();
if (!dir) fail(`the headers of this Node (${process.execPath}) are not in <prefix>/include/node (hint: install the Node development headers, e.g. Debian's libnode-dev, or a nodejs.org build)`);
const result = spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${dir}`], { cwd: native, encoding: 'utf8' });
if (result.status !== 0) {
  fail(`node-gyp rebuild failed (needs g++, make and python3): ${(result.stderr || '') + (result.stdout || '')}`.slice(-4000) || String(result.error));
}
fs.rmSync(errorFile, { force: true });
process.stdout.write('weft: built native/build/Release/original_dst.node (SO_ORIGINAL_DST)\n');
