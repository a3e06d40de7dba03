"""The demo site's Python: pure view logic (forms, views, tracing, snippets) and thin DOM layers.

Modules without ``_app`` in their name are pure Python (no ``js``, no
``pyscript``) and are unit-tested in CPython; ``explorer_app`` and
``docs_app`` wire them to the page.
"""
