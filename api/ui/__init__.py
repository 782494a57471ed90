"""The built-in dashboard: static pages at /ui, Plotly served from the installed ``plotly`` package."""
