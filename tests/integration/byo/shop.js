// A team's own k6 script, as teams write them: groups, name tags, checks, thresholds, data from a CSV file.
import http from 'k6/http';
import { check, group, sleep } from 'k6';
import { SharedArray } from 'k6/data';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8080';
const auth = { 'X-Token': __ENV.API_TOKEN || '' };
const users = new SharedArray('users', () => open('./users.csv').split('\n').slice(1).filter((l) => l.length > 0));

export const options = {
  vus: 2,
  iterations: 6,
  thresholds: {
    http_req_failed: ['rate<0.5'],
    'http_req_duration{name:product}': [__ENV.STRICT ? 'p(95)<0.001' : 'p(95)<5000'],
    checks: ['rate>0.9'],
  },
};

export default function () {
  const user = users[__ITER % users.length].split(',')[0];
  group('browse', () => {
    const res = http.get(`${BASE}/products`, { headers: auth, tags: { name: 'list products' } });
    check(res, { 'status is 200': (r) => r.status === 200 });
    http.get(`${BASE}/products/7`, { headers: auth, tags: { name: 'product' } });
  });
  group('checkout', () => {
    const res = http.post(`${BASE}/cart`, JSON.stringify({ user: user }), {
      headers: Object.assign({ 'Content-Type': 'application/json' }, auth),
      tags: { name: 'add to cart' },
    });
    check(res, { 'added': (r) => r.status === 201 });
  });
  http.get(`${BASE}/health`, { headers: auth }); // no name tag: its URL names it
  sleep(0.05);
}
