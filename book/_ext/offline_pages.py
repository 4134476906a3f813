"""Sphinx extension of the rsd-mini book: pages that load nothing from the network and log no error.

Jupyter Book 1 always loads sphinx-thebe (live code cells from a Binder kernel). This book turns
thebe off, yet sphinx-thebe 0.3.1 still writes its config script twice into every page
(``const THEBE_JS_URL`` declared twice: a SyntaxError in the browser console) and a loader that
would fetch thebe from unpkg. Both are dropped from each page's scripts here.
"""

THEBE_FILES = ("sphinx-thebe.js",)


def _is_thebe(script) -> bool:
    body = getattr(script, "attributes", {}).get("body", "")
    return str(script).endswith(THEBE_FILES) or "THEBE_JS_URL" in body or "thebe" in str(script)


def drop_thebe_scripts(app, pagename, templatename, context, doctree) -> None:
    if "script_files" in context:
        context["script_files"] = [script for script in context["script_files"] if not _is_thebe(script)]


def setup(app):
    app.connect("html-page-context", drop_thebe_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
