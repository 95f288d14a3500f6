// details: the book's bibliographic record, as Istio's details.rb serves it.
import { route, sendJson, type Route } from './http-app';

export interface BookDetails {
  id: number;
  author: string;
  year: number;
  type: string;
  pages: number;
  publisher: string;
  language: string;
  'ISBN-10': string;
  'ISBN-13': string;
}

export function bookDetails(id: number): BookDetails {
  return {
    id,
    author: 'William Shakespeare',
    year: 1595,
    type: 'paperback',
    pages: 200,
    publisher: 'PublisherA',
    language: 'English',
    'ISBN-10': '1234567890',
    'ISBN-13': '123-1234567890',
  };
}

export function detailsRoutes(): Route[] {
  return [
    route('GET', /^\/health$/, ({ res }) => sendJson(res, 200, { status: 'Details is healthy' })),
    route('GET', /^\/details(?:\/([^/]*))?\/?$/, ({ res, params }) => {
      const raw = params[0] ?? '';
      if (!/^-?\d+$/.test(raw)) {
        sendJson(res, 400, { error: 'please provide numeric product id' });
        return;
      }
      sendJson(res, 200, bookDetails(Number(raw)));
    }),
  ];
}
