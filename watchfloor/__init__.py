"""The ``watchfloor`` command and the wiring that starts a whole stack."""

__version__ = "0.1.0"
