"""The public surface: curated, importable, light, and unable to drift unnoticed."""

from __future__ import annotations

import subprocess
import sys

import raypipe
from raypipe import errors

PUBLIC = {
    "ApiRequest", "ApiResponse", "AppLoadError", "BackendUnavailableError", "Batch",
    "ConfigError", "ConfigFieldError", "DeployError", "EnqueueError", "EnqueueValidationError",
    "FlowContext", "Form", "InvalidIdError", "JSONLimitError", "LimitError", "NotJSONError",
    "QueueConfig", "RayOptions", "RaypipeError", "Ref", "RefGoneError", "RuntimeNotRunningError",
    "SchemaValidationError", "StateLayoutError", "StateTriggerInput", "StepConfig",
    "StepLoadError", "Stream", "StreamConfig", "StreamEvent", "StreamTriggerInput",
    "TriggerKind", "UnsafePathError", "UpdateOpError", "UploadedFile", "UsageError",
    "__version__", "cron", "http", "queue", "state", "stream", "subscribe",
}


def test_all_is_exactly_the_public_api() -> None:
    assert set(raypipe.__all__) == PUBLIC
    assert sorted(raypipe.__all__) == list(raypipe.__all__)
    for name in raypipe.__all__:
        assert getattr(raypipe, name) is not None


def test_trigger_constructors_are_not_shadowed_by_subpackages() -> None:
    # `raypipe.http` and `raypipe.state` are also subpackage names; importing their modules
    # later must not replace the functions users import.
    import raypipe.http.routes
    import raypipe.state.backends.memory  # noqa: F401
    from raypipe import http, state

    assert callable(http) and http("GET", "/x").path == "/x"
    assert callable(state) and state().group_id is None


def test_every_error_derives_from_the_root() -> None:
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.RaypipeError), name
    assert issubclass(errors.UpdateOpError, ValueError)


def test_importing_raypipe_does_not_import_ray() -> None:
    code = "import sys, raypipe, raypipe.loader, raypipe.flows; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
