#!/usr/bin/env bash
# Vendor the browser assets the offline book needs (MathJax 3, the ipywidgets HTML manager, RequireJS)
# from the npm registry into _assets/, which Sphinx copies to _build/html/_static/.
# Without them the HTML loads MathJax and widgets from CDNs and shows raw TeX offline.
# plotly.js comes from the installed plotly package (the version that wrote the figures), not npm.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=_assets
py=${PYTHON:-.venv/bin/python}
# One copy per site, served as _static/plotly/plotly.min.js (see ncbook/interactive.py); refreshed
# whenever the installed plotly changes, so it runs before the npm stamp check below.
plotly_js=$("$py" -c "import pathlib, plotly; print(pathlib.Path(plotly.__file__).parent / 'package_data' / 'plotly.min.js')")
mkdir -p "$dest/plotly"
cmp -s "$plotly_js" "$dest/plotly/plotly.min.js" || cp "$plotly_js" "$dest/plotly/plotly.min.js"
stamp="$dest/.fetched-v3"
[[ -f $stamp ]] && exit 0
command -v npm >/dev/null || { echo "fetch_assets: npm is required (apt-get install npm, or Node.js from nodejs.org)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent mathjax@3.2.2 @jupyter-widgets/html-manager@1.0.6 requirejs@2.3.4 >/dev/null)
find "$dest" -mindepth 1 -maxdepth 1 ! -name plotly -exec rm -rf {} + && mkdir -p "$dest/mathjax/es5/output/chtml/fonts" "$dest/mathjax/es5/input/tex"
for t in "$work"/*.tgz; do mkdir -p "$work/x" && tar -xzf "$t" -C "$work/x" && mv "$work/x/package" "$work/$(basename "$t" .tgz)" && rm -rf "$work/x"; done
mj="$work/mathjax-3.2.2/es5"
cp "$mj/tex-mml-chtml.js" "$dest/mathjax/es5/"
cp -r "$mj/output/chtml/fonts/woff-v2" "$dest/mathjax/es5/output/chtml/fonts/"
cp -r "$mj/input/tex/extensions" "$dest/mathjax/es5/input/tex/"
cp -r "$mj/ui" "$mj/a11y" "$dest/mathjax/es5/"
# The widget manager and the icon fonts it loads from beside itself (webpack public path).
mkdir -p "$dest/widgets"
find "$work/jupyter-widgets-html-manager-1.0.6/dist" -maxdepth 1 -type f ! -name '*.map' -exec cp {} "$dest/widgets/" \;
# The manager asks for its icon fonts at <page folder>/@jupyter-widgets/html-manager/dist/, and every
# page lives in book/: ship them there too (Sphinx copies html_extra_path to the site root).
fonts="$dest/extra/book/@jupyter-widgets/html-manager/dist"
mkdir -p "$fonts"
find "$work/jupyter-widgets-html-manager-1.0.6/dist" -maxdepth 1 -type f \( -name '*.woff*' -o -name '*.ttf' -o -name '*.eot' -o -name '*.svg' \) -exec cp {} "$fonts/" \;
cp "$work/requirejs-2.3.4/require.js" "$dest/require.js"
touch "$stamp"
echo "fetch_assets: vendored $(du -sh "$dest" | cut -f1) into $dest/"
