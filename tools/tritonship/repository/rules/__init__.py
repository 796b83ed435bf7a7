"""The validator's rules, one module per concern; :mod:`..validate` runs them all.

:mod:`.model` (every model on its own, with :mod:`.warmup`), :mod:`.ensemble` (steps and
the tensors between them), :mod:`.image` (the backends an image tag carries),
:mod:`.gpu` (a GPU build's memory budget) and :mod:`.sagemaker` (what ``serve`` refuses).
"""
