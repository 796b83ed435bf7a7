"""The SageMaker contract shared by local and cloud serving.

The ``serve`` script's variable-to-flag mapping (:mod:`.serve`), the image URIs per tag
(:mod:`.images`), and the wire format, limits and clients of ``/invocations`` (:mod:`.wire`,
:mod:`.client`).
"""
