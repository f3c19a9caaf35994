"""The operator view: list jobs, show one, retry a failure, and hourly statistics.

One query layer (`shared.ops.query`) serves the HTTP functions (`shared.ops.http`), the status
page (`shared.ops.page`) and the CLI (``python -m shared.ops jobs|show|retry|stats|reindex``).
Answers stay fast with many jobs because they are kept as the jobs change
(`shared.ops.recorder`): a newest-first index of jobs and per-hour counter rows in the job
table's own partitions, next to the job rows.
"""
