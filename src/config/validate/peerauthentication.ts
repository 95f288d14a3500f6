// PeerAuthentication (security.istio.io): schema plus Istio's ValidatePeerAuthentication. Read and checked
// now so users' files are accepted; mTLS enforcement comes later.
import { childPath, ProblemCode } from '../problems';
import { enumOf, mapOf, object, type Schema } from './schema';
import { matchLabelsSelector } from './shared-fields';

const mtls = () => object({ mode: enumOf(['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT']) });

interface PeerAuthenticationShape {
  selector?: { matchLabels?: Record<string, string> };
  mtls?: { mode?: string };
  portLevelMtls?: Record<string, { mode?: string }>;
}

export const peerAuthenticationSpec: Schema = object<PeerAuthenticationShape>(
  { selector: matchLabelsSelector('matchLabels'), mtls: mtls(), portLevelMtls: mapOf(mtls()) },
  {
    check: (policy, path, problems) => {
      const ports = policy.portLevelMtls;
      if (!ports) return;
      const at = childPath(path, 'portLevelMtls');
      const emptySelector = Object.keys(policy.selector?.matchLabels ?? {}).length === 0;
      if (emptySelector && Object.keys(ports).length > 0) {
        problems.error(ProblemCode.ConflictingFields, at, 'mesh/namespace peer authentication cannot have port level mTLS; add a selector');
      }
      if (Object.keys(ports).length === 0)
        problems.error(ProblemCode.InvalidValue, at, 'port level mTLS, if defined, must have at least one element');
      for (const port of Object.keys(ports)) {
        const number = /^\d+$/.test(port) ? Number(port) : NaN;
        if (!(number >= 1 && number <= 65535))
          problems.error(ProblemCode.InvalidValue, childPath(at, port), `port ${JSON.stringify(port)} must be a number in range 1..65535`);
      }
    },
  },
);
