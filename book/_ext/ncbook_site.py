"""Small fixes to the HTML pages of the book (a local Sphinx extension, see _config.yml).

* sphinx-thebe registers its inline configuration script (``const THEBE_JS_URL = ...``) once per
  read of the sources, and Jupyter Book reads them twice, so every page declared the constant
  twice and logged a SyntaxError. Keep each script once.
"""

from __future__ import annotations


def _unique_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        key = (str(js), tuple(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(js)
    context["script_files"] = kept


def setup(app):
    app.connect("html-page-context", _unique_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
