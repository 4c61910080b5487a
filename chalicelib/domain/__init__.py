"""The domain: one model of schedules, runs and threads shared by both façades."""
