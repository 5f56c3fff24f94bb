from pydantic import BaseModel

from raypipe import StreamConfig


class Item(BaseModel):
    n: int
    pad: str = ""


config = StreamConfig(name="items", schema=Item)
