// Runs the edge Worker in real workerd (Miniflare) in front of one origin, sends one GET per
// request id, waits (bounded) until the Worker's edge records are in its R2 binding, and
// writes each object it stored to OUT/<key>, byte for byte. Prints a JSON summary.
// tests/test_edge_trace.py uses it to put the Worker in front of the real `api` service.
// `--ray R` (once per --id, optional) sends R as the request's `cf-ray` header, as Cloudflare's
// edge does in front of a deployed Worker.
//
//   node tools/run-requests.mjs --origin http://127.0.0.1:PORT --out DIR --env prod \
//        --path /healthz --id req-1 --id req-2 [--ray 8f0…-AMS --ray 8f1…-AMS]

import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Miniflare } from "miniflare";

const SCRIPT = fileURLToPath(new URL("../src/index.js", import.meta.url));
const COMPATIBILITY_DATE = "2026-04-01";
const WAIT_MS = 20000;

const { values } = parseArgs({
  options: {
    origin: { type: "string" }, out: { type: "string" }, env: { type: "string" },
    path: { type: "string", default: "/healthz" }, id: { type: "string", multiple: true },
    ray: { type: "string", multiple: true },
  },
});
const rays = values.ray ?? [];
if (!values.origin || !values.out || !values.env || !values.id?.length ||
    (rays.length && rays.length !== values.id.length)) {
  console.error("usage: run-requests.mjs --origin URL --out DIR --env NAME --id ID [--id ID] " +
    "[--ray RAY, one per --id]");
  process.exit(2);
}

const host = "api.edgekit.test";
const mf = new Miniflare({
  modules: true,
  scriptPath: SCRIPT,
  compatibilityDate: COMPATIBILITY_DATE,
  cf: false,
  r2Buckets: ["EDGE_LOGS"],
  bindings: {
    ROUTES: JSON.stringify({ [host]: { service: "api", cache_paths: [], cache_ttl_seconds: 0 } }),
    ORIGINS: JSON.stringify({ api: [{ url: values.origin, weight: 1, node: "edge-1" }] }),
    EDGEKIT_ENV: values.env,
    EDGE_LOGS_FLUSH_MS: "50",
  },
});
try {
  await mf.ready;
  const requests = [];
  for (const [i, id] of values.id.entries()) {
    const headers = { "x-request-id": id, ...(rays.length ? { "cf-ray": rays[i] } : {}) };
    const res = await mf.dispatchFetch(`http://${host}${values.path}`, { headers });
    await res.arrayBuffer();
    requests.push({ id, status: res.status, request_id: res.headers.get("x-request-id") });
  }
  const bucket = await mf.getR2Bucket("EDGE_LOGS");
  const deadline = Date.now() + WAIT_MS;
  let objects = [];
  for (;;) {
    objects = (await bucket.list({ prefix: "edge/" })).objects;
    let lines = 0;
    for (const object of objects) {
      const body = await bucket.get(object.key);
      const bytes = Buffer.from(await body.arrayBuffer());
      const { gunzipSync } = await import("node:zlib");
      lines += gunzipSync(bytes).toString().trim().split("\n").length;
    }
    if (lines >= values.id.length) break;
    if (Date.now() > deadline) throw new Error(`${lines} of ${values.id.length} edge records`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  for (const object of objects) {
    const body = await bucket.get(object.key);
    const target = join(values.out, object.key);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, Buffer.from(await body.arrayBuffer()));
  }
  console.log(JSON.stringify({ requests, objects: objects.map((o) => o.key) }));
} finally {
  await mf.dispose();
}
