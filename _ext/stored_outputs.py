"""Sphinx extension: render every chapter from its executed notebook, without running it.

The chapters (``book/<name>.md``) are executed once, by ``make notebooks``, which stores the
outputs in ``notebooks/<name>.ipynb``; nbval re-executes those notebooks in ``make test`` and
compares. Running every chapter a second time to build the site would prove nothing new, so
the site is rendered from the stored outputs:

1. ``builder-inited``: the Jupyter cache that MyST-NB reads in ``execute_notebooks: cache``
   mode (``_build/.jupyter_cache``) is emptied and filled with the notebooks in ``notebooks/``.
   MyST-NB then finds each chapter's outputs there: it matches a chapter to a cached notebook
   by the hash of its code cells and kernelspec, and merges the outputs into the page.
2. ``source-read``: before MyST-NB looks a chapter up, its notebook is checked with the same
   pairing check as ``make check`` (same cells, executed, no error output). A chapter that was
   edited but not re-executed, or has no notebook, stops the build with a message naming the
   file and the command that fixes it; a chapter whose notebook is paired but still not found
   in the cache stops it too. MyST-NB therefore never starts a kernel.

``BOOK_EXECUTE=1`` restores the old behaviour (``make book-exec``): every chapter is executed
during the build and nothing is read from ``notebooks/``.
"""

import os
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

from booktools import BookError
from booktools.chapters import chapters
from booktools.notebooks.pairing import chapter_problems, notebook_path
from booktools.toc import toc_pages

ROOT = Path(__file__).resolve().parent.parent


def executing() -> bool:
    return os.environ.get("BOOK_EXECUTE", "") not in ("", "0")


def choose_mode(app: Sphinx, config):
    """config-inited hook: MyST-NB reads stored outputs, or executes with BOOK_EXECUTE=1.

    The chapters are found once here (reading them all is not free) and kept on `app`.
    Pages of prose only (a notebook header, no code cell) are never executed: MyST-NB would
    otherwise start a kernel to run nothing.
    """
    config.nb_execution_mode = "force" if executing() else "cache"
    try:
        app.book_chapters = chapters(ROOT)
    except BookError as e:  # _toc.yml or a chapter unreadable: the same message as `make lib`
        raise ExtensionError("\n".join(f"error: {message}" for message in e.args)) from None
    with_code = {md.relative_to(ROOT).with_suffix("").as_posix() for md in app.book_chapters}
    prose = [f"{page}.md" for page in toc_pages(ROOT) if page not in with_code]
    config.nb_execution_excludepatterns = list(config.nb_execution_excludepatterns) + prose


def fill_cache(app: Sphinx):
    """builder-inited hook: an empty cache, then every stored notebook of a chapter."""
    if executing():
        return
    from jupyter_cache import get_cache

    path = app.config.nb_execution_cache_path or str(Path(app.outdir).parent / ".jupyter_cache")
    app.book_cache = get_cache(path)
    app.book_cache.clear_cache()
    for md in app.book_chapters:
        notebook = notebook_path(md, ROOT)
        if notebook.exists():
            app.book_cache.cache_notebook_file(str(notebook), check_validity=False,
                                               overwrite=True)


def check_chapter(app: Sphinx, docname: str, source: list):
    """source-read hook: a chapter is rendered only from a paired, executed notebook."""
    md = ROOT / f"{docname}.md"
    if executing() or md not in app.book_chapters:
        return
    problems = chapter_problems(md, ROOT)
    if problems:
        raise ExtensionError(
            "the site is rendered from the executed notebooks, and this chapter's is not "
            "usable:\n  " + "\n  ".join(problems)
        )
    import jupytext

    try:
        app.book_cache.match_cache_notebook(jupytext.reads(source[0], fmt="md:myst"))
    except KeyError:
        raise ExtensionError(
            f"{md.relative_to(ROOT)}: its notebook is paired, but the build cache has no "
            "match for it, so MyST-NB would execute the chapter; rebuild from an empty "
            "_build (`make book`)"
        ) from None


def setup(app: Sphinx):
    app.connect("config-inited", choose_mode)
    app.connect("builder-inited", fill_cache)
    app.connect("source-read", check_chapter)
    return {"version": "1.0", "parallel_read_safe": False, "parallel_write_safe": True}
