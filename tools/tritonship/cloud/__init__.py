"""Ship the archive to a SageMaker endpoint with boto3: plan, promote, roll back, tear down."""
