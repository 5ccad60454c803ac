// edgekit's edge Worker: the only front door. It routes each request by its Host header to a
// service, picks one of that service's per-node origins (reached through Cloudflare Tunnel) by
// weight, fails over to another origin once, caches what the service allows, and tags every
// response with a request id. It starts the request's W3C trace (a `traceparent` to the
// origin, which the services continue) and writes one edge record per request to the logs
// bucket (ADR 0035).
//
// Configuration comes from Worker vars written by edgekit (see README.md):
//   ROUTES  = JSON {host: {"service": str, "cache_paths": [str], "cache_ttl_seconds": int}}
//   ORIGINS = JSON {service: [{"url": "https://…", "weight": int >= 0, "node"?: str}]}
//   ORIGIN_ACCESS_CLIENT_ID / ORIGIN_ACCESS_CLIENT_SECRET (secret) = the Access service token
//     every origin hostname demands (ADR 0009); sent as CF-Access-Client-Id/-Secret. A
//     client's own CF-Access-* headers never reach an origin.
//   EDGE_LOGS (R2 binding, optional) = the logs bucket: edge records are written there in
//     batches, as gzip NDJSON under edge/<EDGEKIT_ENV>/<colo>/date=…/hour=…/ (the contract of
//     edgekit/obs). EDGE_LOGS_MODE = "logpush": no binding, each record goes to console.log
//     for a Workers Trace Events Logpush job. EDGE_LOGS_FLUSH_MS: how long a batch waits.

const REQUEST_ID_HEADER = "x-request-id";
const REQUEST_ID_MAX = 128;
// An answer with one of these statuses counts as a failed origin (as does a thrown fetch).
// 530 is what Cloudflare answers when a tunnel has no connected cloudflared.
const FAILOVER_STATUSES = new Set([502, 503, 504, 530]);

// Parsed vars, memoised by their exact string so a warm isolate parses each once.
const parsed = new Map();

function parseVar(env, name) {
  const raw = env[name];
  if (typeof raw !== "string") {
    // Vars may also arrive already parsed (e.g. a JSON var in wrangler config).
    if (raw && typeof raw === "object") return raw;
    throw new ConfigError(`${name} is not set`);
  }
  const key = `${name}\u0000${raw}`;
  if (!parsed.has(key)) {
    let value;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      throw new ConfigError(`${name} is not valid JSON: ${err.message}`);
    }
    if (!value || typeof value !== "object" || Array.isArray(value)) {
      throw new ConfigError(`${name} must be a JSON object`);
    }
    if (parsed.size > 16) parsed.clear();
    parsed.set(key, value);
  }
  return parsed.get(key);
}

class ConfigError extends Error {}

/** The incoming id if it is usable (only [A-Za-z0-9._-], at most 128 chars kept), else a UUID. */
export function requestId(headers) {
  const incoming = headers.get(REQUEST_ID_HEADER);
  if (incoming) {
    const clean = incoming.replace(/[^A-Za-z0-9._-]/g, "").slice(0, REQUEST_ID_MAX);
    if (clean) return clean;
  }
  return crypto.randomUUID();
}

/**
 * The public host: lower-cased, without port. On Cloudflare, request.url is built from the
 * Host header the client sent, so its hostname *is* the Host header (normalised by the URL
 * parser). Reading it from the URL rather than the raw header also holds under Miniflare, whose
 * dispatchFetch keeps the original URL but sets Host to its own loopback socket.
 */
export function publicHost(request) {
  return new URL(request.url).hostname.replace(/\.$/, "");
}

/** "/" matches only "/" itself; every other entry is a path prefix. */
export function isCachePath(pathname, cachePaths) {
  if (!Array.isArray(cachePaths)) return false;
  return cachePaths.some((p) =>
    typeof p === "string" && p !== "" && (p === "/" ? pathname === "/" : pathname.startsWith(p)));
}

function weightOf(origin) {
  const w = Number(origin.weight ?? 1);
  return Number.isFinite(w) && w > 0 ? w : 0;
}

function random() {
  return crypto.getRandomValues(new Uint32Array(1))[0] / 2 ** 32;
}

/**
 * Index into `origins` chosen by weight among those not in `exclude`. Weight 0 is never chosen
 * while a positive weight remains; if all remaining weights are 0 they count as equal.
 * Returns -1 when nothing remains.
 */
export function pickOrigin(origins, exclude = new Set(), rand = random) {
  const candidates = [];
  for (let i = 0; i < origins.length; i++) {
    if (!exclude.has(i)) candidates.push(i);
  }
  if (candidates.length === 0) return -1;
  let weights = candidates.map((i) => weightOf(origins[i]));
  let total = weights.reduce((a, b) => a + b, 0);
  if (total === 0) {
    weights = weights.map(() => 1);
    total = weights.length;
  }
  let point = rand() * total;
  for (let k = 0; k < candidates.length; k++) {
    if (point < weights[k]) return candidates[k];
    point -= weights[k];
  }
  // Floating-point leftovers: the last candidate with a positive weight.
  for (let k = candidates.length - 1; k >= 0; k--) {
    if (weights[k] > 0) return candidates[k];
  }
  return candidates[candidates.length - 1];
}

function textResponse(status, body, id, extra = {}) {
  return new Response(body + "\n", {
    status,
    headers: {
      "content-type": "text/plain; charset=utf-8",
      "cache-control": "no-store",
      [REQUEST_ID_HEADER]: id,
      ...extra,
    },
  });
}

/** A mutable copy of `response` carrying the request id (and the cache status, if any). */
function withHeaders(response, id, cacheStatus) {
  const out = new Response(response.body, response);
  out.headers.set(REQUEST_ID_HEADER, id);
  if (cacheStatus) out.headers.set("x-edge-cache", cacheStatus);
  return out;
}

function isStorable(response) {
  if (response.status !== 200) return false;
  if (response.headers.has("set-cookie")) return false;
  const cc = (response.headers.get("cache-control") || "").toLowerCase();
  return !/(^|[\s,])(private|no-store)([\s,=]|$)/.test(cc);
}

const ORIGIN_TIMEOUT_MS = 10_000;

// -- tracing -----------------------------------------------------------------------------

function randomHex(bytes) {
  const out = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(out, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A new W3C trace context for this request: the edge is the root of the request's trace. A
 * client's own traceparent is not continued (anyone can send one); all-zero ids are invalid.
 */
export function newTrace() {
  let traceId = randomHex(16);
  while (/^0+$/.test(traceId)) traceId = randomHex(16);
  let spanId = randomHex(8);
  while (/^0+$/.test(spanId)) spanId = randomHex(8);
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}

// -- edge records ------------------------------------------------------------------------

const EDGE_SERVICE = "edge-worker";
const EDGE_BATCH_MAX = 500;
const EDGE_FLUSH_MS = 10_000;
// Records waiting in this isolate, and whether a flush is scheduled (ctx.waitUntil keeps the
// isolate alive until it ran, up to 30 s after the response).
let edgePending = [];
let edgeScheduled = false;

function severityOf(status) {
  if (status >= 500) return ["ERROR", 17];
  if (status >= 400) return ["WARN", 13];
  return ["INFO", 9];
}

/** One edge record, shaped like the nodes' log events (edgekit/obs contract). */
export function edgeRecord({ start, end, request, host, url, id, trace, status, cache, origin,
  attempts, env }) {
  const [severityText, severityNumber] = severityOf(status);
  const colo = String(request.cf?.colo ?? "edge").replace(/[^A-Za-z0-9_.-]/g, "") || "edge";
  const attributes = {
    "http.request.method": request.method,
    "server.address": host,
    "url.path": url.pathname,
    "http.response.status_code": status,
    "request.id": id,
    "edge.duration_ms": end - start,
    "edge.attempts": attempts,
    "edge.colo": colo,
    "log.record.uid": randomHex(16),
  };
  if (cache) attributes["edge.cache"] = cache;
  if (origin) attributes["edge.origin"] = origin;
  const ray = request.headers.get("cf-ray");
  if (ray) attributes["cf.ray"] = ray;
  return {
    timestamp: new Date(start).toISOString(),
    observed_timestamp: new Date(end).toISOString(),
    message: `${request.method} ${host}${url.pathname} ${status}`,
    severity_text: severityText,
    severity_number: severityNumber,
    trace_id: trace.traceId,
    span_id: trace.spanId,
    attributes,
    resources: { "service.name": EDGE_SERVICE, "deployment.environment": env.EDGEKIT_ENV ?? "" },
    source_type: EDGE_SERVICE,
  };
}

async function gzipLines(records) {
  const text = records.map((r) => JSON.stringify(r)).join("\n") + "\n";
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Response(stream).arrayBuffer();
}

/** Object key of a batch: the layout of the nodes' objects, with the colo as the node. */
export function edgeKey(stack, colo, first) {
  const t = new Date(first);
  const date = t.toISOString().slice(0, 10);
  const hour = t.toISOString().slice(11, 13);
  return `edge/${stack}/${colo}/date=${date}/hour=${hour}/${Math.floor(first / 1000)}-` +
    `${crypto.randomUUID()}.log.gz`;
}

/** Write the waiting records, one object per colo and hour; a failed put is tried again once. */
export async function flushEdge(env) {
  const batch = edgePending;
  edgePending = [];
  const groups = new Map();
  for (const record of batch) {
    const group = `${record.attributes["edge.colo"]}/${record.timestamp.slice(0, 13)}`;
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group).push(record);
  }
  for (const records of groups.values()) {
    const first = Date.parse(records[0].timestamp);
    const key = edgeKey(env.EDGEKIT_ENV || "unknown", records[0].attributes["edge.colo"], first);
    const body = await gzipLines(records);
    const options = { httpMetadata: { contentType: "text/x-log", contentEncoding: "gzip" } };
    for (let attempt = 1; ; attempt++) {
      try {
        await env.EDGE_LOGS.put(key, body, options);
        break;
      } catch (err) {
        if (attempt >= 2) {
          console.error(`edge-worker: ${records.length} edge record(s) lost, ${key}: ${err}`);
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }
}

function keepEdgeRecord(env, ctx, record) {
  if (!env.EDGE_LOGS) {
    if (env.EDGE_LOGS_MODE === "logpush") console.log(JSON.stringify(record));
    return;
  }
  edgePending.push(record);
  if (edgePending.length >= EDGE_BATCH_MAX) {
    ctx.waitUntil(flushEdge(env));
    return;
  }
  if (edgeScheduled) return;
  edgeScheduled = true;
  const wait = Number(env.EDGE_LOGS_FLUSH_MS) > 0 ? Number(env.EDGE_LOGS_FLUSH_MS) : EDGE_FLUSH_MS;
  ctx.waitUntil(new Promise((resolve) => setTimeout(resolve, wait)).then(() => {
    edgeScheduled = false;
    return flushEdge(env);
  }));
}

async function forward(request, url, host, id, origin, body, access, trace) {
  const target = String(origin.url).replace(/\/+$/, "") + url.pathname + url.search;
  const headers = new Headers(request.headers);
  headers.delete("cf-access-client-id");
  headers.delete("cf-access-client-secret");
  if (access) {
    headers.set("cf-access-client-id", access.id);
    headers.set("cf-access-client-secret", access.secret);
  }
  // The origin URL's host is what the tunnel routes on; the public host travels separately.
  headers.delete("host");
  headers.set("x-forwarded-host", host);
  headers.set("x-forwarded-proto", url.protocol.replace(/:$/, ""));
  headers.set(REQUEST_ID_HEADER, id);
  headers.delete("tracestate");
  headers.set("traceparent", trace.traceparent);
  return fetch(target, {
    method: request.method,
    headers,
    body,
    redirect: "manual",
    // A hanging origin counts as failed, so the other node gets its chance.
    signal: AbortSignal.timeout(ORIGIN_TIMEOUT_MS),
  });
}

/** The first origin's answer, or the one other origin's if the first fails; null if both do. */
async function fetchWithFailover(request, url, host, id, origins, access, trace, seen) {
  const body = request.method === "GET" || request.method === "HEAD"
    ? undefined
    : await request.arrayBuffer();
  const tried = new Set();
  for (let attempt = 0; attempt < 2; attempt++) {
    const index = pickOrigin(origins, tried);
    if (index === -1) break;
    tried.add(index);
    const label = origins[index].node ?? `origin ${index}`;
    seen.attempts = attempt + 1;
    seen.origin = label;
    try {
      const response = await forward(request, url, host, id, origins[index], body, access, trace);
      if (!FAILOVER_STATUSES.has(response.status)) return response;
      // Free the connection before trying the next origin.
      await response.body?.cancel().catch(() => {});
      console.warn(`edge-worker: ${id} ${label} of ${host} answered ${response.status}`);
    } catch (err) {
      console.warn(`edge-worker: ${id} ${label} of ${host} failed: ${err}`);
    }
  }
  return null;
}

async function handle(request, env, ctx, id, trace, seen) {
  let routes;
  let originsByService;
  try {
    routes = parseVar(env, "ROUTES");
    originsByService = parseVar(env, "ORIGINS");
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`edge-worker: ${err.message}`);
    return textResponse(500, "edge misconfigured", id);
  }

  const host = publicHost(request);
  const route = Object.hasOwn(routes, host) ? routes[host] : undefined;
  if (!route || typeof route !== "object") {
    return textResponse(404, "unknown host", id);
  }
  const origins = Object.hasOwn(originsByService, route.service)
    ? originsByService[route.service]
    : undefined;
  if (!Array.isArray(origins) || origins.length === 0) {
    console.error(`edge-worker: no origins for service ${route.service}`);
    return textResponse(502, "upstream unavailable", id);
  }

  const url = new URL(request.url);
  const ttl = Number(route.cache_ttl_seconds) || 0;
  // A shared cache must never answer for one user with what another user was sent.
  const personal = request.headers.has("authorization") || request.headers.has("cookie");
  const cacheable = request.method === "GET" && ttl > 0 && !personal &&
    isCachePath(url.pathname, route.cache_paths);

  let cache;
  let cacheKey;
  if (cacheable) {
    cache = caches.default;
    cacheKey = new Request(`${url.protocol}//${host}${url.pathname}${url.search}`, { method: "GET" });
    const hit = await cache.match(cacheKey);
    if (hit) {
      seen.cache = "HIT";
      return withHeaders(hit, id, "HIT");
    }
    seen.cache = "MISS";
  }

  const access = env.ORIGIN_ACCESS_CLIENT_ID && env.ORIGIN_ACCESS_CLIENT_SECRET
    ? { id: env.ORIGIN_ACCESS_CLIENT_ID, secret: env.ORIGIN_ACCESS_CLIENT_SECRET }
    : null;
  const response = await fetchWithFailover(request, url, host, id, origins, access, trace, seen);
  if (!response) {
    return textResponse(502, "upstream unavailable", id, cacheable ? { "x-edge-cache": "MISS" } : {});
  }
  if (!cacheable) return withHeaders(response, id);

  if (isStorable(response) && response.body !== null) {
    const [forClient, forCache] = response.body.tee();
    const stored = new Response(forCache, response);
    stored.headers.set("cache-control", `public, max-age=${Math.floor(ttl)}`);
    stored.headers.delete(REQUEST_ID_HEADER);
    stored.headers.delete("x-edge-cache");
    ctx.waitUntil(cache.put(cacheKey, stored).catch((err) => {
      console.warn(`edge-worker: ${id} cache.put failed: ${err}`);
    }));
    return withHeaders(new Response(forClient, response), id, "MISS");
  }
  return withHeaders(response, id, "MISS");
}

export default {
  async fetch(request, env, ctx) {
    const start = Date.now();
    const id = requestId(request.headers);
    const trace = newTrace();
    const seen = { attempts: 0, origin: undefined, cache: undefined };
    let response;
    try {
      response = await handle(request, env, ctx, id, trace, seen);
    } catch (err) {
      console.error(`edge-worker: ${id} internal error: ${err && err.stack || err}`);
      response = textResponse(500, "internal error", id);
    }
    try {
      const url = new URL(request.url);
      keepEdgeRecord(env, ctx, edgeRecord({
        start, end: Date.now(), request, host: publicHost(request), url, id, trace,
        status: response.status, cache: seen.cache, origin: seen.origin,
        attempts: seen.attempts, env,
      }));
    } catch (err) {
      console.error(`edge-worker: ${id} edge record not kept: ${err}`);
    }
    return response;
  },
};
