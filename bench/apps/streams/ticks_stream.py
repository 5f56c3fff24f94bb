from raypipe import StreamConfig

config = StreamConfig(name="ticks")
