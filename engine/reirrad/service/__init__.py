"""``reirrad serve``: the web page, the JSON API, the CDS Hooks service and FHIR out, on the engine in process.

Nothing here is imported by the other commands except ``service.fhir`` and ``service.engine`` (``evaluate --format
fhir``), which need neither FastAPI nor uvicorn.
"""
