// The contract with edgekit's generator: the ROUTES/ORIGINS vars in the generated
// wrangler.jsonc (every environment in it) are what src/index.js understands, and the Worker
// in workerd sends each public host to one of its own service's origins.
//
// The origins in the generated file are real tunnel hostnames, unreachable here, so Miniflare's
// `outboundService` (a function) answers every outgoing fetch of the Worker in Node instead.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createServer } from "node:http";
import { Miniflare } from "miniflare";

const SCRIPT = fileURLToPath(new URL("../src/index.js", import.meta.url));
const CONFIG = fileURLToPath(new URL("../wrangler.jsonc", import.meta.url));
const COMPATIBILITY_DATE = "2026-04-01"; // workerd 1.20260426 supports up to 2026-04-26

/** The generated file is JSON behind `//` header lines. */
function readConfig() {
  const text = readFileSync(CONFIG, "utf8").split("\n")
    .filter((line) => !line.trimStart().startsWith("//")).join("\n");
  return JSON.parse(text);
}

function environments() {
  const config = readConfig();
  const envs = [["(top level)", config.vars ?? {}]];
  for (const [name, env] of Object.entries(config.env ?? {})) envs.push([name, env.vars ?? {}]);
  return envs;
}

function bounded(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

describe("generated wrangler.jsonc vars", () => {
  const workers = [];
  after(async () => {
    await Promise.all(workers.map((mf) => bounded(mf.dispose(), 30000, "dispose")));
  });

  for (const [envName, vars] of environments()) {
    test(`${envName}: ROUTES and ORIGINS have the shape the Worker reads, and route`, async () => {
      assert.equal(typeof vars.ROUTES, "string", "ROUTES must be a JSON string var");
      assert.equal(typeof vars.ORIGINS, "string", "ORIGINS must be a JSON string var");
      const routes = JSON.parse(vars.ROUTES);
      const origins = JSON.parse(vars.ORIGINS);
      assert.ok(Object.keys(routes).length > 0, "ROUTES is empty");
      for (const [host, route] of Object.entries(routes)) {
        assert.equal(host, host.toLowerCase(), `${host}: hosts are lower-case`);
        assert.doesNotMatch(host, /[:/]/, `${host}: a bare hostname`);
        assert.equal(typeof route.service, "string", `${host}.service`);
        assert.ok(Array.isArray(route.cache_paths), `${host}.cache_paths`);
        for (const p of route.cache_paths) assert.match(p, /^\//, `${host}: cache path ${p}`);
        assert.ok(Number.isInteger(route.cache_ttl_seconds) && route.cache_ttl_seconds >= 0,
          `${host}.cache_ttl_seconds`);
        const list = origins[route.service];
        assert.ok(Array.isArray(list) && list.length > 0, `no ORIGINS for ${route.service}`);
        for (const o of list) {
          assert.match(o.url, /^https?:\/\/[^/]+\/?$/, `${route.service}: origin url ${o.url}`);
          assert.ok(typeof o.weight === "number" && o.weight >= 0,
            `${route.service}: weight ${o.weight}`);
        }
      }

      const seen = [];
      const mf = new Miniflare({
        modules: true,
        scriptPath: SCRIPT,
        compatibilityDate: COMPATIBILITY_DATE,
        cf: false,
        bindings: { ROUTES: vars.ROUTES, ORIGINS: vars.ORIGINS },
        outboundService: (request) => {
          seen.push({ url: request.url, headers: Object.fromEntries(request.headers) });
          return new Response("ok");
        },
      });
      workers.push(mf);
      for (const [host, route] of Object.entries(routes)) {
        seen.length = 0;
        const res = await bounded(mf.dispatchFetch(`https://${host}/contract?q=1`), 10000, host);
        await res.text();
        assert.equal(res.status, 200, host);
        assert.equal(seen.length, 1, `${host}: one upstream request`);
        const list = origins[route.service];
        const eligible = list.some((o) => o.weight > 0) ? list.filter((o) => o.weight > 0) : list;
        const bases = eligible.map((o) => o.url.replace(/\/+$/, ""));
        const target = new URL(seen[0].url);
        assert.ok(bases.includes(target.origin), `${host} went to ${target.origin}, not ${bases}`);
        assert.equal(target.pathname + target.search, "/contract?q=1");
        assert.equal(seen[0].headers["x-forwarded-host"], host);
        assert.ok(seen[0].headers["x-request-id"], `${host}: request id upstream`);
      }
    });
  }
});

/** A local upstream on 127.0.0.1 (free port) answering with its own name. */
async function upstream(name) {
  const server = createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end(`${name} ${req.url}`);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${server.address().port}` };
}

describe("generated routing table to local upstreams", () => {
  const servers = [];
  const workers = [];
  after(async () => {
    await Promise.all(workers.map((mf) => bounded(mf.dispose(), 30000, "dispose")));
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  });

  for (const [envName, vars] of environments()) {
    test(`${envName}: every public host reaches a local upstream of its own service`,
      async () => {
        const routes = JSON.parse(vars.ROUTES);
        const generated = JSON.parse(vars.ORIGINS);
        // Keep the generated routing table; stand each generated origin in by a real server.
        const local = {};
        for (const [service, list] of Object.entries(generated)) {
          local[service] = [];
          for (const origin of list) {
            const name = `${service}@${origin.node ?? "tunnel"}`;
            const up = await upstream(name);
            servers.push(up.server);
            local[service].push({ ...origin, url: up.url });
          }
        }
        const mf = new Miniflare({
          modules: true,
          scriptPath: SCRIPT,
          compatibilityDate: COMPATIBILITY_DATE,
          cf: false,
          bindings: { ROUTES: vars.ROUTES, ORIGINS: JSON.stringify(local) },
        });
        workers.push(mf);
        for (const [host, route] of Object.entries(routes)) {
          const res = await bounded(mf.dispatchFetch(`https://${host}/hello`), 10000, host);
          const body = await res.text();
          assert.equal(res.status, 200, `${host}: ${body}`);
          assert.match(body, new RegExp(`^${route.service}@\\S+ /hello$`),
            `${host} should reach ${route.service}, got ${body}`);
        }
        const unknown = await mf.dispatchFetch("https://not-in-the-table.example/");
        await unknown.text();
        assert.equal(unknown.status, 404);
      });
  }
});
