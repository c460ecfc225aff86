"""The PSA system API: projects, tasks, assignments, time entries, expenses, milestones."""
