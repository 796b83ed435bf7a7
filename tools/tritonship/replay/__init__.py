"""Production traffic, replayed: ``tritonship capture decode`` and ``tritonship replay``.

Captured requests (SageMaker's data capture in S3, or ``serve --capture`` locally) are read
by :mod:`.sources`, decoded into readable files by :mod:`.decode`, and sent again to one or
two targets by :mod:`.engine`, whose answers are compared and reported by :mod:`.report`.
It needs no extra dependency (unlike ``tritonship bench``).
"""
