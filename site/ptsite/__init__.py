"""The demo site's Python: pure view logic and thin DOM layers.

Pure modules (no ``js``, unit-tested in CPython under ``tests/unit/site``):
``forms`` (JSON Schema -> form -> arguments), ``views`` (results, resources,
prompts, logs -> text and validated ``data:`` URLs), ``tracing`` (a logging
wrapper transport), ``settings`` (endpoints, deep links, error text, URI
templates) and ``snippets`` (run docs code with top-level ``await``).
DOM modules (Pyodide only): ``dom``, ``explorer_app``, ``docs_app``.
"""
