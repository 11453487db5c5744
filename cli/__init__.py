"""The ``borderwatch`` command line and the local-services manager of ``make run``/``make test``."""
