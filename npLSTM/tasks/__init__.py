"""The reference problems of shared/TASKS.md, each with its data, model,
training loop and evaluation, in a "tutorial" (the original Keras
configuration, unchanged) and a "default" configuration (what solves it
reliably; docs/experiments.md gives the measurements behind each)."""
from . import echo, longlag, memory
from .common import Task

TASKS = {task.name: task for task in (memory.TASK, echo.ECHO, echo.ECHO_PARTIAL,
                                      *longlag.TASKS)}


def get(name):
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known: {sorted(TASKS)}")
    return TASKS[name]


__all__ = ["TASKS", "Task", "get"]
