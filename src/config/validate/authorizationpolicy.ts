// AuthorizationPolicy (security.istio.io): schema plus the rule-structure checks of Istio's
// ValidateAuthorizationPolicy. Read and checked now so users' files are accepted; enforcement comes later.
import { childPath, indexPath, ProblemCode, type ProblemCollector } from '../problems';
import { ipSubnetError, portError } from './formats';
import { arrayOf, enumOf, object, string, type Schema } from './schema';
import { checkOneTargetKind, policyTargetFields } from './policy-targets';
import { report } from './shared-fields';

const SOURCE_FIELDS = [
  'principals',
  'notPrincipals',
  'requestPrincipals',
  'notRequestPrincipals',
  'namespaces',
  'notNamespaces',
  'ipBlocks',
  'notIpBlocks',
  'remoteIpBlocks',
  'notRemoteIpBlocks',
  'serviceAccounts',
  'notServiceAccounts',
] as const;

const OPERATION_FIELDS = ['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths'] as const;

type Source = Partial<Record<(typeof SOURCE_FIELDS)[number], string[]>>;
type Operation = Partial<Record<(typeof OPERATION_FIELDS)[number], string[]>>;

interface Rule {
  from?: { source?: Source }[];
  to?: { operation?: Operation }[];
  when?: { key: string; values?: string[]; notValues?: string[] }[];
}

interface AuthorizationPolicyShape {
  selector?: unknown;
  targetRef?: unknown;
  targetRefs?: unknown[];
  rules?: Rule[];
  action?: string;
  provider?: { name?: string };
}

const stringList = () => arrayOf(string());

/** Attributes usable in `when` conditions (Istio's security.ValidateAttribute). */
const CONDITION_KEYS = new Set([
  'source.ip',
  'remote.ip',
  'source.namespace',
  'source.principal',
  'source.serviceAccount',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
  'destination.ip',
  'destination.port',
  'connection.sni',
]);

function conditionKeyError(key: string): string | undefined {
  if (CONDITION_KEYS.has(key)) return undefined;
  if (
    /^request\.headers\[[^\]]+\]$/.test(key) ||
    /^request\.auth\.claims\[.+\]$/.test(key) ||
    key.startsWith('experimental.envoy.filters.')
  )
    return undefined;
  return `unknown attribute ${JSON.stringify(key)}; see https://istio.io/latest/docs/reference/config/security/conditions/`;
}

function conditionValueError(key: string, value: string): string | undefined {
  if (key === 'source.ip' || key === 'remote.ip' || key === 'destination.ip') return ipSubnetError(value);
  if (key === 'destination.port') return /^\d+$/.test(value) ? portError(Number(value)) : `port ${JSON.stringify(value)} must be a number`;
  return undefined;
}

function checkNoEmptyValues(values: string[] | undefined, path: string, problems: ProblemCollector): void {
  (values ?? []).forEach((v, i) => {
    if (v === '') problems.error(ProblemCode.InvalidValue, indexPath(path, i), 'empty value not allowed');
  });
}

function checkRule(rule: Rule, index: number, action: string, path: string, problems: ProblemCollector): void {
  const at = (field: string) => childPath(path, field);
  if (rule.from && rule.from.length === 0)
    problems.error(ProblemCode.MissingRequiredField, at('from'), `\`from\` must not be empty, found at rule ${index}`);
  (rule.from ?? []).forEach((from, i) => {
    const fromPath = indexPath(at('from'), i);
    const source = from.source;
    if (!source) {
      problems.error(
        ProblemCode.MissingRequiredField,
        childPath(fromPath, 'source'),
        `\`from.source\` must not be nil, found at rule ${index}`,
      );
      return;
    }
    const sourcePath = childPath(fromPath, 'source');
    const count = (fields: readonly (keyof Source)[]) => fields.reduce((n, f) => n + (source[f]?.length ?? 0), 0);
    if (count(['principals', 'notPrincipals', 'namespaces', 'notNamespaces']) > 0 && count(['serviceAccounts', 'notServiceAccounts']) > 0) {
      problems.error(
        ProblemCode.ConflictingFields,
        sourcePath,
        `cannot set serviceAccounts with namespaces or principals, found at rule ${index}`,
      );
    }
    if (count(SOURCE_FIELDS) === 0)
      problems.error(ProblemCode.MissingRequiredField, sourcePath, `\`from.source\` must not be empty, found at rule ${index}`);
    for (const field of SOURCE_FIELDS) checkNoEmptyValues(source[field], childPath(sourcePath, field), problems);
    for (const field of ['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks'] as const) {
      (source[field] ?? []).forEach((ip, j) => {
        if (ip !== '') report(problems, indexPath(childPath(sourcePath, field), j), ipSubnetError(ip));
      });
    }
    if (action === 'CUSTOM') {
      for (const field of [
        'namespaces',
        'notNamespaces',
        'serviceAccounts',
        'notServiceAccounts',
        'principals',
        'notPrincipals',
        'requestPrincipals',
        'notRequestPrincipals',
      ] as const) {
        if (source[field]?.length)
          problems.error(
            ProblemCode.InvalidValue,
            childPath(sourcePath, field),
            `From.${field[0].toUpperCase()}${field.slice(1)} is currently not supported with CUSTOM action`,
          );
      }
    }
  });
  if (rule.to && rule.to.length === 0)
    problems.error(ProblemCode.MissingRequiredField, at('to'), `\`to\` must not be empty, found at rule ${index}`);
  (rule.to ?? []).forEach((to, i) => {
    const toPath = indexPath(at('to'), i);
    const operation = to.operation;
    if (!operation) {
      problems.error(
        ProblemCode.MissingRequiredField,
        childPath(toPath, 'operation'),
        `\`to.operation\` must not be nil, found at rule ${index}`,
      );
      return;
    }
    const operationPath = childPath(toPath, 'operation');
    if (OPERATION_FIELDS.every((f) => !operation[f]?.length))
      problems.error(ProblemCode.MissingRequiredField, operationPath, `\`to.operation\` must not be empty, found at rule ${index}`);
    for (const field of OPERATION_FIELDS) checkNoEmptyValues(operation[field], childPath(operationPath, field), problems);
    for (const field of ['ports', 'notPorts'] as const) {
      (operation[field] ?? []).forEach((port, j) => {
        if (port !== '')
          report(
            problems,
            indexPath(childPath(operationPath, field), j),
            /^\d+$/.test(port) ? portError(Number(port)) : `port ${JSON.stringify(port)} must be a number`,
          );
      });
    }
  });
  (rule.when ?? []).forEach((condition, i) => {
    const conditionPath = indexPath(at('when'), i);
    if (!condition.key) {
      problems.error(ProblemCode.MissingRequiredField, childPath(conditionPath, 'key'), '`key` must not be empty');
      return;
    }
    report(problems, childPath(conditionPath, 'key'), conditionKeyError(condition.key));
    if (!condition.values?.length && !condition.notValues?.length) {
      problems.error(
        ProblemCode.MissingRequiredField,
        conditionPath,
        `at least one of \`values\` or \`notValues\` must be set for key ${condition.key}`,
      );
    }
    for (const field of ['values', 'notValues'] as const) {
      (condition[field] ?? []).forEach((value, j) =>
        report(problems, indexPath(childPath(conditionPath, field), j), conditionValueError(condition.key, value)),
      );
    }
    if (
      action === 'CUSTOM' &&
      (['source.namespace', 'source.serviceAccount', 'source.principal'].includes(condition.key) ||
        condition.key.startsWith('request.auth.'))
    ) {
      problems.error(
        ProblemCode.InvalidValue,
        childPath(conditionPath, 'key'),
        `${condition.key} is currently not supported with CUSTOM action`,
      );
    }
  });
}

function checkAuthorizationPolicy(policy: AuthorizationPolicyShape, path: string, problems: ProblemCollector): void {
  const action = policy.action ?? 'ALLOW';
  checkOneTargetKind(policy, path, problems);
  if (action === 'CUSTOM') {
    if (policy.rules === undefined) {
      problems.error(
        ProblemCode.MissingRequiredField,
        childPath(path, 'rules'),
        'CUSTOM action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request',
      );
    } else if (!policy.provider?.name) {
      problems.error(ProblemCode.MissingRequiredField, childPath(childPath(path, 'provider'), 'name'), '`provider.name` must not be empty');
    }
  }
  if (policy.provider && action !== 'CUSTOM') {
    problems.error(
      ProblemCode.ConflictingFields,
      childPath(path, 'provider'),
      `\`provider\` must not be with non CUSTOM action, found ${action}`,
    );
  }
  if (action === 'DENY' && policy.rules === undefined) {
    problems.error(
      ProblemCode.MissingRequiredField,
      childPath(path, 'rules'),
      'DENY action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request',
    );
  }
  (policy.rules ?? []).forEach((rule, i) => checkRule(rule, i, action, indexPath(childPath(path, 'rules'), i), problems));
}

const sourceSchema: Schema = object(Object.fromEntries(SOURCE_FIELDS.map((f) => [f, stringList()])));
const operationSchema: Schema = object(Object.fromEntries(OPERATION_FIELDS.map((f) => [f, stringList()])));

const ruleSchema: Schema = object({
  from: arrayOf(object({ source: sourceSchema })),
  to: arrayOf(object({ operation: operationSchema })),
  when: arrayOf(object({ key: string(), values: stringList(), notValues: stringList() })),
});

export const authorizationPolicySpec: Schema = object<AuthorizationPolicyShape>(
  {
    ...policyTargetFields,
    rules: arrayOf(ruleSchema),
    action: enumOf(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']),
    provider: object({ name: string() }),
  },
  { check: checkAuthorizationPolicy },
);
