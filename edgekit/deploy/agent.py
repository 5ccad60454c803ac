#!/usr/bin/env python3
"""The deploy agent every node runs (ADR 0033, 0034): follow a ref, switch, check, report.

Runs on the node as root with the Python standard library only (no edgekit import): the
NixOS unit ``edgekit-deploy`` (nix/deploy.nix) starts ``agent.py run --config
/etc/edgekit/deploy.json`` every minute, and before the node has its own configuration the
first-boot unit (``edgekit.constructs.boot``) starts ``agent.py first-switch --boot
/etc/edgekit/boot.json`` from the copy cloud-init wrote. One run:

1. **Which revision.** ``git ls-remote`` of the repository for the node's refs, in order
   (its own ``<env ref>.nodes/<node>``, then the environment's ``<env ref>``); the first that
   exists names the revision wanted.
2. **Switch** when the current profile generation was not built from that revision: build
   ``<repo>?ref=<ref>&rev=<rev>#nixosConfigurations.<node>.config.system.build.toplevel``
   with ``--no-update-lock-file`` (the lock file of that revision, never a newer nixpkgs),
   ``nix-env --profile <profile> --set`` (a new ``system-N-link``), then the generation's
   ``bin/switch-to-configuration switch`` (``boot`` for the first switch, which reboots). A
   failed build is retried with backoff, a bounded number of times; each attempt is reported.
3. **Health, then keep or roll back** (deploy-rs' magic rollback): every health check must
   pass within ``health_timeout`` seconds of the activation, else the agent switches the
   profile back to the generation that ran before, deletes the new one, activates the old
   one and reports ``rolled-back``. A revision given up on is not tried again until the ref
   names another revision.
4. **Report** ``status/<env>/<node>.json`` (``edgekit.status/v1``, cue/status.cue) to the logs
   bucket with the node's log-sink keys, after each attempt and whenever anything changed,
   else every ``heartbeat`` seconds, so a silent node is seen as stale.

What it remembers (the state file): which revision built each generation, the generation
waiting for its first boot, the revision given up on, and the last report.

Why one file of more than ~400 lines: it is shipped as one file (in the user data for the
first switch, in the store for the unit) to a node with only the standard library (ADR 0034).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

SCHEMA = "edgekit.status/v1"
DEFAULTS: dict[str, Any] = {
    "profile": "/nix/var/nix/profiles/system",
    "state": "/var/lib/edgekit/deploy/state.json",
    # The out-link is a GC root until nix-env holds the generation (as nixos-rebuild's).
    "build": ["nix", "--extra-experimental-features", "nix-command flakes", "build",
              "--out-link", "{result}", "--print-out-paths", "--no-update-lock-file",
              "{flake}#nixosConfigurations.{node}.config.system.build.toplevel"],
    "attempts": 5,
    "backoff": [30, 60, 120, 240, 480],
    "health": {},
    "health_timeout": 120,
    "health_interval": 2,
    "heartbeat": 300,
    "timeouts": {"git": 60, "build": 3600, "activate": 900, "check": 10},
}
Json = dict[str, Any]


class Failed(Exception):
    """A step failed; the message says which and why (it goes into the report)."""


def log(message: str) -> None:
    print(f"edgekit-deploy: {message}", file=sys.stderr, flush=True)


def utc(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- configuration --------------------------------------------------------------------------

def config_from_boot(boot: Json) -> Json:
    """The first switch's settings, from the boot document alone (no configuration yet)."""
    secrets = boot.get("secrets") or {}
    deploy, sink = boot["deploy"], boot["log_sink"]
    return {"env": boot["stack"], "node": boot["node"], "repository": deploy["repository"],
            "refs": deploy["refs"],
            "status": {"endpoint": sink["endpoint"], "bucket": sink["bucket"],
                       "region": sink.get("region", "auto"), "key": sink["status_key"]},
            "keys": {"AWS_ACCESS_KEY_ID": secrets.get("log_sink_access_key_id", ""),
                     "AWS_SECRET_ACCESS_KEY": secrets.get("log_sink_secret_access_key", "")},
            "attempts": 8, "backoff": [15, 30, 60, 120, 240, 480, 600]}


def read_keys(config: Json) -> dict[str, str]:
    """The log sink's keys: inline (first switch) or the AWS_* lines of `credentials`."""
    if "keys" in config:
        return dict(config["keys"])
    keys: dict[str, str] = {}
    with open(config["credentials"], encoding="utf-8") as handle:
        for line in handle:
            name, sep, value = line.strip().partition("=")
            if sep:
                keys[name] = value
    return keys


def git_url(repository: str) -> str:
    """What `git` fetches for a flake reference of the repository."""
    if repository.startswith("git+"):
        return repository[4:].split("?", 1)[0]
    if repository.startswith("github:"):
        return f"https://github.com/{repository[7:].split('?', 1)[0]}.git"
    raise Failed(f"cannot read refs of {repository!r}: expected git+https://… or github:…")


def flake_url(repository: str, ref: str, rev: str) -> str:
    """The flake reference of exactly `rev` (the ref only helps the fetcher find it)."""
    if repository.startswith("github:"):
        return f"{repository.split('?', 1)[0]}/{rev}"
    query = urllib.parse.urlencode({"ref": ref, "rev": rev}, safe="/")
    return f"{repository}{'&' if '?' in repository else '?'}{query}"


# -- steps ----------------------------------------------------------------------------------

def command(argv: list[str], timeout: float, tick: Any = None, every: float = 60.0) -> str:
    """`argv`'s standard output; Failed naming the command and the end of its stderr.
    `tick()` is called every `every` seconds while it runs (a long build's heartbeat)."""
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True)
    except OSError as err:
        raise Failed(f"{argv[0]}: {err.strerror or err}") from None
    deadline = time.monotonic() + timeout
    while True:
        try:
            out, err_text = proc.communicate(timeout=min(every, max(0.1, deadline
                                                                     - time.monotonic())))
            break
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                proc.kill()
                proc.communicate()
                raise Failed(f"{os.path.basename(argv[0])} {' '.join(argv[1:2])}: no result "
                             f"after {timeout:.0f} s") from None
            if tick is not None:
                tick()
    if proc.returncode != 0:
        tail = " | ".join((err_text or out).strip().splitlines()[-3:])
        raise Failed(f"{os.path.basename(argv[0])} {' '.join(argv[1:2])} exited "
                     f"{proc.returncode}: {tail or 'no output'}")
    return out


def resolve(config: Json) -> tuple[str, str]:
    """(ref, revision) of the first of the node's refs that exists."""
    url = git_url(config["repository"])
    out = command(["git", "ls-remote", url, *config["refs"]], config["timeouts"]["git"])
    found = {}
    for line in out.splitlines():
        rev, _, name = line.partition("\t")
        found[name.strip()] = rev.strip()
    for ref in config["refs"]:
        if ref in found:
            return ref, found[ref]
    raise Failed(f"none of {', '.join(config['refs'])} exists at {url} (push the deploy ref)")


def generation(profile: str) -> int | None:
    """The profile's current generation number (``system`` -> ``system-N-link``)."""
    try:
        target = os.readlink(profile)
    except OSError:
        return None
    name = os.path.basename(target)
    prefix = os.path.basename(profile) + "-"
    if name.startswith(prefix) and name.endswith("-link"):
        with contextlib.suppress(ValueError):
            return int(name[len(prefix):-len("-link")])
    return None


def activate(config: Json, action: str) -> None:
    profile = config["profile"]
    command([os.path.join(profile, "bin", "switch-to-configuration"), action],
        config["timeouts"]["activate"])


class Health:
    """Each of the node's checks: ``{"http": url}`` (2xx) or ``{"command": argv}`` (exit 0)."""

    def __init__(self, config: Json) -> None:
        self.checks: Json = config["health"]
        self.timeout = float(config["timeouts"]["check"])

    def one(self, spec: Json) -> Json:
        if "http" in spec:
            try:
                with urllib.request.urlopen(spec["http"], timeout=self.timeout) as reply:
                    return {"ok": 200 <= reply.status < 300, "detail": f"HTTP {reply.status}"}
            except urllib.error.HTTPError as err:
                body = err.read(200).decode("utf-8", "replace").strip()
                return {"ok": False, "detail": f"HTTP {err.code} {body}".strip()}
            except (OSError, ValueError) as err:
                reason = getattr(err, "reason", None) or err
                return {"ok": False, "detail": f"{spec['http']}: {reason}"}
        try:
            out = command(list(spec["command"]), self.timeout)
        except Failed as err:
            return {"ok": False, "detail": str(err)}
        return {"ok": True, "detail": (out.strip().splitlines() or ["exit 0"])[0]}

    def now(self) -> Json:
        return {name: self.one(spec) for name, spec in sorted(self.checks.items())}

    def wait(self, seconds: float, interval: float) -> Json:
        """Every check passing, as soon as they all do; else the last results at `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            results = self.now()
            if all(r["ok"] for r in results.values()) or time.monotonic() >= deadline:
                return results
            time.sleep(interval)


# -- the report -----------------------------------------------------------------------------

def _sign(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def put_object(status: Json, keys: dict[str, str], body: bytes, timeout: float) -> None:
    """PUT `body` as the report object, signed with SigV4 (path style, as R2 wants)."""
    endpoint = urllib.parse.urlsplit(status["endpoint"])
    path = "/" + "/".join(urllib.parse.quote(part, safe="-_.~")
                          for part in [status["bucket"], *status["key"].split("/")])
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    digest = hashlib.sha256(body).hexdigest()
    headers = {"host": endpoint.netloc, "x-amz-content-sha256": digest, "x-amz-date": stamp}
    signed = ";".join(headers)
    canonical = "\n".join(["PUT", path, "", *(f"{k}:{v}" for k, v in headers.items()), "",
                           signed, digest])
    scope = f"{stamp[:8]}/{status.get('region', 'auto')}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{keys.get('AWS_SECRET_ACCESS_KEY', '')}".encode()
    for part in scope.split("/"):
        key = _sign(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    authorization = (f"AWS4-HMAC-SHA256 Credential={keys.get('AWS_ACCESS_KEY_ID', '')}/{scope}"
                     f", SignedHeaders={signed}, Signature={signature}")
    request = urllib.request.Request(
        f"{endpoint.scheme}://{endpoint.netloc}{path}", data=body, method="PUT",
        headers={**headers, "Authorization": authorization, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as reply:
        reply.read()


class Agent:
    def __init__(self, config: Json) -> None:
        self.config = config
        self.health = Health(config)
        self.state: Json = {}
        with contextlib.suppress(OSError, ValueError), \
                open(config["state"], encoding="utf-8") as handle:
            self.state = json.load(handle)
        self.state.setdefault("generations", {})

    def save(self) -> None:
        path = self.config["state"]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w", encoding="utf-8") as handle:
            json.dump(self.state, handle, indent=1, sort_keys=True)
        os.replace(path + ".tmp", path)

    def running(self) -> tuple[int | None, str | None]:
        number = generation(self.config["profile"])
        return number, self.state["generations"].get(str(number))

    def report(self, *, wanted: str | None, ref: str | None, result: str, attempt: int,
               message: str, health: Json, force: bool = True) -> None:
        """Write the status object when `force`, when it changed, or when a heartbeat is due."""
        number, running = self.running()
        body = {"schema": SCHEMA, "env": self.config["env"], "node": self.config["node"],
                "wanted": wanted, "running": running, "generation": number, "ref": ref,
                "switch": {"result": result, "attempt": attempt, "message": message,
                           "max_attempts": self.config["attempts"]},
                "health": health}
        last = self.state.get("last") or {}
        now = time.time()
        same = timeless(last) == timeless(body)
        if same and not force and now - self.state.get("reported_at", 0) < \
                self.config["heartbeat"]:
            return
        body["switch"]["time"] = last["switch"]["time"] if same else utc(now)
        body["time"] = utc(now)
        try:
            put_object(self.config["status"], read_keys(self.config),
                       json.dumps(body, sort_keys=True).encode(),
                       self.config["timeouts"]["check"])
        except (OSError, ValueError) as err:  # the switch matters more than its report
            log(f"could not write the report: {err}")
        else:
            self.state["reported_at"] = now
        self.state["last"] = body
        self.save()

    # -- one run ----------------------------------------------------------------------------

    def run(self, first: bool) -> int:
        last = self.state.get("last") or {}
        try:
            ref, wanted = resolve(self.config)
        except Failed as err:
            if first:
                return self.switch(None, None, first=True, error=str(err))
            log(str(err))
            switch = last.get("switch") or {}
            self.report(wanted=last.get("wanted"), ref=last.get("ref"),
                        result=switch.get("result", "pending"),
                        attempt=switch.get("attempt", 0),
                        message=f"cannot read the deploy ref: {err}",
                        health=self.health.now(), force=False)
            return 1
        number, running = self.running()
        if running == wanted and not first:
            return self.steady(ref, wanted, number, last)
        self.state.pop("boot_pending", None)  # a switch supersedes the first boot's check
        given_up = self.state.get("given_up") or {}
        if given_up.get("revision") == wanted and not first:
            self.report(wanted=wanted, ref=ref, result=given_up["result"],
                        attempt=given_up["attempt"], message=given_up["message"],
                        health=self.health.now(), force=False)
            return 1
        return self.switch(ref, wanted, first=first)

    def steady(self, ref: str, wanted: str, number: int | None, last: Json) -> int:
        """The node runs what it is asked to: check health and report (a heartbeat). Right
        after the first boot into its own configuration, wait for the services first."""
        self.state.pop("given_up", None)
        booted = self.state.get("boot_pending") == number
        if booted:
            health = self.health.wait(self.config["health_timeout"],
                                      self.config["health_interval"])
            del self.state["boot_pending"]
        else:
            health = self.health.now()
        ok = all(h["ok"] for h in health.values())
        previous = last.get("switch") or {}
        if booted:
            message = f"running {wanted[:12]} (generation {number}) since the first boot"
            attempt = previous.get("attempt", 1)
        elif last.get("wanted") == wanted and last.get("running") == wanted:
            message, attempt = previous.get("message", ""), previous.get("attempt", 0)
        else:
            message, attempt = f"running {wanted[:12]} (generation {number})", 0
        if not ok and booted:
            message += "; unhealthy: " + failing(health)
        self.report(wanted=wanted, ref=ref, result="ok", attempt=attempt, message=message,
                    health=health, force=booted)
        return 0 if ok else 1

    def switch(self, ref: str | None, wanted: str | None, *, first: bool,
               error: str | None = None) -> int:
        """Build and activate `wanted`, retrying failed builds with backoff (bounded)."""
        attempts = self.config["attempts"]
        for attempt in range(1, attempts + 1):
            try:
                if wanted is None:
                    if error is not None and attempt == 1:
                        raise Failed(error)
                    ref, wanted = resolve(self.config)
                assert ref is not None
                self.report(wanted=wanted, ref=ref, result="pending", attempt=attempt,
                            message=f"building {wanted[:12]}",
                            health=self.health.now())
                path = self.build(ref, wanted, attempt)
            except Failed as err:
                final = attempt == attempts
                delay = self.config["backoff"][min(attempt, len(self.config["backoff"])) - 1]
                message = (f"gave up after {attempts} attempts: {err}" if final else
                           f"attempt {attempt} of {attempts} failed: {err}; next in {delay} s")
                log(message)
                self.report(wanted=wanted, ref=ref, result="failed" if final else "pending",
                            attempt=attempt, message=message, health=self.health.now())
                if final:
                    if wanted is not None:
                        self.give_up(wanted, "failed", attempt, message)
                    return 1
                time.sleep(delay)
                continue
            return self.activate(ref, wanted, path, attempt, first)
        return 1

    def build(self, ref: str, rev: str, attempt: int) -> str:
        flake = flake_url(self.config["repository"], ref, rev)
        result = os.path.join(os.path.dirname(self.config["state"]), "result")
        os.makedirs(os.path.dirname(result), exist_ok=True)
        argv = [a.replace("{flake}", flake).replace("{node}", self.config["node"])
                .replace("{result}", result) for a in self.config["build"]]
        every = float(self.config["heartbeat"])
        out = command(argv, self.config["timeouts"]["build"], every=every, tick=lambda: (
            self.report(wanted=rev, ref=ref, result="pending", attempt=attempt,
                        message=f"building {rev[:12]} (still running)",
                        health=self.health.now()))).strip().splitlines()
        if not out or not out[-1].startswith("/"):
            raise Failed(f"the build printed no store path ({' '.join(argv[:3])} …)")
        return out[-1]

    def activate(self, ref: str, wanted: str, path: str, attempt: int, first: bool) -> int:
        profile, timeout = self.config["profile"], self.config["timeouts"]["activate"]
        before, before_rev = self.running()
        try:
            command(["nix-env", "--profile", profile, "--set", path], timeout)
        except Failed as err:
            return self.given(wanted, ref, "failed", attempt, f"setting the profile: {err}")
        number, _ = self.running()
        self.state["generations"][str(number)] = wanted
        self.save()
        if first:  # services start after the reboot; the next run checks them
            try:
                activate(self.config, "boot")
            except Failed as err:
                return self.given(wanted, ref, "failed", attempt, f"boot entry: {err}")
            self.state["boot_pending"] = number
            self.report(wanted=wanted, ref=ref, result="pending", attempt=attempt,
                        message=f"generation {number} built; rebooting into it",
                        health=self.health.now())
            return 0
        try:
            activate(self.config, "switch")
        except Failed as err:
            health: Json = {}
            problem = f"activation failed: {err}"
        else:
            health = self.health.wait(self.config["health_timeout"],
                                      self.config["health_interval"])
            if all(h["ok"] for h in health.values()):
                self.report(wanted=wanted, ref=ref, result="ok", attempt=attempt,
                            message=f"switched to {wanted[:12]} (generation {number})",
                            health=health)
                return 0
            problem = (f"health checks failed {self.config['health_timeout']} s after the "
                       f"switch: {failing(health)}")
        if before is None:
            return self.given(wanted, ref, "failed", attempt, problem)
        return self.roll_back(ref, wanted, attempt, problem, before, before_rev, number)

    def roll_back(self, ref: str, wanted: str, attempt: int, problem: str, before: int,
                  before_rev: str | None, failed: int | None) -> int:
        """Back to the generation that ran before, as deploy-rs does: switch the profile,
        delete the failed generation, activate the old one, and wait for its health."""
        profile, timeout = self.config["profile"], self.config["timeouts"]["activate"]
        log(f"{problem}; rolling back to generation {before}")
        try:
            command(["nix-env", "--profile", profile, "--switch-generation", str(before)], timeout)
            if failed is not None and failed != before:
                command(["nix-env", "--profile", profile, "--delete-generations", str(failed)],
                    timeout)
                self.state["generations"].pop(str(failed), None)
            activate(self.config, "switch")
        except Failed as err:
            return self.given(wanted, ref, "failed", attempt,
                              f"{problem}; the rollback failed too: {err}")
        self.health.wait(self.config["health_timeout"], self.config["health_interval"])
        back = f"{before_rev[:12]} " if before_rev else ""
        return self.given(wanted, ref, "rolled-back", attempt,
                          f"{problem}; rolled back to {back}(generation {before})")

    def given(self, wanted: str, ref: str, result: str, attempt: int, message: str) -> int:
        self.give_up(wanted, result, attempt, message)
        self.report(wanted=wanted, ref=ref, result=result, attempt=attempt, message=message,
                    health=self.health.now())
        return 1

    def give_up(self, wanted: str, result: str, attempt: int, message: str) -> None:
        """Not tried again until the ref names another revision."""
        self.state["given_up"] = {"revision": wanted, "result": result, "attempt": attempt,
                                  "message": message}
        self.save()


def timeless(report: Json) -> Json:
    """A report without its times: what a heartbeat does not change."""
    body = {k: v for k, v in report.items() if k != "time"}
    body["switch"] = {k: v for k, v in (report.get("switch") or {}).items() if k != "time"}
    return body


def failing(health: Json) -> str:
    return "; ".join(f"{name}: {h['detail']}" for name, h in health.items() if not h["ok"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edgekit-deploy-agent", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    once = sub.add_parser("run", help="one run of the node's agent (its unit's timer)")
    once.add_argument("--config", required=True, help="the node's settings (JSON)")
    boot = sub.add_parser("first-switch", help="the first switch, from the boot document: "
                          "build and set the node's configuration to boot, retrying")
    boot.add_argument("--boot", required=True, help="the boot document (boot.json)")
    boot.add_argument("--config", help="settings over those of the boot document (JSON)")
    args = parser.parse_args(argv)
    config: Json = json.loads(json.dumps(DEFAULTS))
    if args.mode == "first-switch":
        with open(args.boot, encoding="utf-8") as handle:
            config.update(config_from_boot(json.load(handle)))
    if args.config:
        with open(args.config, encoding="utf-8") as handle:
            overrides = json.load(handle)
        config.update({k: v for k, v in overrides.items() if k != "timeouts"})
        config["timeouts"] = {**config["timeouts"], **overrides.get("timeouts", {})}
    return Agent(config).run(first=args.mode == "first-switch")


if __name__ == "__main__":
    sys.exit(main())
