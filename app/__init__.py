"""The genmodel Streamlit dashboard (installed as ``genmodel.app``): widgets -> public API -> plotly.

Start it with ``genmodel dashboard`` (or ``make dashboard``); the entry script is ``main.py`` in this
package. Importing the package imports nothing heavy: Streamlit is loaded by the pages only.
"""
