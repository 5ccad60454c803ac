"""Mutation benchmark: `edgekit check` against the real `tofu validate` (a printout).

    python bench/mutations.py [--per-kind N] [--json FILE]

Every stack of the app is synthesized into a temp folder and initialised once
(`tofu init -backend=false -plugin-dir=...`). Then systematic single mutations are
applied to one stack's JSON at a time (drop a required attribute, change a type, an
invalid enum value, a bad reference, an unknown attribute, a label too long, a world-open
rule, a CIDR with host bits, a per-deploy value in user_data, a port range in the wrong
format), at most N per kind and stack, spread over the resources. Each mutant is judged
by both tools: edgekit catches it when the rules report an error the unmutated documents
do not have; tofu catches it when `tofu validate -json` says not valid. Time is wall time
per mutant: the rules in-process over every stack's documents, tofu as the process it is.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgekit.check.context import context_from_documents  # noqa: E402
from edgekit.check.engine import Finding, run  # noqa: E402
from edgekit.check.rules import catalogue  # noqa: E402
from edgekit.cue.layout import layout_of_estate  # noqa: E402
from edgekit.cue.model import Estate  # noqa: E402
from edgekit.providers.pins import PINS  # noqa: E402
from edgekit.schema import schema_index  # noqa: E402
from tools.toolpaths import plugin_dir, tofu_bin  # noqa: E402

Doc = dict[str, Any]
Mutant = tuple[str, str, Doc]  # kind, what, mutated document

TOFU_ENV = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "TF_IN_AUTOMATION": "1",
            "CHECKPOINT_DISABLE": "1"}
ENUMS = {  # attribute -> an invalid value, for attributes the providers validate as enums
    ("hcloud_firewall", "rule", "direction"): "sideways",
    ("linode_firewall", "", "inbound_policy"): "MAYBE",
    ("cloudflare_dns_record", "", "type"): "NOPE",
    ("cloudflare_ruleset", "", "kind"): "galaxy",
    ("cloudflare_ruleset", "", "phase"): "http_nowhere",
    ("cloudflare_zero_trust_tunnel_cloudflared", "", "config_src"): "elsewhere",
    ("vultr_instance", "", "backups"): "sometimes",
    ("cloudflare_r2_bucket", "", "location"): "mars",
}
NAME_FIELDS = {"hcloud_server": "name", "hcloud_firewall": "name", "linode_instance": "label",
               "linode_firewall": "label", "linode_vpc": "label", "vultr_instance": "hostname",
               "cloudflare_r2_bucket": "name"}


def resources(doc: Doc) -> Iterator[tuple[str, str, Doc]]:
    for type_name, bodies in sorted(doc.get("resource", {}).items()):
        for name, body in sorted(bodies.items()):
            yield type_name, name, body


def required_attributes(type_name: str) -> list[str]:
    pin = PINS.get(type_name.split("_", 1)[0])
    schema = schema_index.load(pin.name, pin.version) if pin else None
    block = (schema.block("resource_schemas", type_name) if schema else None) or {}
    return sorted(k for k, v in block.get("attributes", {}).items() if v.get("required"))


Change = Callable[[Doc], Any]


def setter(key: str, value: Any) -> Change:
    return lambda body: body.__setitem__(key, value)


def popper(key: str) -> Change:
    return lambda body: body.pop(key)


def rule_setter(block: str, key: str, value: Any) -> Change:
    return lambda body: body[block][0].__setitem__(key, value)


def mutants(doc: Doc) -> Iterator[Mutant]:
    """Every single mutation of one stack's document, by kind."""
    for type_name, name, body in resources(doc):
        address = f"{type_name}.{name}"

        def mutate(kind: str, what: str, change: Change,
                   address: str = address, type_name: str = type_name, name: str = name
                   ) -> Mutant:
            mutated = copy.deepcopy(doc)
            change(mutated["resource"][type_name][name])
            return kind, f"{address}: {what}", mutated

        present = [k for k in required_attributes(type_name) if k in body]
        if present:
            key = present[0]
            yield mutate("drop a required attribute", key, popper(key))
            yield mutate("change a type", f"{key} -> list", setter(key, [{"x": 1}]))
        yield mutate("unknown attribute", "sise", setter("sise", 1))
        for (enum_type, block, attr), bad in ENUMS.items():
            if enum_type != type_name:
                continue
            if block and body.get(block):
                yield mutate("invalid enum value", f"{block}[0].{attr}",
                             rule_setter(block, attr, bad))
            elif not block and attr in body:
                yield mutate("invalid enum value", attr, setter(attr, bad))
        refs = [(k, v) for k, v in body.items() if isinstance(v, str) and v.startswith("${")
                and "." in v and not v.startswith(("${var.", "${local."))]
        if refs:
            key, value = refs[0]
            inner = value[2:].split("}")[0].split(".")
            if len(inner) >= 2:
                broken = "${" + ".".join([inner[0], "nope", *inner[2:]]) + "}"
                yield mutate("bad reference", key, setter(key, broken))
        if type_name in NAME_FIELDS and NAME_FIELDS[type_name] in body:
            field = NAME_FIELDS[type_name]
            yield mutate("label too long / bad characters", field, setter(field, "x" * 130 + "_"))
        if type_name == "hcloud_firewall" and body.get("rule"):
            yield mutate("world-open inbound rule", "rule[0].source_ips",
                         rule_setter("rule", "source_ips", ["0.0.0.0/0"]))
            yield mutate("CIDR with host bits", "rule[0].source_ips",
                         rule_setter("rule", "source_ips", ["10.0.0.7/16"]))
        if type_name == "vultr_firewall_rule":
            yield mutate("port range format", "port", setter("port", "1-65535"))
            yield mutate("world-open inbound rule", "subnet",
                         lambda body: body.update(subnet="0.0.0.0", subnet_size=0))
        if type_name == "hcloud_server":
            yield mutate("per-deploy value in user_data", "user_data",
                         setter("user_data", "#cloud-config\n# ${timestamp()}"))


def select(all_mutants: list[Mutant], per_kind: int) -> list[Mutant]:
    """At most `per_kind` of each kind, spread evenly over the list."""
    by_kind: dict[str, list[Mutant]] = {}
    for mutant in all_mutants:
        by_kind.setdefault(mutant[0], []).append(mutant)
    chosen = []
    for items in by_kind.values():
        step = max(1, len(items) // per_kind)
        chosen.extend(items[::step][:per_kind])
    return chosen


def error_keys(findings: list[Finding]) -> set[tuple[str, str, str, str]]:
    return {(f.rule, f.address, f.pointer, f.message) for f in findings
            if f.severity == "error" and f.suppressed is None}


def tofu(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tofu_bin(), *args, "-no-color"], cwd=folder, env=TOFU_ENV,
                          capture_output=True, text=True, timeout=600)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=4,
                        help="mutants per kind and stack (default 4)")
    parser.add_argument("--json", help="also write the table as JSON to this file")
    args = parser.parse_args()

    from stacks import make_app

    work = Path(tempfile.mkdtemp(prefix="edgekit-mutations-"))
    try:
        app = make_app(outdir=work / "cdktf.out")
        app.synth()
        estates = [layout_of_estate(Estate.load(ROOT, n, check_fresh=False))
                   for n in Estate.env_names(ROOT)]
        documents: dict[str, Doc] = {}
        for stack in app.stacks:
            folder = work / "cdktf.out" / "stacks" / stack.name
            documents[stack.name] = json.loads((folder / "cdk.tf.json").read_text())
            init = tofu(folder, "init", "-backend=false", "-input=false",
                        f"-plugin-dir={plugin_dir()}")
            if init.returncode != 0:
                print(init.stderr, file=sys.stderr)
                return 1
        baseline = error_keys(run(context_from_documents(documents, estates), catalogue()))
        table: dict[str, dict[str, float]] = {}
        edgekit_s = tofu_s = 0.0
        for stack_name, doc in sorted(documents.items()):
            folder = work / "cdktf.out" / "stacks" / stack_name
            original = (folder / "cdk.tf.json").read_text()
            base = json.loads(tofu(folder, "validate", "-json").stdout)
            if not base["valid"]:
                print(f"{stack_name}: unmutated stack does not validate", file=sys.stderr)
                return 1
            for kind, what, mutated in select(list(mutants(doc)), args.per_kind):
                started = time.perf_counter()
                found = run(context_from_documents({**documents, stack_name: mutated},
                                                   estates), catalogue())
                by_edgekit = bool(error_keys(found) - baseline)
                edgekit_s += time.perf_counter() - started
                (folder / "cdk.tf.json").write_text(json.dumps(mutated))
                started = time.perf_counter()
                report = json.loads(tofu(folder, "validate", "-json").stdout or "{}")
                tofu_s += time.perf_counter() - started
                by_tofu = report.get("valid") is False
                row = table.setdefault(kind, {"mutants": 0, "edgekit": 0, "tofu": 0,
                                              "tofu_only": 0})
                row["mutants"] += 1
                row["edgekit"] += by_edgekit
                row["tofu"] += by_tofu
                row["tofu_only"] += by_tofu and not by_edgekit
                if by_tofu and not by_edgekit:
                    print(f"  tofu only: {stack_name} {what}", file=sys.stderr)
            (folder / "cdk.tf.json").write_text(original)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    total = {k: sum(r[k] for r in table.values()) for k in ("mutants", "edgekit", "tofu",
                                                               "tofu_only")}
    print("| mutation | mutants | caught by edgekit check | caught by tofu validate | "
          "tofu only |")
    print("|---|---:|---:|---:|---:|")
    for kind, row in sorted(table.items()):
        print(f"| {kind} | {row['mutants']:.0f} | {row['edgekit']:.0f} | {row['tofu']:.0f} | "
              f"{row['tofu_only']:.0f} |")
    print(f"| **all** | {total['mutants']:.0f} | {total['edgekit']:.0f} | "
          f"{total['tofu']:.0f} | {total['tofu_only']:.0f} |")
    n = max(1, int(total["mutants"]))
    print(f"\ntime per mutant: edgekit check {1000 * edgekit_s / n:.1f} ms (every rule over "
          f"every stack, in-process), tofu validate {1000 * tofu_s / n:.0f} ms "
          f"(ratio {tofu_s / max(edgekit_s, 1e-9):.0f}x)")
    if args.json:
        Path(args.json).write_text(json.dumps({"table": table, "edgekit_s": edgekit_s,
                                               "tofu_s": tofu_s}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
