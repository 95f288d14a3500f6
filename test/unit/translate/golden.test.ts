// Golden tests: test/unit/translate/golden/<case>/{in.yaml, proxy.json} -> out.json, the full
// translation for that proxy. REFRESH_GOLDEN=1 rewrites out.json; review the diff.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { translateForProxy } from '../../../src/xds/translate';
import { loadFixture } from './load-fixture';
import { assertEncodable, assertGrpcAccepts, toPlain } from './resource-checks';

// Tests run from dist/; goldens live in the source tree.
const GOLDEN_DIR = path.resolve(__dirname, '../../../../test/unit/translate/golden');
const REFRESH = process.env.REFRESH_GOLDEN === '1';

describe('translate golden cases', () => {
  const cases = fs.readdirSync(GOLDEN_DIR).filter((d) => fs.existsSync(path.join(GOLDEN_DIR, d, 'in.yaml'))).sort();
  it('has golden cases', () => assert.ok(cases.length > 0));
  for (const name of cases) {
    it(name, () => {
      const dir = path.join(GOLDEN_DIR, name);
      const { snapshot, proxy } = loadFixture(dir);
      const generated = translateForProxy(snapshot, proxy);
      const actual = `${JSON.stringify(toPlain(generated), null, 2)}\n`;
      const outFile = path.join(dir, 'out.json');
      if (REFRESH) fs.writeFileSync(outFile, actual);
      assert.ok(fs.existsSync(outFile), `${name}: no out.json yet (run with REFRESH_GOLDEN=1 and review it)`);
      assert.equal(actual, fs.readFileSync(outFile, 'utf8'), `${name}: output differs from out.json (REFRESH_GOLDEN=1 to update)`);
      assertEncodable(generated);
      if (proxy.type === 'proxyless') assertGrpcAccepts(generated);
      // Determinism: a second run gives identical output.
      assert.equal(`${JSON.stringify(toPlain(translateForProxy(snapshot, proxy)), null, 2)}\n`, actual);
    });
  }
});
