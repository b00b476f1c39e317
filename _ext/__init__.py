"""Sphinx extensions of the book's site, loaded as ``_ext.<name>`` with the repository root on
``sys.path`` (``sphinx.local_extensions`` in ``_config.yml``), so that they import ``booktools``."""
