"""Serves the dashboard at ``/ui``: the shipped static files, and Plotly's bundle from the installed package.

The charting library is a dependency (``plotly`` on PyPI ships ``plotly.min.js`` in its package data), so
the repository holds no copy of it and the page loads nothing from a CDN.
"""

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
router = APIRouter(include_in_schema=False)


def plotly_bundle() -> Path:
    """The minified Plotly.js that the installed ``plotly`` package ships (one file, no network)."""
    return Path(str(files("plotly") / "package_data" / "plotly.min.js"))


@router.get("/ui")
def ui_root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)  # relative module URLs resolve against /ui/


@router.get("/ui/vendor/plotly.min.js")
def plotly_js() -> FileResponse:
    # Versioned by the pinned package: a day's caching is safe and spares 4.6 MB per page load.
    return FileResponse(plotly_bundle(), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})


def install_ui(app: FastAPI) -> None:
    app.include_router(router)  # before the mount: its routes win over the static directory
    app.mount("/ui", StaticFiles(directory=STATIC, html=True), name="ui")
