from starlette.requests import HTTPConnection


def authenticate(conn: HTTPConnection) -> str | None:
    """The caller's token (query parameter or bearer header); None is anonymous."""
    token = conn.query_params.get("token")
    header = conn.headers.get("authorization", "")
    if header.startswith("Bearer "):
        token = header[7:]
    if token == "forbidden":
        raise PermissionError("banned token")
    return token
