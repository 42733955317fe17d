"""ncbook: the helper package of the course *Neural collapse with normalized features*.

Modules (one concept each): ``config``, ``sphere``, ``etf``, ``ufm``, ``rgd``, ``geoopt_rgd``,
``landscape``, ``diagnostics``, ``metrics``, ``data``, ``models``, ``train``, ``experiments``,
``plotting``, ``widgets``. Import the module you need, e.g. ``from ncbook import sphere``;
importing ``ncbook`` itself stays light (no matplotlib, no ipywidgets).
"""

__version__ = "0.1.0"
