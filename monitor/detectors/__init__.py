"""The detectors: one module each, registered with :mod:`monitor.detectors.registry`.

The package itself imports nothing: :func:`monitor.detector_set.build_detectors` builds the
enabled ones from the rules, and :func:`monitor.drive.drive` runs them over a sequence of
events for the case tables and back-tests.
"""
