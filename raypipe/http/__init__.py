"""HTTP: the FastAPI app built from an app's http triggers (``routes``), served by Ray Serve
(``ingress``)."""
