"""Serve the repository locally as SageMaker does.

An engine (:mod:`.native` or :mod:`.docker`, both :class:`.engine.Engine`) runs the
container API; :mod:`.runtime` imitates the SageMaker runtime API in front of it;
:mod:`.endpoint` owns both.
"""
