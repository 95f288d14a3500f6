// ratings: stars per reviewer, held in memory, as Istio's ratings.js without a database. Its
// SERVICE_VERSION variants for resilience demos are kept: `v-faulty` answers 503 half the time,
// `v-delayed` answers after 7 s half the time.
import { readBody, route, sendJson, type Route } from './http-app';

export interface ProductRatings {
  id: number;
  ratings: Record<string, number>;
}

export interface RatingsOptions {
  version: string;
  /** Injected for tests; Math.random by default. */
  random?: () => number;
}

export function ratingsRoutes(options: RatingsOptions): Route[] {
  const random = options.random ?? Math.random;
  // Ratings posted by users replace the defaults for that product (ratings.js userAddedRatings).
  const posted = new Map<number, ProductRatings>();
  const ratingsOf = (id: number): ProductRatings => posted.get(id) ?? { id, ratings: { Reviewer1: 5, Reviewer2: 4 } };

  return [
    route('GET', /^\/health$/, ({ res }) => sendJson(res, 200, { status: 'Ratings is healthy' })),
    route('GET', /^\/ratings\/(\d*)$/, ({ res, params }) => {
      const id = Number.parseInt(params[0] ?? '', 10);
      if (Number.isNaN(id)) {
        sendJson(res, 400, { error: 'please provide numeric product ID' });
        return;
      }
      if (options.version === 'v-faulty' && random() <= 0.5) {
        sendJson(res, 503, { error: 'Service unavailable' });
        return;
      }
      if (options.version === 'v-delayed' && random() <= 0.5) {
        const timer = setTimeout(() => sendJson(res, 200, ratingsOf(id)), 7000);
        res.on('close', () => clearTimeout(timer));
        return;
      }
      sendJson(res, 200, ratingsOf(id));
    }),
    route('POST', /^\/ratings\/(\d*)$/, async ({ req, res, params }) => {
      const id = Number.parseInt(params[0] ?? '', 10);
      if (Number.isNaN(id)) {
        sendJson(res, 400, { error: 'please provide numeric product ID' });
        return;
      }
      let ratings: unknown;
      try {
        ratings = JSON.parse((await readBody(req)).toString('utf8'));
      } catch {
        sendJson(res, 400, { error: 'please provide valid ratings JSON' });
        return;
      }
      if (typeof ratings !== 'object' || ratings === null || Array.isArray(ratings)) {
        sendJson(res, 400, { error: 'please provide valid ratings JSON' });
        return;
      }
      posted.set(id, { id, ratings: ratings as Record<string, number> });
      sendJson(res, 200, ratingsOf(id));
    }),
  ];
}
