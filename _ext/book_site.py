"""Sphinx extension of the book's site: an "Open in Colab" button, local MathJax loaded once,
and no duplicated search bar.

Open in Colab
-------------
Jupyter Book 1's own Colab button opens the page's source (``book/<chapter>.md``), which
Colab cannot read. Colab opens the paired notebook instead, ``notebooks/<chapter>.ipynb``,
straight from GitHub:

    https://colab.research.google.com/github/<owner>/<repo>/blob/<branch>/notebooks/<chapter>.ipynb

Owner, repository and branch come from ``repository.url`` and ``repository.branch`` in
``_config.yml`` (Jupyter Book passes them on as the theme options ``repository_url`` and
``repository_branch``), so they are configured once.

A page gets the button when its source is a notebook (a Jupytext header with a kernelspec)
with at least one code cell. If such a page has no paired notebook in ``notebooks/``, the
build warns (and a ``-W`` build fails): the link would lead to a missing file.

MathJax
-------
MathJax is served from ``_static/mathjax/`` (``mathjax_path`` in ``_config.yml``). Jupyter
Book adds every ``.js`` file under ``_static/`` to every page, which would load MathJax a
second time without ``defer`` (MathJax then throws "Cannot set property Package ... which has
only a getter") and on pages without math. Sphinx's math extension already loads it, once and
only where there is math, so the copy Jupyter Book added is dropped here.
"""

from pathlib import Path
from urllib.parse import urlparse

from sphinx.application import Sphinx
from sphinx.util import logging

from booktools.chapters import has_code

LOGGER = logging.getLogger(__name__)

COLAB = "https://colab.research.google.com/github"
NOTEBOOK_DIR = "notebooks"


def github_repo(url):
    """Return (owner, repo) of a https://github.com/<owner>/<repo> URL, or None."""
    parsed = urlparse(url or "")
    parts = [p for p in parsed.path.split("/") if p]
    if parsed.netloc.lower() != "github.com" or len(parts) < 2:
        return None
    owner, repo = parts[0], parts[1]
    return owner, repo.removesuffix(".git")


def colab_url(owner, repo, branch, notebook):
    """The Colab address that opens ``notebook`` (a path in the repository)."""
    return f"{COLAB}/{owner}/{repo}/blob/{branch}/{notebook}"


def _has_code(app, pagename):
    """Whether the page is a notebook with a code cell (booktools.chapters.has_code, the rule
    that decides which pages get a notebook: fenced examples of code cells do not count)."""
    if "kernelspec" not in app.env.metadata.get(pagename, {}):
        return False
    source = Path(app.env.doc2path(pagename))
    if source.suffix != ".md":
        return source.suffix == ".ipynb"
    return has_code(source)


def add_colab_button(app, pagename, templatename, context, doctree):
    """html-page-context hook: put the Colab button first among the page's header buttons."""
    if doctree is None or "header_buttons" not in context or not _has_code(app, pagename):
        return
    options = app.config.html_theme_options
    found = github_repo(options.get("repository_url"))
    if found is None:
        LOGGER.warning(
            "book_site: repository.url in _config.yml must be a https://github.com/<owner>/"
            "<repo> address, got %r",
            options.get("repository_url"),
            location=pagename,
        )
        return
    branch = options.get("repository_branch") or "main"
    notebook = f"{NOTEBOOK_DIR}/{Path(pagename).name}.ipynb"
    if not (Path(app.srcdir) / notebook).is_file():
        LOGGER.warning(
            "book_site: %s has code cells but no paired notebook %s (run `make notebooks`)",
            app.env.doc2path(pagename),
            notebook,
            location=pagename,
        )
    context["colab_url"] = colab_url(*found, branch, notebook)
    context["header_buttons"].insert(
        0,
        {
            "type": "link",
            "url": context["colab_url"],
            "text": "Open in Colab",
            "tooltip": "Run this chapter as a notebook in Google Colab",
            "icon": "_static/images/logo_colab.png",
            "label": "open-in-colab",
        },
    )


def drop_auto_included_mathjax(app, config):
    """config-inited hook: remove ``mathjax_path`` from the JS files added to every page."""

    def name(entry):
        return entry[0] if isinstance(entry, (tuple, list)) else entry

    config.html_js_files = [e for e in config.html_js_files if name(e) != config.mathjax_path]


def no_header_search(app, config):
    """config-inited hook: keep the search field in the sidebar only.

    sphinx-book-theme has no top navbar (its theme.conf empties ``navbar_persistent``), but
    pydata-sphinx-theme 0.17 puts a search field there whenever the *user* options do not
    name ``navbar_persistent``, which adds a second, full-width search bar above every page.
    """
    config.html_theme_options.setdefault("navbar_persistent", [])


def setup(app: Sphinx):
    # After Sphinx has normalised html_js_files (priority 800).
    app.connect("config-inited", drop_auto_included_mathjax, priority=900)
    app.connect("config-inited", no_header_search)
    # After sphinx-book-theme has created the header buttons (its hooks run at 501).
    app.connect("html-page-context", add_colab_button, priority=510)
    # The button's style, _static/colab_link.css, is linked by Jupyter Book, which adds every
    # .css file under _static/ to every page.
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
