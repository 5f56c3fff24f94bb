from raypipe import StepConfig, queue

from .placed import record as handler  # noqa: F401

config = StepConfig(name="anywhere", triggers=[queue("any.work")])
