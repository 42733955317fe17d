"""Small fixes to the HTML pages of the book (a local Sphinx extension, see _config.yml).

* sphinx-thebe and sphinx-togglebutton add inline scripts (``const THEBE_JS_URL = ...``) after
  the HTML builder exists, and Sphinx 7.4 then keeps each twice, once with the filename ``None``
  and once with ``""``, so they do not compare equal. Every page declared the constant twice and
  logged a SyntaxError. Keep each script once.
"""

from __future__ import annotations


def _unique_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        attrs = tuple(sorted(getattr(js, "attributes", {}).items()))
        key = (getattr(js, "filename", str(js)) or "", attrs)
        if key not in seen:
            seen.add(key)
            kept.append(js)
    context["script_files"] = kept


def setup(app):
    app.connect("html-page-context", _unique_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
