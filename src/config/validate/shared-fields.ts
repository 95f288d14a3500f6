// Field schemas several kinds share: label maps, workload selectors, exportTo, port names and protocols.
import { childPath, ProblemCode, type ProblemCollector } from '../problems';
import { exportToErrors, isDns1123Label, labelKeyError, labelValueError, protocolError } from './formats';
import { mapOf, object, string, type Schema } from './schema';

/** Kubernetes-style labels (Istio's labels.Instance.Validate). */
export function labelMap(): Schema {
  return mapOf(string({ check: (value, path, problems) => report(problems, path, labelValueError(value)) }), {
    key: (key, path, problems) => report(problems, path, labelKeyError(key)),
  });
}

/**
 * Label selectors of policies and DestinationRules (`matchLabels`): no empty keys and no wildcards;
 * an empty selector is a warning (it selects every workload in the namespace).
 */
export function matchLabelsSelector(field: 'matchLabels' | 'labels'): Schema {
  return object(
    { [field]: mapOf(string()) },
    {
      check: (selector: Record<string, Record<string, string> | undefined>, path, problems) => {
        const labels = selector[field] ?? {};
        for (const [key, value] of Object.entries(labels)) {
          const at = childPath(childPath(path, field), key);
          if (key === '') problems.error(ProblemCode.InvalidValue, at, `empty key is not supported in selector: "=${value}"`);
          if (key.includes('*') || value.includes('*')) {
            problems.error(ProblemCode.InvalidValue, at, `wildcard is not supported in selector: "${key}=${value}"`);
          }
        }
        if (Object.keys(labels).length === 0) {
          problems.warn(
            ProblemCode.SuspiciousConfig,
            path,
            'workload selector specified without labels; it selects every workload in the namespace',
          );
        }
      },
    },
  );
}

/** `exportTo`: checked against the resource's namespace, which the collector knows. */
export function exportToList(isServiceEntry: boolean): Schema {
  return {
    typeName: 'list',
    validate(value, path, problems) {
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
        problems.structural(ProblemCode.WrongType, path, 'must be a list of strings');
        return false;
      }
      for (const message of exportToErrors(problems.subject.namespace, value as string[], isServiceEntry)) {
        problems.error(ProblemCode.InvalidValue, path, message);
      }
      return true;
    },
  };
}

/** A port name that must be a DNS-1123 label (ServiceEntry and WorkloadEntry ports). */
export function portNameError(name: string): string | undefined {
  return isDns1123Label(name) ? undefined : `invalid port name: ${JSON.stringify(name)} (must be a DNS-1123 label)`;
}

/** A port's protocol: one Istio knows (HTTP, HTTPS, GRPC, TCP, TLS, ...), or empty for protocol sniffing. */
export function protocolName(): Schema {
  return string({ check: (value, path, problems) => report(problems, path, protocolError(value)) });
}

/** Reports `message` as an InvalidValue error at `path` when there is one. */
export function report(problems: ProblemCollector, path: string, message: string | undefined): void {
  if (message) problems.error(ProblemCode.InvalidValue, path, message);
}
