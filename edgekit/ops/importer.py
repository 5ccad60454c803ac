"""`edgekit import`: adopt an existing object into a stack.

In a scratch copy of the stack folder, an ``import`` block for ``<type>.<name>`` is
added and ``tofu plan -generate-config-out`` writes the configuration OpenTofu reads
from the provider. The attributes it sets (top-level names of the generated block)
take their values from the plan, and become the Python construct call that
reproduces the object, with ``import_id=`` so the next apply adopts it.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import orjson

from edgekit.ops.tofu import LOCK_FILE, OpsError, Tofu

_TOP_LEVEL = re.compile(r"^  ([A-Za-z_][A-Za-z0-9_]*)\s*(=|\{)", re.MULTILINE)
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")


def generated_names(hcl: str) -> list[str]:
    """Top-level attribute and block names of the one generated resource block."""
    return list(dict.fromkeys(m.group(1) for m in _TOP_LEVEL.finditer(hcl)))


def import_call(tofu: Tofu, stack: str, resource_type: str, import_id: str,
                name: str = "imported") -> str:
    if not _NAME.match(name):
        raise OpsError(f"invalid construct id {name!r}: a letter, then letters, digits, "
                       "'_' or '-'")
    if not re.match(r"^[a-z0-9]+_[a-z0-9_]+$", resource_type):
        raise OpsError(f"invalid resource type {resource_type!r}, e.g. cloudflare_dns_record")
    tofu.init(stack)
    folder = tofu.workspace.stack_dir(stack)
    address = f"{resource_type}.{name.replace('-', '_')}"
    document = tofu.workspace.document(stack)
    if name.replace("-", "_") in document.get("resource", {}).get(resource_type, {}):
        raise OpsError(f"stack {stack!r} already has {address}; pass another --name")
    scratch = Path(tempfile.mkdtemp(prefix=f"import-{stack}-", dir=tofu.workspace.home))
    try:
        for path in folder.iterdir():
            if path.is_file():
                shutil.copyfile(path, scratch / path.name)
        if not (scratch / LOCK_FILE).is_file():
            raise OpsError(f"stack {stack!r} has no lock file after init")
        (scratch / "edgekit-import.tf.json").write_bytes(orjson.dumps(
            {"import": [{"to": address, "id": import_id}]}))
        done = tofu.run(stack, "plan", "-input=false", "-no-color", "-lock=false",
                        "-generate-config-out=generated.tf", "-out=import.tfplan",
                        cwd=scratch)
        if done.returncode != 0:
            raise OpsError(f"stack {stack!r}: importing {resource_type} {import_id!r} "
                           f"failed:\n{tofu.redact(done.stderr).strip()}")
        hcl = (scratch / "generated.tf").read_text()
        plan = tofu.show_json(stack, scratch / "import.tfplan")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    after: dict[str, Any] = {}
    hidden: dict[str, Any] = {}
    for rc in plan.get("resource_changes", []):
        if rc.get("address") == address:
            after = rc.get("change", {}).get("after") or {}
            hidden = rc.get("change", {}).get("after_sensitive") or {}
    config = {k: after[k] for k in generated_names(hcl)
              if after.get(k) not in (None, [], {}) and k != "id"}
    for key in config:
        if hidden.get(key):  # never printed: the user passes a Variable instead
            config[key] = Secret(key)
    return python_call(name, resource_type, config, import_id)


def python_call(name: str, resource_type: str, config: dict[str, Any], import_id: str) -> str:
    lines = [f"Resource(self, {name!r}, type={resource_type!r}, config={{"]
    lines += [f"    {k!r}: {_py(v)}," for k, v in sorted(config.items())]
    lines.append(f"}}, import_id={import_id!r})")
    return "\n".join(lines)


class Secret(str):
    """A sensitive attribute's place in the printed call."""

    def __repr__(self) -> str:
        return f"Variable(self, {str(self)!r}, type='string', sensitive=True).ref()"


def _py(value: Any) -> str:
    if isinstance(value, Secret):
        return repr(value)
    if value is True or value is False or value is None:
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_py(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_py(v) for v in value) + "]"
    return repr(value)
