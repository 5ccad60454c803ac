"""The engine. Importing it first serves the methods attrs generates for edgekit's classes
from a bytecode cache (`codecache`, ADR 0039): every edgekit module imports the core
before it defines an attrs class."""

from edgekit.core.codecache import install

install()
