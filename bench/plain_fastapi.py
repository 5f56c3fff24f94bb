"""bench/http.py's baseline: the same trivial endpoint as a plain FastAPI app (uvicorn)."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/ping")
async def ping() -> dict[str, bool]:
    return {"ok": True}
