from .placed import record as handler  # noqa: F401

# A Motia-shaped dict config, its Ray options under "ray".
config = {"name": "on-tagged", "triggers": [{"type": "queue", "topic": "tagged.work"}],
          "ray": {"resources": {"gpu_node": 1}, "maxBatch": 4}}
