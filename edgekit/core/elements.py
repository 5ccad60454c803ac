"""Elements: the constructs that become OpenTofu blocks.

Each element knows its section of the JSON document, its key there and its body.
Its logical name comes from its path below the stack: ids joined by ``_``, with
``-`` written as ``_`` and the conventional child ids ``Resource``/``Default``
left out (an L2 construct's main resource takes the L2's name). Two elements
that end up with the same address are a collision, reported with both paths.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from edgekit.core.construct import Construct
from edgekit.core.errors import ConstructError
from edgekit.core.overrides import apply_override, split_path
from edgekit.core.refs import Ref

HIDDEN_IDS = frozenset({"Resource", "Default"})
_ATTR_PATHS: dict[str, tuple[str]] = {}
"""One ``(name,)`` per attribute name, shared by the `Ref`s to it (tuples are immutable;
a large tree holds tens of thousands of references to a few attributes)."""


def stack_of(construct: Construct) -> Construct:
    """The nearest enclosing stack; elements must live inside one."""
    current: Construct | None = construct
    while current is not None:
        if current.is_stack:
            return current
        current = current.node.scope
    raise ConstructError(f"[{construct.node.path}] elements must be created inside a Stack")


def logical_name(construct: Construct, stack: Construct) -> str:
    return _join_name(relative_ids(construct, stack))


def relative_ids(construct: Construct, stack: Construct) -> list[str]:
    """The ids from just below `stack` down to `construct`."""
    return construct.node.ids_below(stack)


def _join_name(parts: list[str]) -> str:
    kept = [p for p in parts if p not in HIDDEN_IDS] or parts[-1:]
    return "_".join(kept).replace("-", "_")


class _Rare:
    """What few elements have: overrides, and a resource's meta-arguments and import id
    (kept apart so that each of the 100,000 elements of a large stack is smaller)."""

    __slots__ = ("import_id", "meta_args", "overrides")

    def __init__(self) -> None:
        self.overrides: list[tuple[str, Any]] = []
        self.meta_args: tuple[Any, ...] | None = None
        self.import_id: str | None = None


class Element(Construct):
    """A construct that renders one OpenTofu block."""

    __slots__ = ("_rare", "logical_id", "stack")

    section: ClassVar[str]
    address_root: ClassVar[str] = ""
    """What an address starts with: ``var``, ``local``, ``module``, ``output``."""

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        stack = stack_of(self)
        self.stack = stack
        self.logical_id = (id if scope is stack else _join_name(self.node.ids_below(stack))
                           ).replace("-", "_")  # logical_name, inline: once per element
        self._rare: _Rare | None = None  # created by a first override, meta-argument, ...

    def _rare_parts(self) -> _Rare:
        if self._rare is None:
            self._rare = _Rare()
        return self._rare

    @property
    def address(self) -> str:
        """The OpenTofu address other elements use to refer to this one."""
        return self._address_for(self.logical_id)

    def ref(self) -> Ref:
        return Ref(self.address, (), self.stack.node.id)

    def attr(self, name: str) -> Ref:
        """A reference to one of this element's attributes."""
        path = _ATTR_PATHS.get(name) if type(name) is str else None
        if path is None:
            path = (name,)
            if type(name) is str and len(_ATTR_PATHS) < 4096:
                _ATTR_PATHS[name] = path
        return Ref(self.address, path, self.stack.node.id)

    def override(self, path: str, value: Any) -> None:
        """Escape hatch: set `path` (dotted) in the rendered body; `DELETE` removes it."""
        split_path(path)
        self._rare_parts().overrides.append((path, value))

    def body(self) -> Any:
        """The block body before overrides; may hold `Ref`s and elements."""
        raise NotImplementedError

    def _body_view(self) -> Any:
        """The body for rendering, which only reads it (so it may share the config)."""
        return self.body()

    def rendered_body(self) -> Any:
        return self.body_to_render()[0]

    def body_to_render(self) -> tuple[Any, bool]:
        """The body with its overrides, and whether it is this call's own object (not
        shared with the configuration: rendering may then fill in its top level in place
        instead of copying it)."""
        body = self._body_view()
        rare = self._rare
        if rare is not None and rare.overrides:
            body = copy.deepcopy(body)
            for path, value in rare.overrides:
                apply_override(body, path, value)
            return body, True
        return body, self._view_is_new()

    def _view_is_new(self) -> bool:
        return False  # `body()` may return what the element holds (a Local's value)

    def old_address(self) -> str | None:
        """This element's address before a `renamed_from` on it or an ancestor."""
        parts: list[str] = []
        renamed = False
        current: Construct | None = self
        while current is not None and current is not self.stack:
            old = current.node.old_id
            parts.append(old if old else current.node.id)
            renamed = renamed or bool(old)
            current = current.node.scope
        if not renamed:
            return None
        parts.reverse()
        return self._address_for(_join_name(parts))

    def _address_for(self, name: str) -> str:
        return f"{self.address_root}.{name}"


def _meta(
    body: dict[str, Any],
    *,
    provider: Provider | None,
    depends_on: Sequence[Element | Ref],
    count: Any,
    for_each: Any,
    lifecycle: Mapping[str, Any] | None,
) -> dict[str, Any]:
    if provider is not None:
        body["provider"] = provider.meta_ref
    if depends_on:
        body["depends_on"] = [d.address if isinstance(d, Element) else d.expression
                              for d in depends_on]
    if count is not None:
        body["count"] = count
    if for_each is not None:
        body["for_each"] = for_each
    if lifecycle:  # shared like the configuration (bodies are read, never changed)
        body["lifecycle"] = lifecycle if type(lifecycle) is dict else dict(lifecycle)
    return body


_NO_META: tuple[Any, ...] = (None, (), None, None, None)


class Resource(Element):
    """``resource "<type>" "<name>" {...}``."""

    __slots__ = ("config", "type")
    section = "resource"

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        type: str,
        config: Mapping[str, Any] | None = None,
        provider: Provider | None = None,
        depends_on: Sequence[Element | Ref] = (),
        count: Any = None,
        for_each: Any = None,
        lifecycle: Mapping[str, Any] | None = None,
        import_id: str | None = None,
    ) -> None:
        self.type = type
        super().__init__(scope, id)
        self.config: dict[str, Any] = dict(config or {})
        meta = (provider, tuple(depends_on), count, for_each, lifecycle)
        if meta != _NO_META:
            self._rare_parts().meta_args = meta
        if import_id is not None:
            self.import_id = import_id
            if not isinstance(import_id, str) or not import_id:
                raise ConstructError(f"[{self.node.path}] import_id must be a non-empty "
                                     f"string (the provider's id of the existing object), "
                                     f"got {import_id!r}")

    @property
    def import_id(self) -> str | None:
        """Adopt an existing object: synth emits ``import { to, id }`` for this resource."""
        return self._rare.import_id if self._rare is not None else None

    @import_id.setter
    def import_id(self, value: str | None) -> None:
        if value is not None or self._rare is not None:
            self._rare_parts().import_id = value

    @property
    def _meta_args(self) -> tuple[Any, ...] | None:
        return self._rare.meta_args if self._rare is not None else None

    def _address_for(self, name: str) -> str:
        return f"{self.type}.{name}"

    def body(self) -> dict[str, Any]:
        if self._meta_args is None:
            return dict(self.config)
        return self._with_meta()

    def _body_view(self) -> Any:
        return self.config if self._meta_args is None else self._with_meta()

    def _view_is_new(self) -> bool:
        return self._meta_args is not None  # `_with_meta` copies the configuration

    def _with_meta(self) -> dict[str, Any]:
        assert self._meta_args is not None
        provider, depends_on, count, for_each, lifecycle = self._meta_args
        return _meta(dict(self.config), provider=provider, depends_on=depends_on,
                     count=count, for_each=for_each, lifecycle=lifecycle)


class DataSource(Resource):
    """``data "<type>" "<name>" {...}``."""

    __slots__ = ()
    section = "data"

    def _address_for(self, name: str) -> str:
        return f"data.{self.type}.{name}"


class _Block(Element):
    """An element whose body is a fixed set of arguments: a `Variable` or an `Output`."""

    __slots__ = ("spec",)

    def _given(self, required: dict[str, Any], **optional: Any) -> None:
        """The body: `required` as given, then each optional argument that was given
        (None: not given; ``sensitive`` only when true)."""
        if optional.get("sensitive") is False:
            del optional["sensitive"]
        self.spec = {**required, **{k: v for k, v in optional.items() if v is not None}}

    def body(self) -> dict[str, Any]:
        return dict(self.spec)


class Variable(_Block):
    """``variable "<name>" {...}``; referenced as ``var.<name>``."""

    __slots__ = ()
    section = "variable"
    address_root = "var"

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        type: str | None = None,
        description: str | None = None,
        default: Any = None,
        sensitive: bool = False,
        nullable: bool | None = None,
    ) -> None:
        super().__init__(scope, id)
        self._given({}, type=type, description=description, default=default,
                    sensitive=sensitive, nullable=nullable)


class Output(_Block):
    """``output "<name>" {...}``. Sensitive values must be marked so."""

    __slots__ = ()
    section = "output"
    address_root = "output"

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        value: Any,
        description: str | None = None,
        sensitive: bool = False,
    ) -> None:
        super().__init__(scope, id)
        self._given({"value": value}, description=description, sensitive=sensitive)


class Local(Element):
    """One entry of ``locals {...}``; referenced as ``local.<name>``."""

    __slots__ = ("value",)
    section = "locals"
    address_root = "local"

    def __init__(self, scope: Construct, id: str, *, value: Any) -> None:
        super().__init__(scope, id)
        self.value = value

    def body(self) -> Any:
        return self.value


class Provider(Element):
    """``provider "<type>" {...}``, optionally with an alias.

    Without an alias it is the default configuration for its type; with one,
    resources choose it through their `provider` argument.
    """

    __slots__ = ("alias", "config", "type")
    section = "provider"

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        type: str,
        config: Mapping[str, Any] | None = None,
        alias: str | None = None,
    ) -> None:
        self.type = type
        self.alias = alias
        super().__init__(scope, id)
        self.config: dict[str, Any] = dict(config or {})

    @property
    def address(self) -> str:
        return f"provider.{self.meta_ref}"

    def _address_for(self, name: str) -> str:
        return self.address

    @property
    def meta_ref(self) -> str:
        """What a resource's `provider` argument says: ``hcloud`` or ``hcloud.eu``."""
        return f"{self.type}.{self.alias}" if self.alias else self.type

    def body(self) -> dict[str, Any]:
        body = dict(self.config)
        if self.alias:
            body["alias"] = self.alias
        return body


class Module(Element):
    """``module "<name>" {...}``: a call to an OpenTofu module."""

    __slots__ = ("inputs", "source", "version")
    section = "module"
    address_root = "module"

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        source: str,
        version: str | None = None,
        inputs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.source = source
        self.version = version
        self.inputs: dict[str, Any] = dict(inputs or {})

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"source": self.source}
        if self.version:
            body["version"] = self.version
        body.update(self.inputs)
        return body
