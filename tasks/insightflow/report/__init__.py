"""Report: read the marts, compute findings, draw charts, render and publish the report and its revisions."""
