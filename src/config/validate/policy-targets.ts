// What security policies apply to: a workload selector or Gateway-API-style targetRefs (never both).
import { childPath, ProblemCode, type ProblemCollector } from '../problems';
import { arrayOf, object, string, type Schema } from './schema';
import { matchLabelsSelector } from './shared-fields';

/** Kinds a policy may target (group '' is the core group). */
const ALLOWED_TARGETS = [
  { group: '', kind: 'Service' },
  { group: 'networking.istio.io', kind: 'ServiceEntry' },
  { group: 'gateway.networking.k8s.io', kind: 'Gateway' },
  { group: 'gateway.networking.k8s.io', kind: 'GatewayClass' },
];

interface TargetRef {
  group?: string;
  kind: string;
  name: string;
  namespace?: string;
}

const targetRefSchema: Schema = object<TargetRef>(
  { group: string(), kind: string(), name: string(), namespace: string() },
  {
    required: ['kind', 'name'],
    check: (ref, path, problems) => {
      if (ref.namespace)
        problems.error(
          ProblemCode.InvalidValue,
          childPath(path, 'namespace'),
          'targetRef namespace must not be set; cross namespace referencing is not supported',
        );
      const group = ref.group ?? '';
      if (!ALLOWED_TARGETS.some((t) => t.group === group && t.kind === ref.kind)) {
        const allowed = ALLOWED_TARGETS.map((t) => `${t.group || 'core'}/${t.kind}`).join(', ');
        problems.error(ProblemCode.InvalidValue, path, `targetRef must be to one of ${allowed} but was ${group || 'core'}/${ref.kind}`);
      }
    },
  },
);

/** The `selector`, `targetRef` and `targetRefs` fields of security policies. */
export const policyTargetFields = {
  selector: matchLabelsSelector('matchLabels'),
  targetRef: targetRefSchema,
  targetRefs: arrayOf(targetRefSchema),
};

/** Istio's validateOneOfSelectorType. */
export function checkOneTargetKind(
  policy: { selector?: unknown; targetRef?: unknown; targetRefs?: unknown[] },
  path: string,
  problems: ProblemCollector,
): void {
  const set = [
    policy.selector ? 'selector' : '',
    policy.targetRef ? 'targetRef' : '',
    policy.targetRefs?.length ? 'targetRefs' : '',
  ].filter(Boolean);
  if (set.length > 1)
    problems.error(
      ProblemCode.ConflictingFields,
      childPath(path, set[1]),
      `only one of targetRefs or workloadSelector can be set (found ${set.join(' and ')})`,
    );
}
