"""``edgekit mesh import-keys``: the public keys the mesh nodes published, into CUE (ADR 0010).

    edgekit mesh import-keys --stack prod            R2 mesh/prod/*.pub -> cue/outputs/prod.mesh.cue
    edgekit mesh import-keys --stack prod --rekey edge-1   accept edge-1's new key (rebuilt)

Reads the stack's logs bucket (from the CUE export, or --bucket/--endpoint) with the
operator's R2 keys (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or --profile), writes the keys
of the stack's mesh nodes through `edgekit.cue.mesh_keys`, then re-exports CUE and
regenerates (nix/mesh/<stack>.json gets the peers). Exit 0: imported or nothing new; 1: a
key changed without --rekey, or an object was not a key (reported, the rest imported).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

EXIT_OK, EXIT_PROBLEMS = 0, 1

Regenerate = Callable[[Path], list[Path]]
"""Re-export CUE and rewrite the generated files; returns the files written."""


def cmd_mesh_import_keys(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from edgekit.cue.mesh_keys import PREFIX, file_name, plan_keys, read_published, write_keys
    from edgekit.cue.model import Estate
    from edgekit.estate.mesh_plan import mesh_plan
    from edgekit.obs.cli import resolve_sink
    from edgekit.obs.sync import make_client, refusal, resolve_endpoint

    root = Path.cwd()
    env = Estate.load(root, args.stack).env
    bucket, endpoint = resolve_sink(args, root)
    client = make_client(endpoint_url=endpoint, profile=args.profile)
    try:
        published = read_published(client, bucket, args.stack)
    except (BotoCoreError, ClientError) as exc:  # said the way `logs sync` says them
        raise refusal(exc, bucket, resolve_endpoint(endpoint)) from exc
    for line in published.refused:
        print(f"edgekit: ignored {line}", file=sys.stderr)
    plan = plan_keys(args.stack, mesh_plan(env).addresses, env.mesh.public_keys,
                     published.keys, args.rekey or ())
    for node in plan.not_in_mesh:
        print(f"edgekit: ignored the key of {node}: not a mesh node of stack {args.stack!r}",
              file=sys.stderr)
    for node in plan.missing:
        print(f"edgekit: no key yet for {node} (has it booted?); it is no peer until it has one",
              file=sys.stderr)
    target = f"cue/outputs/{file_name(args.stack)}"
    if not plan.keys and not (root / target).exists():
        print(f"edgekit: no key published under s3://{bucket}/{PREFIX}/{args.stack}/ yet; "
              "have the mesh nodes booted (their edgekit-mesh-key unit publishes it)? "
              f"Nothing written", file=sys.stderr)
        return EXIT_PROBLEMS
    if not write_keys(root, args.stack, plan.keys):
        print(f"edgekit: no new mesh key for stack {args.stack!r}; {target} left as it was",
              file=sys.stderr)
        return EXIT_PROBLEMS if published.refused else EXIT_OK
    for what, nodes in (("new key", plan.added), ("new key (--rekey)", plan.rekeyed),
                        ("dropped, no longer in the mesh", plan.dropped)):
        for node in nodes:
            print(f"edgekit: {node}: {what}", file=sys.stderr)
    print(f"edgekit: wrote {len(plan.keys)} key(s) into {target}", file=sys.stderr)
    for path in args.regenerate(root):
        print(f"edgekit: regenerated {path.relative_to(root)}", file=sys.stderr)
    return EXIT_PROBLEMS if published.refused else EXIT_OK


def add_mesh_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
                    regenerate: Regenerate) -> argparse.ArgumentParser:
    """Register ``mesh import-keys``; `regenerate` runs after a write."""
    from edgekit.obs.cli import add_sink_arguments

    mesh = subparsers.add_parser("mesh", help="the environment's WireGuard mesh (ADR 0010)")
    sub = mesh.add_subparsers(dest="mesh_command", required=True, metavar="COMMAND")
    imp = sub.add_parser(
        "import-keys", help="import the public keys the nodes published into cue/outputs/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read mesh/<stack>/<node>.pub from the stack's logs bucket (each mesh\n"
        "node publishes its WireGuard public key there at boot), check each is a key of a\n"
        "mesh node, write cue/outputs/<stack>.mesh.cue (checked with cue vet first), then\n"
        "re-export and regenerate. A key that differs from the one in CUE is refused unless\n"
        "the node is named with --rekey. Private keys never leave the nodes.\n\n"
        "Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (an R2 token that can read\n"
        "the logs bucket), or --profile / AWS_PROFILE.")
    imp.add_argument("--stack", required=True, help="the environment's stack, e.g. prod")
    imp.add_argument("--rekey", action="append", metavar="NODE",
                     help="accept a changed key for NODE (it was rebuilt); repeatable")
    add_sink_arguments(imp)
    imp.set_defaults(func=cmd_mesh_import_keys, regenerate=regenerate)
    return mesh
