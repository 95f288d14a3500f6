// RequestAuthentication (security.istio.io): schema plus Istio's ValidateRequestAuthentication (JWT rules).
// Read and checked now so users' files are accepted; JWT enforcement comes later.
import { childPath, indexPath, ProblemCode, type ProblemCollector } from '../problems';
import { arrayOf, boolean, duration, object, string, type Schema } from './schema';
import { checkOneTargetKind, policyTargetFields } from './policy-targets';

interface JwtRule {
  issuer?: string;
  audiences?: string[];
  jwksUri?: string;
  jwks?: string;
  fromHeaders?: { name?: string; prefix?: string }[];
  fromParams?: string[];
  fromCookies?: string[];
  outputClaimToHeaders?: { header?: string; claim?: string }[];
}

function jwksUriError(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return `jwksUri ${JSON.stringify(uri)} is not a valid URL`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `jwksUri ${JSON.stringify(uri)} must use http or https`;
  if (!url.hostname) return `jwksUri ${JSON.stringify(uri)} has no host`;
  return undefined;
}

function jwksError(jwks: string): string | undefined {
  try {
    const parsed = JSON.parse(jwks) as { keys?: unknown };
    if (typeof parsed !== 'object' || parsed === null || (!Array.isArray(parsed.keys) && !('kty' in parsed)))
      return 'jwks parse error: expected a JSON Web Key Set ({"keys": [...]})';
    return undefined;
  } catch (err) {
    return `jwks parse error: ${(err as Error).message}`;
  }
}

function checkJwtRule(rule: JwtRule, path: string, problems: ProblemCollector): void {
  const at = (field: string) => childPath(path, field);
  (rule.audiences ?? []).forEach((audience, i) => {
    if (audience === '') problems.error(ProblemCode.InvalidValue, indexPath(at('audiences'), i), 'audience must be non-empty string');
  });
  if (!rule.issuer && !rule.jwksUri)
    problems.error(ProblemCode.MissingRequiredField, at('issuer'), 'issuer or jwksUri must be non-empty string');
  if (rule.jwksUri) {
    const error = jwksUriError(rule.jwksUri);
    if (error) problems.error(ProblemCode.InvalidValue, at('jwksUri'), error);
  }
  if (rule.jwks) {
    const error = jwksError(rule.jwks);
    if (error) problems.error(ProblemCode.InvalidValue, at('jwks'), error);
  }
  (rule.fromHeaders ?? []).forEach((header, i) => {
    if (!header.name)
      problems.error(
        ProblemCode.MissingRequiredField,
        childPath(indexPath(at('fromHeaders'), i), 'name'),
        'location header name must be non-empty string',
      );
  });
  (rule.fromParams ?? []).forEach((param, i) => {
    if (param === '') problems.error(ProblemCode.InvalidValue, indexPath(at('fromParams'), i), 'location query must be non-empty string');
  });
  (rule.fromCookies ?? []).forEach((cookie, i) => {
    if (cookie === '') problems.error(ProblemCode.InvalidValue, indexPath(at('fromCookies'), i), 'cookie name must be non-empty string');
  });
  (rule.outputClaimToHeaders ?? []).forEach((entry, i) => {
    const entryPath = indexPath(at('outputClaimToHeaders'), i);
    if (!entry.claim || !entry.header) {
      problems.error(ProblemCode.MissingRequiredField, entryPath, 'outputClaimToHeaders header and claim value must be non-empty string');
    } else if (!/^[-A-Za-z0-9]+$/.test(entry.header)) {
      problems.error(ProblemCode.InvalidValue, childPath(entryPath, 'header'), `header name ${entry.header} is not a valid header name`);
    }
  });
}

const jwtRuleSchema: Schema = object<JwtRule>(
  {
    issuer: string(),
    audiences: arrayOf(string()),
    jwksUri: string(),
    jwks: string(),
    fromHeaders: arrayOf(object({ name: string(), prefix: string() })),
    fromParams: arrayOf(string()),
    fromCookies: arrayOf(string()),
    outputPayloadToHeader: string(),
    forwardOriginalToken: boolean(),
    outputClaimToHeaders: arrayOf(object({ header: string(), claim: string() })),
    timeout: duration(),
  },
  { check: checkJwtRule },
);

export const requestAuthenticationSpec: Schema = object(
  { ...policyTargetFields, jwtRules: arrayOf(jwtRuleSchema) },
  {
    check: (policy: { selector?: unknown; targetRef?: unknown; targetRefs?: unknown[] }, path, problems) =>
      checkOneTargetKind(policy, path, problems),
  },
);
