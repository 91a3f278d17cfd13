"""Network measurements. Each function performs one attempt and returns a step record; none raises
for a network failure, none knows about verdicts, files or schedules."""
