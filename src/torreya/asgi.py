"""The ASGI application for uvicorn workers: `torreya.asgi:app`."""

from torreya.app import create_app

app = create_app()
