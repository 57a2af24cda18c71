"""Entry script of the dashboard: ``streamlit run main.py`` (``genmodel dashboard`` does it).

Eight pages, each its own script in this folder, at the URL paths ``estimate`` (also the root
``/``), ``plan``, ``serving``, ``compare``, ``long_context``, ``moe``, ``validation`` and
``calibrate``. The widgets
of every page read their starting values from the URL's query parameters and write them back, so a
URL reproduces a view.
"""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="genmodel dashboard", layout="wide")

_ESTIMATE = "_estimate.py"
_ESTIMATE_TITLE = "Estimate / what-if"

pages = [
    # the root URL: a page's pathname there is "" whatever its url_path, so ``/estimate`` needs the
    # same script again as a hidden page with that path (else Streamlit answers "page not found")
    st.Page(_ESTIMATE, title=_ESTIMATE_TITLE, url_path="home", default=True),
    st.Page(_ESTIMATE, title=_ESTIMATE_TITLE, url_path="estimate", visibility="hidden"),
    st.Page("_plan.py", title="Plan search", url_path="plan"),
    st.Page("_serving.py", title="Serving under load", url_path="serving"),
    st.Page("_compare.py", title="Compare platforms", url_path="compare"),
    st.Page("_long_context.py", title="Long context & memory tiers", url_path="long_context"),
    st.Page("_moe.py", title="MoE & expert parallelism", url_path="moe"),
    st.Page("_validation.py", title="Validation", url_path="validation"),
    st.Page("_calibrate.py", title="Calibrate a profile", url_path="calibrate"),
]
st.navigation(pages).run()
