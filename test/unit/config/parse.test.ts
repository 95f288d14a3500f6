// YAML ingestion: multi-document files, origins, empty documents, `kind: List`, syntax errors with lines.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseYamlDocuments } from '../../../src/config/parse';
import { dedent } from './config-test-support';

describe('parseYamlDocuments', () => {
  it('returns every document with its file and 0-based document index', () => {
    const text = dedent(`
      apiVersion: v1
      kind: Service
      metadata: {name: a}
      ---
      apiVersion: v1
      kind: Service
      metadata: {name: b}
    `);
    const { documents, problems } = parseYamlDocuments(text, { file: 'services.yaml', source: 'file' });
    assert.deepEqual(problems, []);
    assert.deepEqual(
      documents.map((d) => d.origin),
      [
        { file: 'services.yaml', source: 'file', document: 0 },
        { file: 'services.yaml', source: 'file', document: 1 },
      ],
    );
    assert.deepEqual(documents[1].raw, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'b' } });
  });

  it('skips empty documents but keeps the index of each document in the file', () => {
    const text = '---\n# only a comment\n---\napiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\n';
    const { documents, problems } = parseYamlDocuments(text, { file: 'x.yaml', source: 'file' });
    assert.deepEqual(problems, []);
    assert.equal(documents.length, 1);
    assert.equal(documents[0].origin.document, 1);
  });

  it('returns nothing for an empty file', () => {
    assert.deepEqual(parseYamlDocuments('', { source: 'test' }), { documents: [], problems: [] });
    assert.deepEqual(parseYamlDocuments('# nothing here\n', { source: 'test' }), { documents: [], problems: [] });
  });

  it('expands kind: List into its items, each with the List document as origin', () => {
    const text = dedent(`
      apiVersion: v1
      kind: Service
      metadata: {name: first}
      ---
      apiVersion: v1
      kind: List
      items:
      - apiVersion: v1
        kind: Service
        metadata: {name: a}
      - apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: b}
        spec: {host: b}
    `);
    const { documents } = parseYamlDocuments(text, { file: 'list.yaml', source: 'file' });
    assert.deepEqual(
      documents.map((d) => [(d.raw as { metadata: { name: string } }).metadata.name, d.origin.document]),
      [
        ['first', 0],
        ['a', 1],
        ['b', 1],
      ],
    );
    // Positions inside a List item point into the item.
    assert.deepEqual(documents[2].locate?.(['spec', 'host']), { line: 14, column: 10 });
  });

  it('reports a List whose items are not a list', () => {
    const { documents, problems } = parseYamlDocuments('apiVersion: v1\nkind: List\nitems: {a: 1}\n', { file: 'l.yaml', source: 'file' });
    assert.equal(documents.length, 0);
    assert.equal(problems.length, 1);
    assert.equal(problems[0].code, 'WEFT-V0002');
    assert.equal(problems[0].path, 'items');
    assert.equal(problems[0].line, 3);
  });

  it('turns a YAML syntax error into a problem with file, document and line, and keeps the other documents', () => {
    const text = dedent(`
      apiVersion: v1
      kind: Service
      metadata: {name: good}
      ---
      apiVersion: v1
      kind: Service
      metadata:
        name: [broken
    `);
    const { documents, problems } = parseYamlDocuments(text, { file: 'bad.yaml', source: 'file' });
    assert.equal(documents.length, 1);
    assert.ok(problems.length >= 1);
    const [problem] = problems;
    assert.equal(problem.code, 'WEFT-V0001');
    assert.equal(problem.severity, 'error');
    assert.equal(problem.file, 'bad.yaml');
    assert.equal(problem.document, 1);
    assert.equal(typeof problem.line, 'number');
    assert.ok(problem.line! >= 8, `line ${problem.line}`);
    assert.match(problem.message, /^YAML syntax error \(line \d+, column \d+\): /);
  });

  it('reports duplicate keys, which Kubernetes also rejects', () => {
    const { documents, problems } = parseYamlDocuments('kind: Service\nkind: Gateway\n', { file: 'dup.yaml', source: 'file' });
    assert.equal(documents.length, 0);
    assert.equal(problems[0].code, 'WEFT-V0001');
    assert.equal(problems[0].line, 2);
    assert.match(problems[0].message, /unique/);
  });

  it('expands anchors and merge keys, as Kubernetes does', () => {
    const text = dedent(`
      apiVersion: v1
      kind: Service
      metadata: {name: a}
      spec:
        selector: &app {app: reviews}
        ports:
        - &http {port: 9080, name: http}
        - <<: *http
          name: http-alt
          port: 9081
    `);
    const [doc] = parseYamlDocuments(text, { source: 'test' }).documents;
    assert.deepEqual((doc.raw as { spec: unknown }).spec, {
      selector: { app: 'reviews' },
      ports: [
        { port: 9080, name: 'http' },
        { port: 9081, name: 'http-alt' },
      ],
    });
  });

  it('locates field paths: the key of the deepest field that exists', () => {
    const text = dedent(`
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata:
        name: reviews
      spec:
        http:
        - route:
          - destination:
              host: reviews
    `);
    const [doc] = parseYamlDocuments(text, { source: 'test' }).documents;
    assert.deepEqual(doc.locate?.(['spec', 'http', 0, 'route', 0, 'destination', 'host']), { line: 9, column: 9 });
    // A missing field points at the nearest existing ancestor.
    assert.deepEqual(doc.locate?.(['spec', 'http', 0, 'route', 0, 'destination', 'subset']), { line: 8, column: 7 });
  });
});
