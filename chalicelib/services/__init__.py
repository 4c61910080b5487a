"""Use cases. They orchestrate ports and never import chalice or boto3."""
