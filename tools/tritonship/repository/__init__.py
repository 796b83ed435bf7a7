"""Build and validate the Triton model repository.

:mod:`.build` writes the DALI pipeline (:mod:`.dali`), the Inception V3 graph
(:mod:`.inception`) or its ONNX conversion (:mod:`.onnx`), the labels (:mod:`.labels`)
and the manifest; :mod:`.validate` checks every ``config.pbtxt``, the ensemble wiring and
the execution accelerators (:mod:`.accelerators`).
"""
