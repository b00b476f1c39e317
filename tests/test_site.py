"""Real-browser test of the built site in _build/html (run `make book` first; `make browser`
builds and then runs this file).

The site is served on 127.0.0.1 by a throw-away HTTP server and every page is opened in
Debian's headless Chromium, driven by Python playwright. Chromium comes from the system
(`make browser-deps` installs it with apt-get when it may), else from Playwright's own
download where the system's cannot be installed. For every page the test checks:
HTTP 200, no console error, no request to any host but 127.0.0.1, typeset math (MathJax
elements present, no raw ``\\(`` left), every image loaded and described by its alt text,
every image of a chapter in a figure with a numbered caption ("Fig. 3"), every citation linked
to its entry on the References page, no code block wider than the page, and an "Open in Colab"
link that points at a notebook present in notebooks/. It also follows the next/previous links
through the whole book and searches for a word of each chapter. A full-page screenshot of every page is
saved under _build/screenshots/.
"""

import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import jupytext
import pytest
import yaml
from citations import cited_keys

from booktools.toc import toc_pages

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
HOST = "127.0.0.1"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
COLAB_SELECTOR = "a.btn-open-in-colab"
TIMEOUT_MS = 30_000


def site_pages():
    """Every HTML page of the build, as paths relative to _build/html."""
    if not (HTML / "index.html").is_file():
        return []
    skip = {"_static", "_sources", "_images"}
    return sorted(
        p.relative_to(HTML).as_posix()
        for p in HTML.rglob("*.html")
        if not skip.intersection(p.relative_to(HTML).parts)
    )


def toc_docs():
    """The documents of _toc.yml in reading order (the root first), e.g. 'book/intro'."""
    return toc_pages(ROOT)


def colab_prefix():
    """The Colab address prefix of the repository and branch configured in _config.yml."""
    repo = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))["repository"]
    path = urlparse(repo["url"]).path.strip("/").removesuffix(".git")
    branch = repo.get("branch", "main")
    return f"https://colab.research.google.com/github/{path}/blob/{branch}/"


def has_code(doc):
    """A chapter with a code cell (as booktools.chapters and _ext/book_site.py decide)."""
    source = ROOT / f"{doc}.md"
    if not source.is_file():
        return False
    return any(c.cell_type == "code" for c in jupytext.read(source, fmt="md:myst").cells)


PAGES = site_pages()
MISSING_BUILD = "no site in _build/html: run `make book` first (or `make browser`)"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def server():
    if not PAGES:
        pytest.fail(MISSING_BUILD)
    handler = functools.partial(QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer((HOST, 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://{HOST}:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def browser():
    from playwright import sync_api

    with sync_api.sync_playwright() as p:
        # The system's Chromium; else the one Playwright downloaded (booktools/system_deps.sh).
        executable = CHROMIUM if Path(CHROMIUM).exists() else p.chromium.executable_path
        if not Path(executable).exists():
            pytest.fail(
                f"no Chromium at {CHROMIUM} nor from Playwright: run `make browser-deps`, "
                "or `sudo apt-get install chromium`, or set CHROMIUM to its path"
            )
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session", autouse=True)
def fresh_screenshots():
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)


class Watcher:
    """A browser page that records console errors, failed loads and foreign requests."""

    def __init__(self, browser):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.errors, self.foreign = [], []
        self.context.route("**/*", self._route)
        self.page.on("request", self._request)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        self.page.on("requestfailed", self._failed)
        self.page.on("response", self._response)

    @staticmethod
    def _is_local(url):
        parsed = urlparse(url)
        return parsed.scheme in ("data", "blob", "about") or parsed.hostname == HOST

    def _request(self, request):
        if not self._is_local(request.url):
            self.foreign.append(request.url)

    def _route(self, route):
        # Requests to other hosts are recorded above and then refused, never sent.
        if self._is_local(route.request.url):
            route.continue_()
        else:
            route.abort()

    def _console(self, msg):
        if msg.type == "error":
            self.errors.append(f"console: {msg.text} ({msg.location.get('url', '')})")

    def _failed(self, request):
        if self._is_local(request.url):
            self.errors.append(f"failed request: {request.url} ({request.failure})")

    def _response(self, response):
        if response.status >= 400:
            self.errors.append(f"HTTP {response.status}: {response.url}")

    def close(self):
        self.context.close()


@pytest.fixture
def watcher(browser):
    w = Watcher(browser)
    yield w
    w.close()


def typeset_math(page):
    """Wait for MathJax to finish; return (math elements, typeset elements, raw TeX left)."""
    n_math = page.locator(".math").count()
    if n_math:
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        page.evaluate("() => MathJax.startup.promise")
    typeset = page.locator("mjx-container").count()
    prose = page.evaluate(
        """() => {
            const copy = document.body.cloneNode(true);
            copy.querySelectorAll('pre, code, script, style, .highlight, .output')
                .forEach(e => e.remove());
            return copy.textContent;
        }"""
    )
    raw = re.findall(r"\\\(|\\\[|\$\$", prose)
    return n_math, typeset, raw


def broken_images(page):
    page.wait_for_function("() => Array.from(document.images).every(img => img.complete)")
    return page.evaluate(
        """() => Array.from(document.images)
              .filter(img => img.naturalWidth === 0)
              .map(img => img.currentSrc || img.src)"""
    )


def figure_problems(page):
    """Every image needs alt text that describes it (not its file name), and every image of the
    chapter's content sits in a figure with a numbered caption ("Fig. 3 ...")."""
    images = page.evaluate(
        """() => Array.from(document.images).map(img => {
              const figure = img.closest('figure');
              const caption = figure && figure.querySelector('figcaption');
              const number = caption && caption.querySelector('.caption-number');
              return {src: img.getAttribute('src') || '', alt: img.getAttribute('alt') || '',
                      colab: !!img.closest('a.btn-open-in-colab'),
                      content: !!img.closest('article'),
                      number: number ? number.textContent.trim() : '',
                      caption: caption ? caption.textContent.trim() : ''};
            })"""
    )
    problems = []
    for image in images:
        name = image["src"].rsplit("/", 1)[-1]
        alt = image["alt"].strip()
        file_name = re.fullmatch(r"\S*\.(png|jpe?g|gif|svg)", alt, re.IGNORECASE)
        if not alt or alt == image["src"] or file_name:
            problems.append(f"image {name} has the alt text {alt!r}; write one that describes "
                            "it (mystnb.image.alt in the cell's header)")
        if image["colab"] or not image["content"]:
            continue
        if not re.fullmatch(r"Fig\. \d+", image["number"]):
            problems.append(f"image {name} is not in a figure with a numbered caption "
                            f"(caption {image['caption'][:60]!r}); give its cell "
                            "mystnb.figure.caption and .name")
        elif len(image["caption"]) <= len(image["number"]):
            problems.append(f"image {name}: {image['number']} has no caption text")
    return problems


def colab_problems(page, doc):
    """What is wrong with the page's Open in Colab link(s), if anything."""
    problems = []
    links = page.locator(COLAB_SELECTOR)
    if has_code(doc) and links.count() != 1:
        problems.append(f"{links.count()} Open in Colab links; a chapter with code needs one")
    prefix = colab_prefix()
    expected = f"notebooks/{Path(doc).name}.ipynb"
    for href in links.evaluate_all("els => els.map(e => e.href)"):
        if href.removeprefix(prefix) != expected:
            problems.append(f"Colab link {href}, expected {prefix}{expected}")
        elif not (ROOT / expected).is_file():
            problems.append(f"Colab link to {expected}, which is not in the repository")
    return problems


def citation_problems(page, doc):
    """Each citation must link to an entry of the References page, one entry per cited key."""
    source = ROOT / f"{doc}.md"
    keys = set()
    if source.is_file():
        keys = set(cited_keys(source.read_text(encoding="utf8")))
    links = page.evaluate(
        """() => Array.from(document.querySelectorAll('a[href*="references.html#"]'))
              .map(a => [a.getAttribute('href').split('#')[1], a.title])"""
    )
    references = HTML / "book" / "references.html"
    targets = set(re.findall(r'id="([^"]+)"', references.read_text(encoding="utf8")))
    problems = [f"citation link to #{anchor}, which the References page does not have"
                for anchor, _ in links if anchor not in targets]
    if len({title for _, title in links}) < len(keys):
        problems.append(f"{len(keys)} works cited in {doc}.md, but links to only "
                        f"{len({title for _, title in links})} entries")
    return problems


def overflowing_code(page):
    """Code blocks whose lines are wider than the block: their end is hidden."""
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('div.cell_input pre, div.highlight pre'))
              .filter(pre => !pre.closest('.cell_output, .output'))
              .filter(pre => pre.scrollWidth > pre.clientWidth + 1)
              .map(pre => 'code wider than its block: '
                   + pre.textContent.split('\\n').reduce((a, b) => b.length > a.length ? b : a))"""
    )


@pytest.mark.parametrize("path", PAGES or [None])
def test_page(server, watcher, path):
    if path is None:
        pytest.fail(MISSING_BUILD)
    page = watcher.page
    response = page.goto(server + path, wait_until="networkidle")
    assert response is not None and response.status == 200, f"{path}: {response}"
    problems = []

    n_math, typeset, raw = typeset_math(page)
    if typeset < n_math:
        problems.append(f"{typeset} of {n_math} formulas typeset by MathJax")
    if raw:
        problems.append(f"raw TeX left in the text: {raw[:5]}")
    if broken := broken_images(page):
        problems.append(f"images that did not load: {broken}")
    # index.html redirects to the root page: judge the page that is shown.
    doc = page.url.removeprefix(server).split("#")[0].removesuffix(".html")
    problems += figure_problems(page)
    problems += colab_problems(page, doc)
    problems += citation_problems(page, doc)
    problems += overflowing_code(page)

    page.wait_for_load_state("networkidle")
    shot = SCREENSHOTS / (path.replace("/", "__").removesuffix(".html") + ".png")
    page.screenshot(path=str(shot), full_page=True)

    if watcher.foreign:
        problems.append(f"requests outside {HOST}: {watcher.foreign}")
    problems += watcher.errors
    assert not problems, f"{path}:\n  " + "\n  ".join(problems)


def test_every_toc_page_built():
    if not PAGES:
        pytest.fail(MISSING_BUILD)
    missing = [d for d in toc_docs() if f"{d}.html" not in PAGES]
    assert not missing, f"pages of _toc.yml missing from the build: {missing}"


def test_every_chapter_in_toc():
    """only_build_toc_files skips files missing from _toc.yml silently: catch them here."""
    listed = set(toc_docs())
    chapters = {p.relative_to(ROOT).with_suffix("").as_posix() for p in ROOT.glob("book/*.md")}
    assert not chapters - listed, f"chapters not in _toc.yml (not built): {chapters - listed}"


def test_next_previous_navigation(server, watcher):
    """Follow "next" from the first page to the last, then "previous" back to the first."""
    docs = toc_docs()
    page = watcher.page
    page.goto(server + "index.html", wait_until="load")  # redirects to the root page
    page.wait_for_url(f"**/{docs[0]}.html")
    for direction, order in (("next", docs), ("prev", docs[::-1])):
        selector = "a.right-next" if direction == "next" else "a.left-prev"
        assert page.url == server + f"{order[0]}.html", page.url
        for expected in order[1:]:
            link = page.locator(selector)
            assert link.count() == 1, f"{page.url}: no {direction} link"
            # the next page's address and links are all this test reads: no need to wait
            # for its images and MathJax (test_page checks those, page by page)
            with page.expect_navigation(wait_until="domcontentloaded"):
                link.click()
            assert page.url == server + f"{expected}.html", f"{direction}: {page.url}"
        assert page.locator(selector).count() == 0, f"{page.url}: {direction} link past the end"
    assert not watcher.foreign and not watcher.errors, (watcher.foreign, watcher.errors)


def title_word(doc):
    """The longest word of a chapter's title: a word the search must find the chapter by."""
    notebook = jupytext.read(ROOT / f"{doc}.md", fmt="md:myst")
    prose = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    title = re.search(r"^# (.+)$", prose, re.MULTILINE).group(1)
    return max(re.findall(r"[A-Za-z]{4,}", title), key=len)


@pytest.mark.parametrize("doc", toc_docs())
def test_search_finds_chapter(server, watcher, doc):
    word = title_word(doc)
    page = watcher.page
    page.goto(server + f"search.html?q={word}", wait_until="load")
    results = page.locator("#search-results ul.search li a")
    results.first.wait_for()
    page.wait_for_function(
        "() => (document.querySelector('#search-results .search-summary') || {}).textContent"
    )
    page.screenshot(path=str(SCREENSHOTS / f"search__{word}.png"), full_page=True)
    hrefs = results.evaluate_all("els => els.map(e => e.getAttribute('href'))")
    hits = [h for h in hrefs if h.split("#")[0].split("?")[0] == f"{doc}.html"]
    assert hits, f"searching {word!r} did not find {doc}.html; results: {hrefs}"
    assert not watcher.foreign and not watcher.errors, (watcher.foreign, watcher.errors)
