"""A stack: one OpenTofu root module, one ``cdk.tf.json``, one state.

Every stack keeps its state in Cloudflare R2 through the S3 backend and encrypts
state and plans with OpenTofu's own encryption unless it opts out explicitly
(``encryption=None``).
"""

from __future__ import annotations

import posixpath
from typing import Any

import attrs

from edgekit.core.construct import Construct
from edgekit.core.overrides import split_path
from edgekit.core.refs import Known, Ref

TOFU_REQUIRED_VERSION = ">= 1.10.0"
"""`use_lockfile` on the S3 backend needs OpenTofu 1.10."""



def r2_endpoint(account_id: str) -> str:
    """The S3-protocol endpoint of a Cloudflare account's R2 (state, logs, buckets)."""
    return f"https://{account_id}.r2.cloudflarestorage.com"


@attrs.frozen(kw_only=True)
class S3State:
    """State in any S3-protocol bucket (R2, MinIO, SeaweedFS, AWS) through OpenTofu's S3
    backend, with its lock file in the bucket (``use_lockfile``).

    Credentials are never written: the backend reads ``AWS_ACCESS_KEY_ID`` and
    ``AWS_SECRET_ACCESS_KEY`` from the environment.
    """

    endpoint: str = attrs.field(validator=attrs.validators.matches_re(r"^https?://\S+$"))
    bucket: str = attrs.field(
        validator=attrs.validators.matches_re(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    )
    key: str | None = None
    """Object key of the state; default ``<stack>/terraform.tfstate``."""
    region: str = "us-east-1"

    def backend(self, stack_name: str) -> dict[str, Any]:
        return {
            "s3": {
                "bucket": self.bucket,
                "key": self.key or f"{stack_name}/terraform.tfstate",
                "region": self.region,
                "endpoints": {"s3": self.endpoint},
                "skip_credentials_validation": True,
                "skip_region_validation": True,
                "skip_requesting_account_id": True,
                "skip_metadata_api_check": True,
                "skip_s3_checksum": True,
                "use_path_style": True,
                "use_lockfile": True,
            }
        }


@attrs.frozen(kw_only=True)
class R2State:
    """State in a Cloudflare R2 bucket: `S3State` on the account's R2 endpoint (region
    ``auto``), with an R2 API token pair as ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``.
    """

    account_id: str = attrs.field(validator=attrs.validators.matches_re(r"^[0-9a-f]{32}$"))
    """Cloudflare account id (32 hex digits); names the R2 endpoint."""
    bucket: str = attrs.field(
        validator=attrs.validators.matches_re(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
    )
    key: str | None = None
    """Object key of the state; default ``<stack>/terraform.tfstate``."""

    def backend(self, stack_name: str) -> dict[str, Any]:
        return S3State(endpoint=r2_endpoint(self.account_id), bucket=self.bucket,
                       key=self.key, region="auto").backend(stack_name)


LOCAL_STATE_DIR = ".edgekit/state"
"""Where `LocalState` keeps a stack's state by default, beside the output folder: for the
default ``cdktf.out`` that is the project's git-ignored ``.edgekit/state/<stack>/``."""


@attrs.frozen(kw_only=True)
class LocalState:
    """State in a local file; for experiments only (no locking, no sharing).

    The state is data nobody can make again, so it never lives inside the output folder
    (every synth replaces that): by default ``.edgekit/state/<stack>/terraform.tfstate``
    beside it, written in the stack as ``../../../.edgekit/state/<stack>/...`` (relative
    paths are read from the stack's folder ``<out>/stacks/<stack>``). A `path` inside the
    output folder is refused at synth.
    """

    path: str | None = None

    def backend(self, stack_name: str) -> dict[str, Any]:
        default = f"../../../{LOCAL_STATE_DIR}/{stack_name}/terraform.tfstate"
        return {"local": {"path": self.path or default}}

    def inside_output(self, stack_name: str, outdir: str) -> bool:
        """Whether the state file would lie inside the output folder `outdir` (absolute).
        A relative path is resolved from the stack's folder in `outdir` itself: one that
        climbs out and back in by the folder's name (the default with an output folder
        called ``.edgekit``) is inside."""
        path = self.backend(stack_name)["local"]["path"]
        out = posixpath.normpath(outdir)
        where = posixpath.normpath(path if posixpath.isabs(path)
                                   else posixpath.join(out, "stacks", stack_name, path))
        relative = posixpath.relpath(where, out)
        return not (relative == ".." or relative.startswith("../"))


@attrs.frozen(kw_only=True)
class StateEncryption:
    """OpenTofu state and plan encryption: pbkdf2 key from a sensitive variable, AES-GCM.

    Enforced: OpenTofu refuses to write unencrypted state or plans. The passphrase
    (at least 16 characters) comes from ``TF_VAR_<passphrase_variable>``.
    """

    passphrase_variable: str = "state_passphrase"
    name: str = "edgekit"

    def block(self) -> dict[str, Any]:
        key = f"key_provider.pbkdf2.{self.name}"
        method = f"method.aes_gcm.{self.name}"
        return {
            "key_provider": {
                "pbkdf2": {self.name: {"passphrase": f"${{var.{self.passphrase_variable}}}"}}
            },
            "method": {"aes_gcm": {self.name: {"keys": f"${{{key}}}"}}},
            # OpenTofu wants a bare static reference here; a "${...}" template is refused
            # at plan time (tofu validate and tofu test do not catch it).
            "state": {"method": method, "enforced": True},
            "plan": {"method": method, "enforced": True},
        }

    def variable(self) -> dict[str, Any]:
        return {
            "type": "string",
            "sensitive": True,
            "description": "Passphrase (16+ characters) for OpenTofu state and plan encryption.",
        }


_DEFAULT_ENCRYPTION = StateEncryption()


class Stack(Construct):
    """One deployable unit: synthesizes to ``cdktf.out/stacks/<id>/cdk.tf.json``."""

    is_stack = True

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        state: R2State | S3State | LocalState,
        encryption: StateEncryption | None = _DEFAULT_ENCRYPTION,
        required_version: str = TOFU_REQUIRED_VERSION,
    ) -> None:
        super().__init__(scope, id)
        self.state = state
        self.encryption = encryption
        self.required_version = required_version
        self._overrides: list[tuple[str, Any]] = []
        self._files: dict[str, Any] = {}
        self._assets: dict[str, bytes] = {}
        self._dependencies: list[str] = []

    def output(self, name: str) -> Ref:
        """This stack's output `name`, to use in another stack: synth reads it there
        through this stack's remote state and records the dependency."""
        if not name.isidentifier():
            raise ValueError(f"[{self.node.path}] invalid output name {name!r}")
        return Ref(f"output.{name}", (), self.name)

    def known(self, value: str) -> Known:
        """`value` (a name or id this stack establishes, known at synth time) as used by
        other stacks: written there as the literal, and a dependency on this stack."""
        return Known(value, self.name)

    def add_dependency(self, other: Stack) -> None:
        """`other` must be applied before this stack, though nothing is read from it
        (written to the manifest; references between stacks add dependencies at synth)."""
        if other is self:
            raise ValueError(f"[{self.node.path}] a stack cannot depend on itself")
        if other.name not in self._dependencies:
            self._dependencies.append(other.name)

    @property
    def dependencies(self) -> list[str]:
        """Names of the stacks this one was told to come after."""
        return list(self._dependencies)

    def add_file(self, name: str, data: Any) -> None:
        """Write `data` as canonical JSON to ``stacks/<stack>/<name>`` beside the stack,
        e.g. ``placement.auto.tfvars.json``."""
        if "/" in name or not name.endswith(".json") or name in ("cdk.tf.json",):
            raise ValueError(f"[{self.node.path}] invalid extra file name {name!r}: expected "
                             "a plain '*.json' name other than cdk.tf.json")
        self._files[name] = data

    @property
    def files(self) -> dict[str, Any]:
        return dict(self._files)

    def add_asset(self, path: str, data: bytes) -> None:
        """Write `data` as is to ``stacks/<stack>/<path>`` (e.g. a Worker script)."""
        parts = path.split("/")
        if any(p in ("", ".", "..") for p in parts) or path.startswith("/"):
            raise ValueError(f"[{self.node.path}] invalid asset path {path!r}")
        self._assets[path] = data

    @property
    def assets(self) -> dict[str, bytes]:
        return dict(self._assets)

    @property
    def name(self) -> str:
        return self.node.id

    def override(self, path: str, value: Any) -> None:
        """Escape hatch on the whole document, e.g. ``terraform.backend.s3.key``."""
        split_path(path)
        self._overrides.append((path, value))

    @property
    def overrides(self) -> tuple[tuple[str, Any], ...]:
        return tuple(self._overrides)
