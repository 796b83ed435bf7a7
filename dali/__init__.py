"""The DALI preprocessing pipeline (``pipeline.py``), packaged as ``tritonship.assets.dali``."""
