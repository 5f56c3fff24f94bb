from raypipe import RayOptions, StepConfig, queue

from .placed import record as handler  # noqa: F401

config = StepConfig(name="on-gpu", triggers=[queue("gpu.work")], ray=RayOptions(num_gpus=1))
