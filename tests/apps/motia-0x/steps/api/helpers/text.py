import os


def greeting_text(name: str) -> str:
    return f"{os.environ.get('GREETING_PREFIX', 'NOT_SET')}, {name}!"
