// reviews: two reviews of the book, as Istio's reviews (LibertyRestEndpoint.java). v1 never calls
// ratings; v2 adds black stars and v3 red stars from the ratings service. Istio's timeouts for
// that call are kept: 10 s for black stars, 2.5 s otherwise. When ratings fails, each review
// carries {"error": "Ratings service is currently unavailable"} instead of stars.
import type { IncomingHttpHeaders } from 'node:http';
import { route, sendJson, type Route } from './http-app';
import type { MeshClient } from './mesh-client';
import { propagatedHeaders } from './trace-propagation';
import type { WorkloadConfig } from './workload';

export const RATINGS_UNAVAILABLE = 'Ratings service is currently unavailable';

export interface ReviewsOptions {
  readonly ratingsEnabled: boolean;
  readonly starColor: string;
  /** Base URL of the ratings endpoint, e.g. http://ratings:9080/ratings. */
  readonly ratingsUrl: string;
  readonly ratingsTimeoutMs: number;
  readonly podName: string;
  readonly clusterName: string;
}

/**
 * Istio's knobs: ENABLE_RATINGS, STAR_COLOR, RATINGS_HOSTNAME, SERVICES_DOMAIN; SERVICE_VERSION
 * picks the defaults its Deployments set (v1: no ratings, v2: black, v3: red).
 */
export function reviewsOptionsFromEnv(config: WorkloadConfig, env: NodeJS.ProcessEnv = process.env): ReviewsOptions {
  const ratingsEnabled = env.ENABLE_RATINGS !== undefined ? env.ENABLE_RATINGS === 'true' : config.version !== 'v1';
  const starColor = env.STAR_COLOR || (config.version === 'v3' ? 'red' : 'black');
  const domain = env.SERVICES_DOMAIN ? `.${env.SERVICES_DOMAIN}` : '';
  return {
    ratingsEnabled,
    starColor,
    ratingsUrl: `http://${env.RATINGS_HOSTNAME || 'ratings'}${domain}:9080/ratings`,
    ratingsTimeoutMs: starColor === 'black' ? 10_000 : 2_500,
    podName: config.podName,
    clusterName: config.clusterName,
  };
}

export type Rating = { stars: number; color: string } | { error: string };

export interface Review {
  reviewer: string;
  text: string;
  rating?: Rating;
}

export interface ProductReviews {
  id: string;
  podname: string;
  clustername: string;
  reviews: Review[];
}

const REVIEWS: ReadonlyArray<{ reviewer: string; text: string }> = [
  { reviewer: 'Reviewer1', text: 'An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!' },
  { reviewer: 'Reviewer2', text: 'Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.' },
];

export function reviewsRoutes(options: ReviewsOptions, client: MeshClient): Route[] {
  return [
    route('GET', /^\/health$/, ({ res }) => sendJson(res, 200, { status: 'Reviews is healthy' })),
    route('GET', /^\/reviews\/([^/]+)$/, async ({ req, res, params }) => {
      const raw = params[0] ?? '';
      if (!/^-?\d+$/.test(raw)) {
        sendJson(res, 404, { error: 'please provide numeric product id' });
        return;
      }
      const productId = String(Number(raw));
      const stars = options.ratingsEnabled ? await fetchStars(productId, req.headers, options, client) : undefined;
      sendJson(res, 200, {
        id: productId,
        podname: options.podName,
        clustername: options.clusterName,
        reviews: REVIEWS.map((review): Review => {
          if (!options.ratingsEnabled) return { ...review };
          const count = stars?.[review.reviewer];
          const rating: Rating = count === undefined ? { error: RATINGS_UNAVAILABLE } : { stars: count, color: options.starColor };
          return { ...review, rating };
        }),
      } satisfies ProductReviews);
    }),
  ];
}

/** Stars by reviewer, or undefined when ratings did not answer 200 in time. */
async function fetchStars(
  productId: string,
  incoming: IncomingHttpHeaders,
  options: ReviewsOptions,
  client: MeshClient,
): Promise<Record<string, number> | undefined> {
  const result = await client.getJson(`${options.ratingsUrl}/${productId}`, {
    headers: propagatedHeaders(incoming),
    timeoutMs: options.ratingsTimeoutMs,
  });
  if (!result.ok) return undefined;
  const body = result.body;
  const ratings = typeof body === 'object' && body !== null ? (body as { ratings?: unknown }).ratings : undefined;
  if (typeof ratings !== 'object' || ratings === null) return {};
  const stars: Record<string, number> = {};
  for (const [reviewer, value] of Object.entries(ratings)) {
    if (typeof value === 'number' && Number.isInteger(value)) stars[reviewer] = value;
  }
  return stars;
}
