"""Infrastructure definitions shared by deployment, the local stack and the tests."""
