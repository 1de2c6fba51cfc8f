"""Deprecated: the student versions moved to :mod:`elslib.course.student` (the course layer). This alias
keeps old notebooks running, with a DeprecationWarning, and will be removed in a later edition."""

import importlib
import sys
import warnings

warnings.warn("elslib.student moved to elslib.course.student; import it from there", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = importlib.import_module("elslib.course.student")
