"""
Sphinx configuration. Build with ``tox -e docs`` (warnings are errors).

Intersphinx: links to the Python and Twisted documentation need their
inventories (``objects.inv``), fetched over the network. This project is built
and tested where there is none, so by default the build uses no inventory:
references to Python, Twisted and other outside objects render as code
without a link, and ``nitpick_ignore_regex`` below keeps ``-n -W`` from
failing on them. Set ``TXTESTSERVER_DOCS_ONLINE=1`` where the network is
reachable to turn those references into links.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import txtestserver  # noqa: E402

project = "txtestserver"
author = "txtestserver developers"
copyright = "txtestserver developers"
release = version = txtestserver.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx_copybutton",  # a copy button on every example
    "sphinx_design",  # tabs: one example in each face
    "sphinxcontrib.towncrier.ext",  # changelog.d/ on the changelog page
]
exclude_patterns = ["_build"]
default_role = "code"
html_theme = "furo"
html_title = f"txtestserver {release}"
html_static_path = ["_static"]
html_css_files = ["wide.css"]

# The copy button leaves out the prompts of shell and interpreter examples.
copybutton_prompt_text = r"\$ |>>> |\.\.\. "
copybutton_prompt_is_regexp = True

# The changes not released yet, from changelog.d/ (towncrier build --draft).
towncrier_draft_autoversion_mode = "draft"
towncrier_draft_include_empty = True
towncrier_draft_working_directory = ROOT

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"

if os.environ.get("TXTESTSERVER_DOCS_ONLINE") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "twisted": ("https://docs.twisted.org/en/stable/api/", None),
    }

# Names outside this package: linked when the inventories are loaded (see
# above), plain code otherwise.
nitpick_ignore_regex = [
    (r"py:.*", r"(twisted|multidict|threading|ssl|collections\.abc|re|os|pathlib)\..*"),
]
# The reactor types are structural Protocols (txtestserver._types): any
# Twisted reactor fits them; they have no page of their own.
nitpick_ignore_regex.append((r"py:class", r"(txtestserver\._types\.)?\w*Reactor"))
# Sphinx 7.2 (the floor, tox -e mindeps) also reads the annotations a mixin
# declares for type checking only (``config: ServerConfig`` in _proxy.py), and
# documents them as members of the servers; the config has no page of its own.
nitpick_ignore_regex.append((r"py:class", r"(txtestserver\._config\.)?ServerConfig"))
