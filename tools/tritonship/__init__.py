"""tritonship: a Triton DALI + Inception V3 ensemble from a workstation to SageMaker."""

__version__ = "0.1.0"
