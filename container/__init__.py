"""Container assets: the SageMaker environment, compose file and CPU stand-in backends."""
