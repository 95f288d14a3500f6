// productpage: the Bookinfo front end, as Istio's productpage.py. It calls details and then
// reviews (each with a 3 s timeout; reviews is tried twice, the deliberate application-level retry
// Istio's fault-injection task relies on), renders the page, and carries the signed-in user (a
// `user` cookie set by /login) to reviews as the `end-user` header.
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { readBody, route, sendHtml, sendJson, sendText, type Route } from './http-app';
import type { MeshClient, UpstreamResult } from './mesh-client';
import { renderIndex, renderProductPage, type ReviewsView, type UpstreamView } from './productpage-html';
import { pickHeaders, TRACE_CONTEXT_HEADERS } from './trace-propagation';

export const DETAILS_UNAVAILABLE = 'Sorry, product details are currently unavailable for this book.';
export const REVIEWS_UNAVAILABLE = 'Sorry, product reviews are currently unavailable for this book.';
export const RATINGS_UNAVAILABLE_FOR_BOOK = 'Sorry, product ratings are currently unavailable for this book.';

export interface Product {
  id: number;
  title: string;
  descriptionHtml: string;
}

const PRODUCTS: readonly Product[] = [
  {
    id: 0,
    title: 'The Comedy of Errors',
    descriptionHtml:
      '<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">Wikipedia Summary</a>: The Comedy of Errors is one of <b>William Shakespeare\'s</b> early plays. It is his shortest and one of his most farcical comedies, with a major part of the humour coming from slapstick and mistaken identity, in addition to puns and word play.',
  },
];

export interface ProductPageOptions {
  /** Service base URLs by mesh name: http://details:9080 etc. */
  readonly detailsUrl: string;
  readonly reviewsUrl: string;
  readonly ratingsUrl: string;
  /** Per attempt. Istio's productpage: 3 s. */
  readonly callTimeoutMs: number;
  /** Attempts at reviews. Istio's productpage: 2 (one retry). */
  readonly reviewsAttempts: number;
}

/** Istio's knobs: DETAILS_HOSTNAME, REVIEWS_HOSTNAME, RATINGS_HOSTNAME, SERVICES_DOMAIN. */
export function productPageOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): ProductPageOptions {
  const domain = env.SERVICES_DOMAIN ? `.${env.SERVICES_DOMAIN}` : '';
  const base = (host: string | undefined, fallback: string) => `http://${host || fallback}${domain}:9080`;
  return {
    detailsUrl: base(env.DETAILS_HOSTNAME, 'details'),
    reviewsUrl: base(env.REVIEWS_HOSTNAME, 'reviews'),
    ratingsUrl: base(env.RATINGS_HOSTNAME, 'ratings'),
    callTimeoutMs: 3000,
    reviewsAttempts: 2,
  };
}

/** Reads `name` from a Cookie header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    const raw = part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
    try {
      return decodeURIComponent(raw);
    } catch {
      return raw;
    }
  }
  return undefined;
}

function signedInUser(headers: IncomingHttpHeaders): string {
  return readCookie(headers.cookie, 'user') ?? '';
}

/**
 * What productpage sends with every call: the trace context, the client's user-agent and
 * credentials (cookie, authorization, jwt, as Istio's sample), and `end-user` = the signed-in user.
 * Without a session an incoming `end-user` header is passed on, so scripted clients can pose as a
 * user without the login round trip.
 */
export function forwardHeaders(incoming: IncomingHttpHeaders): Record<string, string> {
  const headers = pickHeaders(incoming, [...TRACE_CONTEXT_HEADERS, 'user-agent', 'cookie', 'authorization', 'jwt']);
  const user = signedInUser(incoming) || pickHeaders(incoming, ['end-user'])['end-user'];
  if (user) headers['end-user'] = user;
  return headers;
}

export function productPageRoutes(options: ProductPageOptions, client: MeshClient): Route[] {
  const call = (url: string, headers: Record<string, string>) => client.getJson(url, { headers, timeoutMs: options.callTimeoutMs });

  const failure = (result: UpstreamResult | undefined, error: string): UpstreamView<never> => ({
    status: result && !result.ok && result.status ? result.status : 500,
    body: { error },
  });

  const getDetails = async (id: string, headers: Record<string, string>): Promise<UpstreamView<Record<string, unknown>>> => {
    const result = await call(`${options.detailsUrl}/details/${id}`, headers);
    return result.ok ? { status: 200, body: result.body as Record<string, unknown> } : failure(result, DETAILS_UNAVAILABLE);
  };

  const getReviews = async (id: string, headers: Record<string, string>): Promise<UpstreamView<ReviewsView>> => {
    let result: UpstreamResult | undefined;
    for (let attempt = 0; attempt < options.reviewsAttempts; attempt++) {
      result = await call(`${options.reviewsUrl}/reviews/${id}`, headers);
      if (result.ok) return { status: 200, body: result.body as ReviewsView };
    }
    return failure(result, REVIEWS_UNAVAILABLE);
  };

  const getRatings = async (id: string, headers: Record<string, string>): Promise<UpstreamView<unknown>> => {
    const result = await call(`${options.ratingsUrl}/ratings/${id}`, headers);
    return result.ok ? { status: 200, body: result.body } : failure(result, RATINGS_UNAVAILABLE_FOR_BOOK);
  };

  const signIn = (res: ServerResponse, user: string | undefined) => {
    const headers: Record<string, string> = { location: '/productpage' };
    if (user) headers['set-cookie'] = `user=${encodeURIComponent(user)}; Path=/`;
    res.writeHead(302, headers);
    res.end();
  };

  return [
    route('GET', /^\/(?:index\.html)?$/, ({ res }) => sendHtml(res, 200, renderIndex())),
    route('GET', /^\/health$/, ({ res }) => sendText(res, 200, 'Product page is healthy')),
    route('POST', /^\/login$/, async ({ req, res, url }) => {
      const form = new URLSearchParams((await readBody(req)).toString('utf8'));
      signIn(res, form.get('username') ?? url.searchParams.get('username') ?? undefined);
    }),
    // Not in Istio's sample: GET /login?user=jason signs in from a script in one request.
    route('GET', /^\/login$/, ({ res, url }) => signIn(res, url.searchParams.get('user') ?? url.searchParams.get('username') ?? undefined)),
    route('GET', /^\/logout$/, ({ res }) => {
      res.writeHead(302, { location: '/productpage', 'set-cookie': 'user=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT' });
      res.end();
    }),
    route('GET', /^\/productpage$/, async ({ req, res }) => {
      const product = PRODUCTS[0]!;
      const headers = forwardHeaders(req.headers);
      // Sequential, as Istio's productpage: details first, then reviews.
      const details = await getDetails(String(product.id), headers);
      const reviews = await getReviews(String(product.id), headers);
      sendHtml(res, 200, renderProductPage({ product, details, reviews, user: signedInUser(req.headers) }));
    }),
    route('GET', /^\/api\/v1\/products$/, ({ res }) => sendJson(res, 200, PRODUCTS)),
    route('GET', /^\/api\/v1\/products\/([^/]+)$/, async ({ req, res, params }) => {
      const view = await getDetails(params[0]!, forwardHeaders(req.headers));
      sendJson(res, view.status, view.body);
    }),
    route('GET', /^\/api\/v1\/products\/([^/]+)\/reviews$/, async ({ req, res, params }) => {
      const view = await getReviews(params[0]!, forwardHeaders(req.headers));
      sendJson(res, view.status, view.body);
    }),
    route('GET', /^\/api\/v1\/products\/([^/]+)\/ratings$/, async ({ req, res, params }) => {
      const view = await getRatings(params[0]!, forwardHeaders(req.headers));
      sendJson(res, view.status, view.body);
    }),
  ];
}
