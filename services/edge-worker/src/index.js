// edgekit's edge Worker: the only front door. It routes each request by its Host header to a
// service, picks one of that service's per-node origins (reached through Cloudflare Tunnel) by
// weight, fails over to another origin once, caches what the service allows, and tags every
// response with a request id.
//
// Configuration comes from Worker vars written by edgekit (see README.md):
//   ROUTES  = JSON {host: {"service": str, "cache_paths": [str], "cache_ttl_seconds": int}}
//   ORIGINS = JSON {service: [{"url": "https://…", "weight": int >= 0, "node"?: str}]}
//   ORIGIN_ACCESS_CLIENT_ID / ORIGIN_ACCESS_CLIENT_SECRET (secret) = the Access service token
//     every origin hostname demands (ADR 0009); sent as CF-Access-Client-Id/-Secret. A
//     client's own CF-Access-* headers never reach an origin.

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

async function forward(request, url, host, id, origin, body, access) {
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
async function fetchWithFailover(request, url, host, id, origins, access) {
  const body = request.method === "GET" || request.method === "HEAD"
    ? undefined
    : await request.arrayBuffer();
  const tried = new Set();
  for (let attempt = 0; attempt < 2; attempt++) {
    const index = pickOrigin(origins, tried);
    if (index === -1) break;
    tried.add(index);
    const label = origins[index].node ?? `origin ${index}`;
    try {
      const response = await forward(request, url, host, id, origins[index], body, access);
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

async function handle(request, env, ctx, id) {
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
    if (hit) return withHeaders(hit, id, "HIT");
  }

  const access = env.ORIGIN_ACCESS_CLIENT_ID && env.ORIGIN_ACCESS_CLIENT_SECRET
    ? { id: env.ORIGIN_ACCESS_CLIENT_ID, secret: env.ORIGIN_ACCESS_CLIENT_SECRET }
    : null;
  const response = await fetchWithFailover(request, url, host, id, origins, access);
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
    const id = requestId(request.headers);
    try {
      return await handle(request, env, ctx, id);
    } catch (err) {
      console.error(`edge-worker: ${id} internal error: ${err && err.stack || err}`);
      return textResponse(500, "internal error", id);
    }
  },
};
