// The edge Worker in real workerd (through Miniflare), against upstream HTTP servers on loopback.
//
// Miniflare options used: modules + scriptPath, bindings (ROUTES/ORIGINS as the JSON strings
// edgekit generates), cf: false (no download of the request.cf data: stays offline) and a
// compatibilityDate the bundled workerd supports. No option is needed for the Worker to fetch
// http://127.0.0.1:<port>: Miniflare's outbound "internet" service allows
// ["public", "private", "240.0.0.0/4"], and "private" includes loopback.
//
// Run: npm test  (node --test test/), with WRANGLER_SEND_METRICS=false etc. as in README.md.

import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";

const SCRIPT = fileURLToPath(new URL("../src/index.js", import.meta.url));
const COMPATIBILITY_DATE = "2026-04-01"; // workerd 1.20260426 supports up to 2026-04-26
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const WAIT_MS = 5000;

/** Rejects after `ms` so no wait in this file can hang the run. */
function bounded(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * An upstream that records every request and answers with its own name. Paths steer it:
 * containing "cookie" → Set-Cookie; "private" → Cache-Control: private; "no-store" →
 * Cache-Control: no-store. `status` forces an answer status (e.g. 503).
 */
async function startUpstream(name, { status = 200 } = {}) {
  const hits = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      hits.push({
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      });
      const headers = { "content-type": "text/plain", "x-upstream": name };
      if (req.url.includes("cookie")) headers["set-cookie"] = "session=abc; Path=/";
      if (req.url.includes("private")) headers["cache-control"] = "private, max-age=60";
      if (req.url.includes("no-store")) headers["cache-control"] = "no-store";
      res.writeHead(status, headers);
      res.end(status === 200 ? name : `${name} is unwell`);
    });
  });
  // Longer than any test: a pooled connection closed by the server while workerd reuses it
  // would show up as a spurious "Network connection lost".
  server.keepAliveTimeout = 60000;
  await bounded(new Promise((resolve) => server.listen(0, "127.0.0.1", resolve)), WAIT_MS,
    `${name} listen`);
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    name,
    url,
    hits,
    reset() {
      hits.length = 0;
    },
    async stop() {
      server.closeAllConnections();
      await bounded(new Promise((resolve) => server.close(resolve)), WAIT_MS, `${name} close`);
    },
  };
}

/** A loopback URL on which nothing listens (connection refused). */
async function refusingUrl() {
  const server = http.createServer();
  await bounded(new Promise((resolve) => server.listen(0, "127.0.0.1", resolve)), WAIT_MS,
    "listen");
  const { port } = server.address();
  await bounded(new Promise((resolve) => server.close(resolve)), WAIT_MS, "close");
  return `http://127.0.0.1:${port}`;
}

describe("edge worker in workerd", () => {
  let mf;
  const up = {};
  let downA;
  let downB;

  before(async () => {
    for (const name of ["api", "web", "heavy", "light", "idle", "spare", "sick"]) {
      up[name] = await startUpstream(name, name === "sick" ? { status: 503 } : {});
    }
    downA = await refusingUrl();
    downB = await refusingUrl();
    const routes = {
      "api.edgekit.test": { service: "api", cache_paths: [], cache_ttl_seconds: 0 },
      "www.edgekit.test": {
        service: "web", cache_paths: ["/", "/assets/"], cache_ttl_seconds: 300,
      },
      "split.edgekit.test": { service: "split", cache_paths: [], cache_ttl_seconds: 0 },
      "even.edgekit.test": { service: "even", cache_paths: [], cache_ttl_seconds: 0 },
      "failover.edgekit.test": { service: "failover", cache_paths: [], cache_ttl_seconds: 0 },
      "flaky.edgekit.test": { service: "flaky", cache_paths: [], cache_ttl_seconds: 0 },
      "dead.edgekit.test": { service: "dead", cache_paths: ["/"], cache_ttl_seconds: 60 },
      "lonely.edgekit.test": { service: "lonely", cache_paths: [], cache_ttl_seconds: 0 },
    };
    const origins = {
      api: [{ url: up.api.url, weight: 1 }],
      web: [{ url: `${up.web.url}/`, weight: 1 }], // a trailing slash must not double up
      split: [
        { url: up.heavy.url, weight: 80 },
        { url: up.light.url, weight: 20 },
        { url: up.idle.url, weight: 0 },
      ],
      even: [{ url: up.heavy.url, weight: 0 }, { url: up.light.url, weight: 0 }],
      // The refusing origin is always chosen first; the weight-0 spare is only the failover.
      failover: [{ url: downA, weight: 1 }, { url: up.spare.url, weight: 0 }],
      flaky: [{ url: up.sick.url, weight: 1 }, { url: up.spare.url, weight: 0 }],
      dead: [{ url: downA, weight: 1 }, { url: downB, weight: 1 }],
      lonely: [{ url: downB, weight: 1 }],
    };
    mf = new Miniflare({
      modules: true,
      scriptPath: SCRIPT,
      compatibilityDate: COMPATIBILITY_DATE,
      cf: false,
      bindings: { ROUTES: JSON.stringify(routes), ORIGINS: JSON.stringify(origins) },
    });
    await bounded(mf.ready, 30000, "miniflare ready");
  });

  test("without an Access token configured, a client's CF-Access headers never reach an origin", async () => {
    up.api.reset();
    const r = await get("http://api.edgekit.test/x", {
      headers: { "cf-access-client-id": "forged", "cf-access-client-secret": "forged" },
    });
    assert.equal(r.res.status, 200);
    assert.equal(up.api.hits.at(-1).headers["cf-access-client-id"], undefined);
    assert.equal(up.api.hits.at(-1).headers["cf-access-client-secret"], undefined);
  });

  after(async () => {
    if (mf) await bounded(mf.dispose(), 30000, "miniflare dispose");
    await Promise.all(Object.values(up).map((u) => u.stop()));
  });

  /** dispatchFetch with a bound on the whole exchange; returns the response and its text. */
  async function get(url, init = {}) {
    return bounded((async () => {
      const res = await mf.dispatchFetch(url, init);
      return { res, body: await res.text() };
    })(), WAIT_MS, `${init.method ?? "GET"} ${url}`);
  }

  /** Waits (bounded) until the Worker's waitUntil(cache.put) has stored `url`. */
  async function waitForCached(url) {
    const caches = await mf.getCaches();
    const deadline = Date.now() + WAIT_MS;
    while (Date.now() < deadline) {
      const hit = await caches.default.match(url);
      if (hit) {
        await hit.text();
        return;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.fail(`${url} was not stored in the cache within ${WAIT_MS} ms`);
  }

  test("routes by host to the right service, forwarding method, path, query and body", async () => {
    up.api.reset();
    up.web.reset();
    const a = await get("http://api.edgekit.test/v1/items?x=1&y=2");
    assert.equal(a.res.status, 200);
    assert.equal(a.body, "api");
    const w = await get("http://WWW.edgekit.test:8443/about");
    assert.equal(w.body, "web");
    assert.equal(up.web.hits.at(-1).url, "/about");

    const p = await get("http://api.edgekit.test/v1/items", {
      method: "POST", body: '{"n":1}', headers: { "content-type": "application/json" },
    });
    assert.equal(p.body, "api");
    assert.deepEqual(up.api.hits.map((h) => [h.method, h.url]),
      [["GET", "/v1/items?x=1&y=2"], ["POST", "/v1/items"]]);
    assert.equal(up.api.hits[1].body, '{"n":1}');
    assert.equal(up.api.hits[1].headers["content-type"], "application/json");
    assert.equal(up.api.hits[0].headers["x-forwarded-host"], "api.edgekit.test");
    // The origin URL's host is kept: the tunnel routes on it.
    assert.equal(up.api.hits[0].headers.host, new URL(up.api.url).host);
  });

  test("an unknown host is a 404 with a short body and a request id", async () => {
    const { res, body } = await get("http://nowhere.edgekit.test/");
    assert.equal(res.status, 404);
    assert.equal(body.trim(), "unknown host");
    assert.match(res.headers.get("x-request-id"), UUID);
    const again = await get("http://nowhere.edgekit.test/", { headers: { "x-request-id": "r-404" } });
    assert.equal(again.res.headers.get("x-request-id"), "r-404");
  });

  test("the request id is propagated upstream, sanitised, or generated when absent", async () => {
    up.api.reset();
    const given = await get("http://api.edgekit.test/id", {
      headers: { "x-request-id": "req-123.abc_DEF" },
    });
    assert.equal(given.res.headers.get("x-request-id"), "req-123.abc_DEF");
    assert.equal(up.api.hits[0].headers["x-request-id"], "req-123.abc_DEF");

    const dirty = await get("http://api.edgekit.test/id", {
      headers: { "x-request-id": `a b/<c>${"z".repeat(300)}` },
    });
    const cleaned = dirty.res.headers.get("x-request-id");
    assert.equal(cleaned, `abc${"z".repeat(125)}`);
    assert.equal(up.api.hits[1].headers["x-request-id"], cleaned);

    const absent = await get("http://api.edgekit.test/id");
    const generated = absent.res.headers.get("x-request-id");
    assert.match(generated, UUID);
    assert.equal(up.api.hits[2].headers["x-request-id"], generated);
    const other = await get("http://api.edgekit.test/id");
    assert.notEqual(other.res.headers.get("x-request-id"), generated);
  });

  test("a cacheable GET is a MISS, then a HIT without reaching the upstream", async () => {
    up.web.reset();
    const url = "http://www.edgekit.test/assets/app.js?v=1";
    const first = await get(url, { headers: { "x-request-id": "first" } });
    assert.equal(first.res.status, 200);
    assert.equal(first.res.headers.get("x-edge-cache"), "MISS");
    assert.equal(first.body, "web");
    await waitForCached(url);

    const second = await get(url, { headers: { "x-request-id": "second" } });
    assert.equal(second.res.status, 200);
    assert.equal(second.res.headers.get("x-edge-cache"), "HIT");
    assert.equal(second.body, "web");
    assert.equal(second.res.headers.get("x-request-id"), "second");
    assert.match(second.res.headers.get("cache-control"), /max-age=300/);
    assert.equal(up.web.hits.length, 1);

    // "/" caches only the root itself.
    const root = await get("http://www.edgekit.test/");
    assert.equal(root.res.headers.get("x-edge-cache"), "MISS");
    await waitForCached("http://www.edgekit.test/");
    assert.equal((await get("http://www.edgekit.test/")).res.headers.get("x-edge-cache"), "HIT");
    assert.equal(up.web.hits.length, 2);
  });

  test("no caching for POST, paths outside cache_paths, Set-Cookie, private or no-store", async () => {
    up.web.reset();
    for (let i = 0; i < 2; i++) {
      const post = await get("http://www.edgekit.test/assets/form", { method: "POST", body: "a=1" });
      assert.equal(post.res.status, 200);
      assert.equal(post.res.headers.get("x-edge-cache"), null);
      const other = await get("http://www.edgekit.test/about");
      assert.equal(other.res.headers.get("x-edge-cache"), null);
    }
    for (const path of ["/assets/cookie.js", "/assets/private.js", "/assets/no-store.js"]) {
      for (let i = 0; i < 2; i++) {
        const r = await get(`http://www.edgekit.test${path}`);
        assert.equal(r.res.headers.get("x-edge-cache"), "MISS", path);
      }
    }
    // Give a wrongly scheduled cache.put the chance to land, then check nothing was stored.
    await new Promise((r) => setTimeout(r, 100));
    const caches = await mf.getCaches();
    for (const path of ["/assets/form", "/about", "/assets/cookie.js", "/assets/private.js",
      "/assets/no-store.js"]) {
      assert.equal(await caches.default.match(`http://www.edgekit.test${path}`), undefined, path);
    }
    const count = (p) => up.web.hits.filter((h) => h.url === p).length;
    assert.equal(count("/assets/form"), 2);
    assert.equal(count("/about"), 2);
    assert.equal(count("/assets/cookie.js"), 2);
    assert.equal(count("/assets/private.js"), 2);
    assert.equal(count("/assets/no-store.js"), 2);
    assert.equal(up.web.hits.find((h) => h.method === "POST").body, "a=1");
  });

  test("requests with Authorization or Cookie bypass the shared cache", async () => {
    up.web.reset();
    for (const headers of [{ authorization: "Bearer x" }, { cookie: "session=1" }]) {
      for (let i = 0; i < 2; i++) {
        const r = await get("http://www.edgekit.test/assets/personal.js", { headers });
        assert.equal(r.res.status, 200);
        assert.equal(r.res.headers.get("x-edge-cache"), null);
      }
    }
    assert.equal(up.web.hits.filter((h) => h.url === "/assets/personal.js").length, 4);
    const caches = await mf.getCaches();
    assert.equal(await caches.default.match("http://www.edgekit.test/assets/personal.js"), undefined);
  });

  test("weights 80/20 split 1000 requests within ±6 points; weight 0 gets none; all 0 = equal", async () => {
    for (const name of ["heavy", "light", "idle"]) up[name].reset();
    const total = 1000;
    const batch = 50;
    for (let i = 0; i < total; i += batch) {
      const results = await Promise.all(
        Array.from({ length: batch }, () => get("http://split.edgekit.test/w")));
      for (const { res } of results) assert.equal(res.status, 200);
    }
    const heavy = up.heavy.hits.length;
    const light = up.light.hits.length;
    assert.equal(heavy + light, total);
    assert.equal(up.idle.hits.length, 0);
    const share = (heavy / total) * 100;
    assert.ok(share >= 74 && share <= 86, `heavy got ${share}% (want 80 ± 6)`);

    // All weights 0: they count as equal.
    up.heavy.reset();
    up.light.reset();
    for (let i = 0; i < 200; i += batch) {
      await Promise.all(Array.from({ length: batch }, () => get("http://even.edgekit.test/e")));
    }
    assert.equal(up.heavy.hits.length + up.light.hits.length, 200);
    assert.ok(up.heavy.hits.length >= 60 && up.light.hits.length >= 60,
      `all-zero weights split ${up.heavy.hits.length}/${up.light.hits.length}`);
  });

  test("failover: a refusing or 503 origin → the other one answers", async () => {
    up.spare.reset();
    up.sick.reset();
    for (let i = 0; i < 5; i++) {
      const r = await get("http://failover.edgekit.test/f", { headers: { "x-request-id": `f${i}` } });
      assert.equal(r.res.status, 200);
      assert.equal(r.body, "spare");
      assert.equal(r.res.headers.get("x-request-id"), `f${i}`);
    }
    assert.equal(up.spare.hits.length, 5);

    // A body is buffered so the retry resends it.
    const post = await get("http://flaky.edgekit.test/submit?q=1", { method: "PUT", body: "payload" });
    assert.equal(post.res.status, 200);
    assert.equal(post.body, "spare");
    assert.equal(up.sick.hits.length, 1);
    assert.equal(up.sick.hits[0].body, "payload");
    assert.equal(up.spare.hits.at(-1).body, "payload");
    assert.equal(up.spare.hits.at(-1).method, "PUT");
    assert.equal(up.spare.hits.at(-1).url, "/submit?q=1");
  });

  test("both origins down, or the only one → 502 with a short body and the request id", async () => {
    for (const host of ["dead.edgekit.test", "lonely.edgekit.test"]) {
      const r = await get(`http://${host}/`, { headers: { "x-request-id": "down-1" } });
      assert.equal(r.res.status, 502, host);
      assert.equal(r.body.trim(), "upstream unavailable");
      assert.equal(r.res.headers.get("x-request-id"), "down-1");
    }
    const gen = await get("http://dead.edgekit.test/");
    assert.equal(gen.res.status, 502);
    assert.match(gen.res.headers.get("x-request-id"), UUID);
  });
});

// ADR 0009: origins sit behind Cloudflare Access; the Worker alone holds the service token.
describe("edge worker with the origins' Access service token", () => {
  let mf;
  let origin;

  before(async () => {
    origin = await startUpstream("api");
    const routes = { "api.edgekit.test": { service: "api", cache_paths: [], cache_ttl_seconds: 0 } };
    mf = new Miniflare({
      modules: true,
      scriptPath: SCRIPT,
      compatibilityDate: COMPATIBILITY_DATE,
      cf: false,
      bindings: {
        ROUTES: JSON.stringify(routes),
        ORIGINS: JSON.stringify({ api: [{ url: origin.url, weight: 1 }] }),
        ORIGIN_ACCESS_CLIENT_ID: "id-of-the-worker.access",
        ORIGIN_ACCESS_CLIENT_SECRET: "secret-of-the-worker",
      },
    });
    await bounded(mf.ready, 30000, "miniflare ready");
  });

  after(async () => {
    if (mf) await bounded(mf.dispose(), 30000, "miniflare dispose");
    await origin.stop();
  });

  test("every origin request carries the token, whatever the client sent", async () => {
    const res = await bounded(mf.dispatchFetch("http://api.edgekit.test/v1", {
      headers: { "cf-access-client-id": "forged", "cf-access-client-secret": "forged" },
    }), WAIT_MS, "GET");
    assert.equal(res.status, 200);
    await res.text();
    const seen = origin.hits.at(-1).headers;
    assert.equal(seen["cf-access-client-id"], "id-of-the-worker.access");
    assert.equal(seen["cf-access-client-secret"], "secret-of-the-worker");
  });
});

// ADR 0035: the Worker starts each request's W3C trace and writes one edge record per request
// to the logs bucket (an R2 binding), in the nodes' object layout.
describe("edge worker traces and edge records", () => {
  let mf;
  let origin;
  const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;
  // the node folder is the Cloudflare colo (Miniflare makes one up without cf data)
  const KEY = /^edge\/test\/([A-Za-z0-9_.-]+)\/date=\d{4}-\d{2}-\d{2}\/hour=\d{2}\/\d+-[0-9a-f-]{36}\.log\.gz$/;

  before(async () => {
    origin = await startUpstream("api");
    const routes = { "api.edgekit.test": { service: "api", cache_paths: [], cache_ttl_seconds: 0 } };
    mf = new Miniflare({
      modules: true,
      scriptPath: SCRIPT,
      compatibilityDate: COMPATIBILITY_DATE,
      cf: false,
      r2Buckets: ["EDGE_LOGS"],
      bindings: {
        ROUTES: JSON.stringify(routes),
        ORIGINS: JSON.stringify({ api: [{ url: origin.url, weight: 1, node: "edge-1" }] }),
        EDGEKIT_ENV: "test",
        EDGE_LOGS_FLUSH_MS: "50",
      },
    });
    await bounded(mf.ready, 30000, "miniflare ready");
  });

  after(async () => {
    if (mf) await bounded(mf.dispose(), 30000, "miniflare dispose");
    await origin.stop();
  });

  /** Every edge record in the bucket, waiting (bounded) until `count` are there. */
  async function records(count) {
    const { gunzipSync } = await import("node:zlib");
    const bucket = await mf.getR2Bucket("EDGE_LOGS");
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const listed = await bucket.list({ prefix: "edge/" });
      const out = [];
      for (const object of listed.objects) {
        const [, colo] = object.key.match(KEY) ?? assert.fail(`key ${object.key}`);
        const body = await bucket.get(object.key);
        assert.equal(body.httpMetadata.contentEncoding, "gzip");
        const lines = gunzipSync(Buffer.from(await body.arrayBuffer())).toString().trim();
        const parsed = lines.split("\n").map((line) => JSON.parse(line));
        for (const record of parsed) assert.equal(record.attributes["edge.colo"], colo);
        out.push(...parsed);
      }
      if (out.length >= count) return out;
      if (Date.now() > deadline) assert.fail(`${out.length} of ${count} edge records in R2`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  test("the origin gets a new traceparent; the edge record carries the same trace", async () => {
    origin.reset();
    const client = `00-${"a".repeat(32)}-${"b".repeat(16)}-01`;
    const res = await bounded(mf.dispatchFetch("http://api.edgekit.test/v1/items?x=1", {
      headers: { "x-request-id": "trace-req-1", traceparent: client, tracestate: "k=v" },
    }), WAIT_MS, "GET");
    assert.equal(res.status, 200);
    await res.text();
    const sent = origin.hits.at(-1).headers;
    const [, traceId, spanId] = sent.traceparent.match(TRACEPARENT);
    assert.notEqual(traceId, "a".repeat(32)); // a client's trace is not continued
    assert.equal(sent.tracestate, undefined);
    const miss = await bounded(mf.dispatchFetch("http://nowhere.edgekit.test/", {
      headers: { "x-request-id": "trace-req-2" } }), WAIT_MS, "GET");
    assert.equal(miss.status, 404);
    await miss.text();

    const found = await records(2);
    const mine = found.find((r) => r.attributes["request.id"] === "trace-req-1");
    assert.equal(mine.trace_id, traceId);
    assert.equal(mine.span_id, spanId);
    assert.equal(mine.message, "GET api.edgekit.test/v1/items 200");
    assert.equal(mine.severity_text, "INFO");
    assert.equal(mine.attributes["http.response.status_code"], 200);
    assert.equal(mine.attributes["edge.origin"], "edge-1");
    assert.equal(mine.attributes["edge.attempts"], 1);
    assert.match(mine.attributes["log.record.uid"], /^[0-9a-f]{32}$/);
    assert.equal(mine.resources["service.name"], "edge-worker");
    assert.equal(mine.resources["deployment.environment"], "test");
    assert.ok(!Number.isNaN(Date.parse(mine.timestamp)));
    const lost = found.find((r) => r.attributes["request.id"] === "trace-req-2");
    assert.equal(lost.severity_text, "WARN");
    assert.equal(lost.attributes["http.response.status_code"], 404);
    assert.match(lost.trace_id, /^[0-9a-f]{32}$/);
    assert.notEqual(lost.trace_id, mine.trace_id);
  });
});
