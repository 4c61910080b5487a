"""Local development stack: pieces that stand in for AWS when running ``make run``."""
