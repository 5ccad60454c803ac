"""Aspects: visitors that run over the tree once, before synth.

Register with ``scope.node.add_aspect(aspect)``; the aspect then visits that
construct and all its descendants. See `edgekit.core.synth.run_aspects` for the
order. Aspects may adjust properties or add validations; constructs they add are
not visited in the same pass.
"""

from __future__ import annotations

from edgekit.core.construct import Aspect

__all__ = ["Aspect"]
