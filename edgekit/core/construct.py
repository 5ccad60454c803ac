"""The construct tree: `Construct` exposes `.node`; the tree operations live on `Node`.

Ids are the user's names, validated and never rewritten: an id that is not a
valid name is rejected, not sanitised. Paths join ids with ``/``.
"""

from __future__ import annotations

import functools
import re
import weakref
from collections.abc import Callable, Iterator
from types import MappingProxyType
from typing import Any, ClassVar, Protocol, cast

import attrs

from edgekit.core.errors import ConstructError
from edgekit.core.gcpause import construct_created

ID_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
PATH_SEP = "/"
SUPPRESS_RULE = re.compile(r"^EK[0-9]{3}$")
ASSERTION_NAME = re.compile(r"[a-z][a-z0-9-]*")

_TREES_WITH_ASPECTS: weakref.WeakSet[Construct] = weakref.WeakSet()
"""Roots of the trees in which `Node.add_aspect` was called."""
_NO_CHILDREN: dict[str, Any] = cast(dict[str, Any], MappingProxyType({}))
"""Shared by every leaf: read-only, replaced by a dict when a first child is attached."""


@attrs.frozen(kw_only=True)
class TestAssertion:
    """One promise a construct makes, checked by the generated `tofu test` file."""

    __test__ = False  # not a pytest class
    name: str
    path: str
    condition: str
    message: str

    def block(self) -> dict[str, str]:
        return {"condition": "${" + self.condition + "}",
                "error_message": f"[{self.name}] {self.path}: {self.message}"}


class Aspect(Protocol):
    """A visitor run over the tree once, before synth (`edgekit.core.aspects`)."""

    def visit(self, construct: Construct) -> None: ...


Validation = Callable[[], list[str]]
"""A validation hook returns messages; the caller decides when to raise."""


_VALID_IDS: set[str] = set()
"""Ids already accepted (most repeat: ``Resource``, ``firewall``, ...); bounded."""


def check_id(scope_path: str, id: str) -> None:
    """Reject ids that cannot become OpenTofu names, saying why and how to fix it."""
    if type(id) is str and id in _VALID_IDS:
        return
    if not isinstance(id, str):
        raise ConstructError(
            f"[{scope_path or '<root>'}] construct id must be a string, got {type(id).__name__}"
        )
    if "${" in id:
        raise ConstructError(
            f"[{scope_path or '<root>'}] a reference cannot be used as a construct id: {id!r}; "
            "ids are fixed names known before apply"
        )
    if not ID_PATTERN.fullmatch(id):  # match() would accept a trailing newline
        raise ConstructError(
            f"[{scope_path or '<root>'}] invalid construct id {id!r}: expected a letter followed "
            "by letters, digits, '_' or '-' (at most 63 characters)"
        )
    if type(id) is str and len(_VALID_IDS) < 4096:
        _VALID_IDS.add(id)


def tree_has_aspects(construct: Construct) -> bool:
    """Whether any construct of `construct`'s tree has an aspect (if none has, a synth
    need not walk the tree to look for one)."""
    return construct.node.root in _TREES_WITH_ASPECTS


class _Rare:
    """What few constructs of a large tree have, kept apart so that a node of the others
    is smaller (130,000 of them at 10,000 nodes)."""

    __slots__ = ("aspects", "renamed_from", "suppressions", "validations")

    def __init__(self) -> None:
        self.validations: list[Validation] = []
        self.aspects: list[Aspect] = []
        self.renamed_from: str | None = None
        self.suppressions: dict[str, str] = {}


class Node:
    """The tree side of a construct: id, path, scope, children, validations."""

    __slots__ = (
        "_assertions",
        "_children",
        "_rare",
        "host",
        "id",
        "scope",
    )

    def __init__(self, host: Construct, scope: Construct | None, id: str) -> None:
        self.host = host
        self.scope = scope
        self.id = id
        # Created on first use: most constructs of a large tree are leaves without
        # validations, aspects or assertions, and empty containers add up.
        self._children: dict[str, Construct] = _NO_CHILDREN
        self._assertions: tuple[TestAssertion, ...] = ()  # most have one: a tuple is smaller
        self._rare: _Rare | None = None  # validations, aspects, renamed_from, suppressions

    def _rare_parts(self) -> _Rare:
        if self._rare is None:
            self._rare = _Rare()
        return self._rare

    @property
    def path(self) -> str:
        """Ids from the root's child down to this construct, joined by ``/``.

        Made when asked, not kept: a large tree has a node for every construct, and a path
        string each was a twentieth of its memory."""
        ids = []
        node = self
        while node.scope is not None:
            ids.append(node.id)
            node = node.scope.node
        ids.reverse()
        return PATH_SEP.join(ids)

    def ids_below(self, ancestor: Construct) -> list[str]:
        """The ids from just below `ancestor` down to this construct (it must be one of
        this construct's scopes)."""
        ids = []
        node = self
        while node.host is not ancestor:
            ids.append(node.id)
            assert node.scope is not None, "not an ancestor"
            node = node.scope.node
        ids.reverse()
        return ids

    @property
    def children(self) -> list[Construct]:
        """Direct children, in the order they were added."""
        return list(self._children.values())

    @property
    def scopes(self) -> list[Construct]:
        """Ancestors from the root down to (and including) this construct."""
        chain: list[Construct] = []
        current: Construct | None = self.host
        while current is not None:
            chain.append(current)
            current = current.node.scope
        chain.reverse()
        return chain

    @property
    def root(self) -> Construct:
        return self.scopes[0]

    def try_find_child(self, id: str) -> Construct | None:
        return self._children.get(id)

    def find_child(self, id: str) -> Construct:
        child = self._children.get(id)
        if child is None:
            known = ", ".join(sorted(self._children)) or "none"
            raise ConstructError(f"[{self.path or '<root>'}] no child {id!r} (children: {known})")
        return child

    def find_all(self) -> list[Construct]:
        """This construct and every descendant, depth first, in insertion order."""
        return list(self.walk())

    def walk(self) -> Iterator[Construct]:
        stack: list[Construct] = [self.host]
        while stack:
            current = stack.pop()
            yield current
            stack.extend(reversed(current.node._children.values()))

    def add_validation(self, validation: Validation) -> None:
        self._rare_parts().validations.append(validation)

    def validate(self) -> list[str]:
        """Messages from this construct's own validation hooks (not its children's)."""
        messages: list[str] = []
        for validation in self._rare.validations if self._rare else ():
            messages.extend(validation())
        return messages

    def add_aspect(self, aspect: Aspect) -> None:
        """Run `aspect.visit` on this construct and every descendant before synth."""
        self._rare_parts().aspects.append(aspect)
        _TREES_WITH_ASPECTS.add(self.root)

    @property
    def aspects(self) -> tuple[Aspect, ...]:
        return tuple(self._rare.aspects) if self._rare else ()

    def add_assertion(self, name: str, condition: str, message: str) -> None:
        """Promise something about this construct's resources, checked by the generated
        ``tofu test`` after its mocked apply.

        `name` is a stable kebab-case id (``firewall-closed``); `condition` an OpenTofu
        expression over the stack's addresses (without ``${}``); `message` says what the
        promise is. A failing run prints ``[name] path: message``.
        """
        if not ASSERTION_NAME.fullmatch(name):
            raise ConstructError(f"[{self.path}] assertion name {name!r}: expected "
                                 "lowercase letters, digits and '-'")
        self._assertions = (*self._assertions, TestAssertion(
            name=name, path=self.path, condition=condition, message=message))

    @property
    def assertions(self) -> tuple[TestAssertion, ...]:
        return self._assertions

    def renamed_from(self, old_id: str) -> None:
        """Say this construct used to be called `old_id`.

        Every resource and module under it then gets a ``moved`` block from its old
        address to its new one, so OpenTofu moves state instead of destroying.
        """
        check_id(self.scope.node.path if self.scope else "", old_id)
        if old_id == self.id:
            raise ConstructError(f"[{self.path}] renamed_from({old_id!r}) names its current id")
        self._rare_parts().renamed_from = old_id

    def suppress(self, rule: str, *, reason: str) -> None:
        """Silence check rule `rule` (``EK1xx``) for this construct and everything below it.

        The reason is required and is printed with every finding it silences, so a
        suppression stays visible in `edgekit check` and `edgekit synth` output.
        """
        if not isinstance(rule, str) or not SUPPRESS_RULE.match(rule):
            raise ConstructError(f"[{self.path or '<root>'}] suppress({rule!r}): expected a "
                                 "rule id like 'EK101' (see `edgekit check --list`)")
        if not isinstance(reason, str) or not reason.strip():
            raise ConstructError(f"[{self.path or '<root>'}] suppress({rule!r}) needs a "
                                 "reason: say why the finding is acceptable here")
        self._rare_parts().suppressions[rule] = reason.strip()

    @property
    def suppressions(self) -> dict[str, str]:
        """Rule id → reason, for this construct only (not its ancestors)."""
        return dict(self._rare.suppressions) if self._rare else {}

    @property
    def old_id(self) -> str | None:
        return self._rare.renamed_from if self._rare else None

    def _attach(self, child: Construct, id: str) -> None:
        existing = self._children.get(id)
        if existing is not None:
            raise ConstructError(
                f"[{self.path or '<root>'}] duplicate construct id {id!r}: "
                f"{existing.node.path} already exists; choose another id"
            )
        if self._children is _NO_CHILDREN:
            self._children = {}
        self._children[id] = child

    def __repr__(self) -> str:
        return f"Node({self.path or '<root>'})"


class Construct:
    """Base of everything in the tree. Its only tree member is `node`."""

    __slots__ = ("__weakref__", "node")
    node: Node
    is_stack: ClassVar[bool] = False
    """True for a `Stack` (a class attribute: finding a construct's stack asks every scope)."""

    def __init__(self, scope: Construct | None, id: str) -> None:
        if scope is not None and not (type(id) is str and id in _VALID_IDS):
            check_id(scope.node.path, id)  # the path only for the message, when it is new
        self.node = Node(self, scope, id)
        if scope is not None:
            scope.node._attach(self, id)
        construct_created()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A construct whose constructor fails leaves the tree as it was: it is detached
        from its scope (with everything it created below itself)."""
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return

        @functools.wraps(init)
        def guarded(self: Construct, *args: Any, **kw: Any) -> None:
            try:
                init(self, *args, **kw)
            except BaseException:
                node = getattr(self, "node", None)
                if node is not None and node.scope is not None:
                    siblings = node.scope.node._children
                    if siblings.get(node.id) is self:
                        del siblings[node.id]
                raise

        cls.__init__ = guarded  # type: ignore[method-assign]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.node.path or '<root>'}>"

    def __str__(self) -> str:
        return self.node.path
