"""The project's non-code assets, shipped inside the package without moving them.

In the checkout they stay at the top level, where people look for them; pyproject.toml's
``[tool.setuptools.package-dir]`` maps each folder onto a subpackage of this one:

- ``container/`` is ``tritonship.assets.container``: ``sagemaker.env``, the native
  engine's CPU stand-in backends (``backends/*/*.py``), ``docker-compose.yml`` (the one
  compose file: users run it from the checkout with ``-f container/docker-compose.yml``)
  and its overrides ``compose.*.yml``.
- ``dali/`` is ``tritonship.assets.dali``: ``pipeline.py``, the DALI preprocessing.
- ``models/`` is ``tritonship.assets.models``: ``inception_v3.py``, the classifier's own
  definition (its download cache ``models/cache/`` is not packaged).

An editable install reads the checkout's files, a wheel its own copies. Code never builds
these paths itself: :mod:`tritonship.paths` resolves them with importlib.resources.
"""
