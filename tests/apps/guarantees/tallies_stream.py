from raypipe import StreamConfig

config = StreamConfig(name="tallies", schema={"type": "object"})
