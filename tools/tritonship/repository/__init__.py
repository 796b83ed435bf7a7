"""Build and validate the Triton model repository.

:mod:`.build` writes the DALI pipeline (:mod:`.dali`), the Inception V3 graph
(:mod:`.inception`), the labels (:mod:`.labels`) and the manifest (:mod:`.manifest`);
:mod:`.validate` checks every ``config.pbtxt`` and the ensemble wiring.
"""
