// The HTML of productpage: the index and the product page. The markup follows Istio's Bootstrap
// template where tools and tasks look at it (class names, `<font color="...">` around
// glyphicon-star spans, the error texts, "Reviews served by:"); a few inline styles stand in for
// the Bootstrap assets so the page reads well without them. The styles never spell the glyphicon
// class names, so counting "glyphicon-star" in the page counts stars only.
import type { Product } from './productpage';

export interface UpstreamView<T> {
  /** 200 when the call succeeded; otherwise the upstream's status or 500. */
  status: number;
  body: T | { error: string };
}

export interface ProductPageModel {
  product: Product;
  details: UpstreamView<Record<string, unknown>>;
  reviews: UpstreamView<ReviewsView>;
  user: string;
}

export interface ReviewsView {
  podname?: string;
  clustername?: string;
  reviews?: Array<{ reviewer?: string; text?: string; rating?: { stars?: number; color?: string; error?: string } }>;
}

export function escapeHtml(value: unknown): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const STYLE = `
  body { font-family: Helvetica, Arial, sans-serif; margin: 0; color: #333; }
  .navbar { background: #222; color: #ddd; padding: 10px 20px; display: flex; justify-content: space-between; align-items: center; }
  .navbar a, .navbar-brand { color: #fff; text-decoration: none; }
  .navbar-brand { font-size: 18px; }
  .container-fluid { padding: 0 20px; }
  .row { display: flex; flex-wrap: wrap; gap: 20px; }
  .col-md-6 { flex: 1 1 400px; }
  .text-center { text-align: center; }
  .text-primary { color: #337ab7; }
  blockquote { border-left: 5px solid #eee; margin: 0 0 20px; padding: 10px 20px; }
  blockquote small { display: block; color: #777; }
  font > span::before { content: "\\2605"; }
  font > span[class$="-empty"]::before { content: "\\2606"; }
  .navbar i[aria-hidden]::before { content: "\\263A"; margin-right: 5px; }
  table { border-collapse: collapse; } td, th { border: 1px solid #ddd; padding: 4px 8px; }
`;

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
${body}
</body>
</html>
`;
}

export function renderIndex(): string {
  return page(
    'Simple Bookstore App',
    `<nav class="navbar"><span class="navbar-brand">BookInfo Sample</span></nav>
<div class="container-fluid">
  <h3>Hello! This is a simple bookstore application consisting of four services:</h3>
  <table class="table table-condensed table-bordered table-hover">
    <tr><th>service</th><th>calls</th></tr>
    <tr><td>productpage</td><td>details, reviews</td></tr>
    <tr><td>details</td><td>-</td></tr>
    <tr><td>reviews</td><td>ratings (v2 and v3)</td></tr>
    <tr><td>ratings</td><td>-</td></tr>
  </table>
  <p>Follow a link to send a request through the services as a normal user or as a test user:</p>
  <p><a href="productpage?u=normal">Normal user</a></p>
  <p><a href="productpage?u=test">Test user</a></p>
</div>`,
  );
}

function renderNavbar(user: string): string {
  const right = user
    ? `<p class="navbar-text navbar-right"><i class="glyphicon glyphicon-user" aria-hidden="true"></i><span>Welcome ${escapeHtml(user)}</span> ( <a href="logout">Sign out</a> )</p>`
    : `<form class="navbar-form navbar-right" method="post" action="login" name="login_form">
    <input type="text" class="form-control" name="username" id="username" placeholder="User Name">
    <input type="password" class="form-control" name="passwd" placeholder="Password">
    <button type="submit" class="btn btn-default">Sign in</button>
  </form>`;
  return `<nav class="navbar navbar-inverse navbar-static-top">
  <a class="navbar-brand" href="#">BookInfo Sample</a>
  ${right}
</nav>`;
}

function renderDetails(view: UpstreamView<Record<string, unknown>>): string {
  if (view.status !== 200 || 'error' in view.body) {
    return `<h4 class="text-center text-primary">Error fetching product details!</h4>
      <p>${escapeHtml((view.body as { error?: string }).error)}</p>`;
  }
  const d = view.body;
  return `<h4 class="text-center text-primary">Book Details</h4>
      <dl>
        <dt>Type:</dt>${escapeHtml(d.type)}
        <dt>Pages:</dt>${escapeHtml(d.pages)}
        <dt>Publisher:</dt>${escapeHtml(d.publisher)}
        <dt>Language:</dt>${escapeHtml(d.language)}
        <dt>ISBN-10:</dt>${escapeHtml(d['ISBN-10'])}
        <dt>ISBN-13:</dt>${escapeHtml(d['ISBN-13'])}
      </dl>`;
}

function renderStars(stars: number, color: string): string {
  const full = Math.max(0, Math.min(5, Math.trunc(stars)));
  const spans = [
    ...Array.from({ length: full }, () => '<span class="glyphicon glyphicon-star"></span>'),
    ...Array.from({ length: 5 - full }, () => '<span class="glyphicon glyphicon-star-empty"></span>'),
  ];
  return `<font color="${escapeHtml(color)}">
          ${spans.join('\n          ')}
        </font>`;
}

function renderReviews(view: UpstreamView<ReviewsView>): string {
  if (view.status !== 200 || 'error' in view.body) {
    return `<h4 class="text-center text-primary">Error fetching product reviews!</h4>
      <p>${escapeHtml((view.body as { error?: string }).error)}</p>`;
  }
  const body = view.body;
  const quotes = (body.reviews ?? []).map((review) => {
    let rating = '';
    // As Istio's template: zero stars shows nothing, an error shows the error in italics.
    if (review.rating?.stars) rating = renderStars(review.rating.stars, review.rating.color ?? 'black');
    else if (review.rating?.error) rating = `<p><i>${escapeHtml(review.rating.error)}</i></p>`;
    return `<blockquote>
        <p>${escapeHtml(review.text)}</p>
        <small>${escapeHtml(review.reviewer)}</small>
        ${rating}
      </blockquote>`;
  });
  const cluster = body.clustername && body.clustername !== 'null' ? ` on cluster ${escapeHtml(body.clustername)}` : '';
  return `<h4 class="text-center text-primary">Book Reviews</h4>
      ${quotes.join('\n      ')}
      <p class="served-by">Reviews served by: ${escapeHtml(body.podname)}${cluster}</p>`;
}

export function renderProductPage(model: ProductPageModel): string {
  return page(
    'Simple Bookstore App',
    `${renderNavbar(model.user)}
<div class="container-fluid">
  <div class="row">
    <div class="col-md-12">
      <h3 class="text-center text-primary">${escapeHtml(model.product.title)}</h3>
      <p>Summary: ${model.product.descriptionHtml}</p>
    </div>
  </div>
  <div class="row">
    <div class="col-md-6">
      ${renderDetails(model.details)}
    </div>
    <div class="col-md-6">
      ${renderReviews(model.reviews)}
    </div>
  </div>
</div>`,
  );
}
