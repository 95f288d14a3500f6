// Config problems: what parsing, validation and analysis report about a resource, with stable codes.
//
// Codes follow `istioctl analyze`: cross-resource findings reuse Istio's analyzer codes (ISTnnnn,
// https://istio.io/latest/docs/reference/config/analysis/); schema and value errors found while
// reading a single document use our own WEFT-Vnnnn codes, since Istio reports those as plain
// admission-webhook errors without a code.
//
// | code        | name                             | severity        | raised when                                                        |
// |-------------|----------------------------------|-----------------|--------------------------------------------------------------------|
// | WEFT-V0001  | YamlSyntaxError                  | error           | a YAML document does not parse (line and column given)             |
// | WEFT-V0002  | MalformedDocument                | error           | a document is not a mapping, or lacks apiVersion/kind              |
// | WEFT-V0003  | UnknownKind                      | warning         | kind is not one Weft reads; the document is skipped                |
// | WEFT-V0004  | UnsupportedApiVersion            | error           | apiVersion is not a served group/version for the kind              |
// | WEFT-V0005  | InvalidMetadata                  | error           | metadata.name/namespace/labels missing or malformed                |
// | WEFT-V0006  | UnknownField                     | error           | a field the kind's schema does not define (Istio's CRDs reject it) |
// | WEFT-V0007  | WrongType                        | error           | a value of the wrong JSON type (string where a number goes, ...)   |
// | WEFT-V0008  | MissingRequiredField             | error           | a required field is absent or empty                                |
// | WEFT-V0009  | InvalidValue                     | error           | a value out of range, not in an enum, or malformed (host, regex,   |
// |             |                                  |                 | duration, port, label, IP, ...)                                    |
// | WEFT-V0010  | ConflictingFields                | error           | fields that exclude each other are both set                        |
// | WEFT-V0011  | DuplicateEntry                   | error / warning | names, ports or hosts that must be unique are repeated             |
// | WEFT-V0012  | DeprecatedField                  | warning         | a deprecated field or value is used                                |
// | WEFT-V0013  | SuspiciousConfig                 | warning         | valid but very likely not what was meant (Istio's warnings)        |
// | IST0101     | ReferencedResourceNotFound       | error / warning | a route's subset, gateway or delegate does not exist (error); a    |
// |             |                                  |                 | destination host is unknown to the registry (warning)              |
// | IST0109     | ConflictingMeshGatewayVirtual-   | warning         | two VirtualServices bound to the mesh gateway define the same host |
// |             | ServiceHosts                     |                 |                                                                    |
// | IST0130     | VirtualServiceUnreachableRule    | warning         | a route can never match (after a catch-all, or duplicate matches)  |
// | IST0131     | VirtualServiceIneffectiveMatch   | warning         | a match repeats an earlier one and is never used                   |
// | IST0173     | DestinationRuleSubsetNotSelect-  | warning         | a subset's labels select none of the service's known workloads     |
// |             | Pods                             |                 |                                                                    |

export interface ConfigProblem {
  /** Istio analyzer-style code (IST0101) or our own schema code (WEFT-V0006); see the table above. */
  code: string;
  severity: 'error' | 'warning';
  /** The resource the problem is about; '' when the document has none (e.g. a YAML syntax error). */
  kind: string;
  namespace: string;
  name: string;
  /** Origin of the document. */
  file?: string;
  document?: number;
  /** 1-based position in the file, when known (parsing and validation of YAML text). */
  line?: number;
  column?: number;
  /** Field path, e.g. 'spec.http[0].route[1].weight'; '' for the whole document. */
  path: string;
  /** Human sentence; may end with a hint. */
  message: string;
}

export const ProblemCode = {
  YamlSyntaxError: 'WEFT-V0001',
  MalformedDocument: 'WEFT-V0002',
  UnknownKind: 'WEFT-V0003',
  UnsupportedApiVersion: 'WEFT-V0004',
  InvalidMetadata: 'WEFT-V0005',
  UnknownField: 'WEFT-V0006',
  WrongType: 'WEFT-V0007',
  MissingRequiredField: 'WEFT-V0008',
  InvalidValue: 'WEFT-V0009',
  ConflictingFields: 'WEFT-V0010',
  DuplicateEntry: 'WEFT-V0011',
  DeprecatedField: 'WEFT-V0012',
  SuspiciousConfig: 'WEFT-V0013',
  ReferencedResourceNotFound: 'IST0101',
  ConflictingMeshGatewayVirtualServiceHosts: 'IST0109',
  VirtualServiceUnreachableRule: 'IST0130',
  VirtualServiceIneffectiveMatch: 'IST0131',
  DestinationRuleSubsetNotSelectPods: 'IST0173',
} as const;

export type ProblemCodeValue = (typeof ProblemCode)[keyof typeof ProblemCode];

/**
 * One line, istioctl-style:
 * `Error [IST0101] VirtualService default/reviews (reviews.yaml#0) spec.http[0].route[0].destination.subset: ...`
 * The origin shows `#document` and, when known, `line N`.
 */
export function formatProblem(p: ConfigProblem): string {
  const parts: string[] = [`${p.severity === 'error' ? 'Error' : 'Warning'} [${p.code}]`];
  if (p.kind || p.name) {
    const subject = p.name ? `${p.namespace ? `${p.namespace}/` : ''}${p.name}` : '';
    parts.push([p.kind, subject].filter(Boolean).join(' '));
  }
  const origin = formatOrigin(p);
  if (origin) parts.push(`(${origin})`);
  const where = p.path ? `${p.path}: ` : '';
  return `${parts.join(' ')} ${where}${p.message}`;
}

function formatOrigin(p: ConfigProblem): string {
  let origin = p.file ?? '';
  if (p.document !== undefined) origin += `#${p.document}`;
  if (p.line !== undefined) origin += `${origin ? ', ' : ''}line ${p.line}`;
  return origin;
}

// ---------------------------------------------------------------------------------------------
// Field paths: 'spec.http[0].match[0].headers["end-user"].exact'

export type PathSegment = string | number;

const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `parent.key`, or `parent["odd key"]` when the key is not a plain identifier. */
export function childPath(parent: string, key: string): string {
  if (PLAIN_KEY.test(key)) return parent ? `${parent}.${key}` : key;
  return `${parent}[${JSON.stringify(key)}]`;
}

export function indexPath(parent: string, index: number): string {
  return `${parent}[${index}]`;
}

/** Splits a rendered path back into segments (numbers for list indexes), for locating YAML nodes. */
export function pathSegments(path: string): PathSegment[] {
  const segments: PathSegment[] = [];
  const token = /([A-Za-z_$][A-Za-z0-9_$]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]|\./gy;
  let match: RegExpExecArray | null;
  while (token.lastIndex < path.length && (match = token.exec(path)) !== null) {
    if (match[1] !== undefined) segments.push(match[1]);
    else if (match[2] !== undefined) segments.push(Number(match[2]));
    else if (match[3] !== undefined) segments.push(JSON.parse(match[3]) as string);
  }
  return segments;
}

// ---------------------------------------------------------------------------------------------
// Collecting problems for one resource

/** What a problem is about and where it came from. */
export interface ProblemSubject {
  kind: string;
  namespace: string;
  name: string;
  file?: string;
  document?: number;
}

export interface SourcePosition {
  line: number;
  column: number;
}

/** Finds the YAML position of a field path; provided by the parser when it has the text. */
export type LocateField = (segments: readonly PathSegment[]) => SourcePosition | undefined;

/**
 * Accumulates errors and warnings for one resource, never stopping at the first.
 * `structuralFailures` counts type errors, so semantic checks can skip an object whose fields do not
 * have the types they expect.
 */
export class ProblemCollector {
  readonly errors: ConfigProblem[] = [];
  readonly warnings: ConfigProblem[] = [];
  structuralFailures = 0;

  constructor(
    public subject: ProblemSubject,
    private readonly locate?: LocateField,
  ) {}

  error(code: string, path: string, message: string): void {
    this.errors.push(this.problem(code, 'error', path, message));
  }

  warn(code: string, path: string, message: string): void {
    this.warnings.push(this.problem(code, 'warning', path, message));
  }

  /** A value of the wrong type: later semantic checks of the enclosing objects are skipped. */
  structural(code: string, path: string, message: string): void {
    this.structuralFailures++;
    this.error(code, path, message);
  }

  private problem(code: string, severity: 'error' | 'warning', path: string, message: string): ConfigProblem {
    const { kind, namespace, name, file, document } = this.subject;
    const problem: ConfigProblem = { code, severity, kind, namespace, name, path, message };
    if (file !== undefined) problem.file = file;
    if (document !== undefined) problem.document = document;
    const position = this.locate?.(pathSegments(path));
    if (position) {
      problem.line = position.line;
      problem.column = position.column;
    }
    return problem;
  }
}
