"""The classifier's own definition (``inception_v3.py``); downloads go to ``cache/``."""
