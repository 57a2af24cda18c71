"""End-to-end test of the dashboard in a real headless browser.

Starts ``genmodel dashboard --port N`` on localhost, drives Debian's chromium through chromedriver with
Selenium, visits every page, changes one input on the estimate page and checks that the shown metrics
change without an error, and checks that the Serving page draws its four charts and follows an engine
set in its URL. At the end the server is stopped by SIGTERM to the ``genmodel`` process alone, and its
Streamlit child must go with it. A screenshot of each page goes to pytest's ``tmp_path`` and, when the
environment variable ``GENMODEL_SCREENSHOT_DIR`` is set, into that folder as well.

The browser is never downloaded: ``make test`` installs the Debian packages ``chromium`` and
``chromium-driver``, and the driver path is given explicitly so that Selenium Manager is never asked for one.
Without them the test skips, unless ``GENMODEL_REQUIRE_BROWSER=1`` (set by ``make test``) makes it fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PAGES = ("estimate", "plan", "serving", "compare", "long_context", "moe", "validation", "calibrate")

SERVER_START_TIMEOUT_S = 60.0
PAGE_TIMEOUT_S = 45.0
WINDOW_SIZE = "1400,1800"

# CSS selectors of the Streamlit front end (data-testid attributes are its public testing hooks).
APP = '[data-testid="stApp"]'
TITLE = "h1"
# What must never show on a page drawn from valid inputs: a traceback, an st.error box (the app shows a
# GenModelError that way) or a dialog (Streamlit's "Page not found" for an unknown URL path is one).
PROBLEM = '[data-testid="stException"], [data-testid="stAlertContentError"], [data-testid="stDialog"]'
PLOTLY = '.js-plotly-plot, [data-testid="stPlotlyChart"]'
STALE = '[data-stale="true"]'
METRIC_VALUE = '[data-testid="stMetricValue"]'
# The estimate page's batch number input, by its widget key "estimate.batch" (Streamlit turns a key into
# the CSS class st-key-<key>, with characters other than [a-zA-Z0-9_-] replaced by "-").
BATCH_INPUT = '.st-key-estimate-batch [data-testid="stNumberInput"]'
STEP_UP = '[data-testid="stNumberInputStepUp"]'
# a drawn plotly chart's title (an SVG text element)
PLOT_TITLE = ".js-plotly-plot .gtitle"
SERVING_CHARTS = (
    "TTFT per request (CDF)",
    "TPOT per request (CDF)",
    "Running batch and queue over time",
    "KV cache in use over time",
)


def _require_browser() -> None:
    """Skip (or fail, under ``GENMODEL_REQUIRE_BROWSER=1``) when Selenium or the browser is missing."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the Python package selenium (pip install -e '.[test]')")
    if not missing:
        return
    reason = (
        f"headless browser test needs {', '.join(missing)}; "
        "`make test` installs them (apt-get install chromium chromium-driver)"
    )
    if os.environ.get("GENMODEL_REQUIRE_BROWSER") == "1":
        pytest.fail(f"GENMODEL_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    """Return a TCP port on localhost that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _http_ok(url: str) -> bool:
    """Whether ``url`` answers HTTP 200 within a second."""
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def _log_tail(log_path: Path, num_chars: int = 3000) -> str:
    """The last characters of the server's log, for failure messages."""
    return log_path.read_text(errors="replace")[-num_chars:] if log_path.exists() else "(no log)"


def _group_alive(pgid: int) -> bool:
    """Whether any process of the process group ``pgid`` is still running."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop(process: subprocess.Popen[bytes]) -> str | None:
    """SIGTERM to ``genmodel dashboard`` alone (as ``kill PID``), which must stop its streamlit child
    too; then kill whatever of its process group is left. Returns what went wrong, or None."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
    deadline = time.monotonic() + 30  # a bound on the wait, not a speed check
    while _group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    problem = None
    if process.poll() is None or _group_alive(process.pid):
        problem = "SIGTERM to genmodel dashboard left it or its streamlit child running"
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.poll() is None:
        process.wait(timeout=10)
    return problem


@pytest.fixture(scope="module")
def dashboard_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start ``genmodel dashboard`` on a free port; yield its base URL; always stop it afterwards."""
    _require_browser()
    genmodel = Path(sys.executable).parent / "genmodel"
    if not genmodel.is_file():
        found = shutil.which("genmodel")
        assert found, f"no genmodel script next to {sys.executable} nor on PATH"
        genmodel = Path(found)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("dashboard") / "server.log"
    env = {
        **os.environ,
        "STREAMLIT_SERVER_HEADLESS": "true",
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(genmodel), "dashboard", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # its own process group, so that _stop reaches every child
        )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _http_ok(f"{url}/_stcore/health"):
            if process.poll() is not None:
                pytest.fail(f"genmodel dashboard exited with {process.returncode}:\n{_log_tail(log_path)}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"genmodel dashboard not up after {SERVER_START_TIMEOUT_S} s:\n{_log_tail(log_path)}"
                )
            time.sleep(0.2)
        assert _http_ok(url), f"{url} does not answer HTTP 200:\n{_log_tail(log_path)}"
        yield url
    finally:
        problem = _stop(process)
    assert problem is None, f"{problem}:\n{_log_tail(log_path)}"


@pytest.fixture(scope="module")
def browser(dashboard_url: str) -> Iterator[Any]:
    """A headless chromium driven by the Debian chromedriver (never Selenium Manager); quit afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI containers run as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--disable-extensions",
        "--no-first-run",
        f"--window-size={WINDOW_SIZE}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(PAGE_TIMEOUT_S)
        yield driver
    finally:
        driver.quit()


def _script_state(driver: Any) -> str | None:
    """Streamlit's script-run state as the front end shows it (``running``, ``notRunning``, ...)."""
    from selenium.webdriver.common.by import By

    apps = driver.find_elements(By.CSS_SELECTOR, APP)
    return apps[0].get_attribute("data-test-script-state") if apps else None


def _settled(driver: Any) -> bool:
    """The script has finished, nothing is stale and either the page is drawn or an exception is shown."""
    from selenium.webdriver.common.by import By

    if _script_state(driver) != "notRunning" or driver.find_elements(By.CSS_SELECTOR, STALE):
        return False
    if driver.find_elements(By.CSS_SELECTOR, PROBLEM):
        return True  # stop waiting: _assert_no_problem reports it
    return bool(driver.find_elements(By.CSS_SELECTOR, TITLE)) and bool(
        driver.find_elements(By.CSS_SELECTOR, PLOTLY)
    )


def _wait(driver: Any, condition: Callable[[Any], bool], what: str) -> None:
    """Wait up to PAGE_TIMEOUT_S for ``condition``; fail with ``what`` and the page text otherwise."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(driver, PAGE_TIMEOUT_S, poll_frequency=0.2).until(condition)
    except TimeoutException:
        body = driver.find_element("tag name", "body").text[-2000:]
        pytest.fail(f"timed out after {PAGE_TIMEOUT_S} s waiting for {what} at {driver.current_url}:\n{body}")


def _assert_no_problem(driver: Any) -> None:
    """Fail with its text when the page shows an exception, an error box or a dialog."""
    from selenium.webdriver.common.by import By

    shown = [element.text for element in driver.find_elements(By.CSS_SELECTOR, PROBLEM)]
    assert not shown, f"exception, error or dialog on {driver.current_url}:\n" + "\n---\n".join(shown)


def _screenshot(driver: Any, directory: Path, name: str) -> Path:
    """Save a PNG of the window to ``directory`` and, when GENMODEL_SCREENSHOT_DIR is set, there too."""
    path = directory / f"dashboard_{name}.png"
    assert driver.save_screenshot(str(path)), f"could not save {path}"
    assert path.stat().st_size > 0
    extra = os.environ.get("GENMODEL_SCREENSHOT_DIR")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(extra) / path.name)
    return path


def _metric_values(driver: Any) -> list[str]:
    """The texts of all ``st.metric`` values on the page, in page order."""
    from selenium.webdriver.common.by import By

    return [element.text for element in driver.find_elements(By.CSS_SELECTOR, METRIC_VALUE)]


def _open(driver: Any, url: str) -> None:
    """Load ``url`` and wait until the Streamlit script has drawn the page."""
    driver.get(url)
    _wait(driver, _settled, "the page title, a plotly chart and the end of the script run")


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders(browser: Any, dashboard_url: str, page: str, tmp_path: Path) -> None:
    """Each page, visited by URL, shows its title and a plotly chart and no exception."""
    from selenium.webdriver.common.by import By

    _open(browser, f"{dashboard_url}/{page}")
    _assert_no_problem(browser)
    title = browser.find_element(By.CSS_SELECTOR, TITLE).text
    assert title.strip(), f"empty st.title on page {page}"
    assert browser.find_elements(By.CSS_SELECTOR, PLOTLY), f"no plotly chart on page {page}"
    _screenshot(browser, tmp_path, page)


def test_root_serves_the_estimate_page(browser: Any, dashboard_url: str) -> None:
    """``/`` is the estimate page: same title as ``/estimate``."""
    from selenium.webdriver.common.by import By

    _open(browser, f"{dashboard_url}/estimate")
    estimate_title = browser.find_element(By.CSS_SELECTOR, TITLE).text
    _open(browser, f"{dashboard_url}/")
    _assert_no_problem(browser)
    assert browser.find_element(By.CSS_SELECTOR, TITLE).text == estimate_title


def test_changing_an_input_updates_the_metrics(browser: Any, dashboard_url: str, tmp_path: Path) -> None:
    """Stepping the batch up on the estimate page reruns it: a metric and the URL follow, no error."""
    from selenium.webdriver.common.by import By

    _open(browser, f"{dashboard_url}/estimate")
    _assert_no_problem(browser)
    before = _metric_values(browser)
    assert before, "the estimate page shows no st.metric"
    widget = browser.find_element(By.CSS_SELECTOR, BATCH_INPUT)
    value = int(widget.find_element(By.TAG_NAME, "input").get_attribute("value"))
    widget.find_element(By.CSS_SELECTOR, STEP_UP).click()
    _wait(
        browser,
        lambda driver: _settled(driver) and _metric_values(driver) != before,
        f"a metric to change after stepping the batch up from {value} (metrics before: {before})",
    )
    _assert_no_problem(browser)
    widget = browser.find_element(By.CSS_SELECTOR, BATCH_INPUT)
    assert int(widget.find_element(By.TAG_NAME, "input").get_attribute("value")) == value + 1
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(browser.current_url).query)
    assert query.get("batch") == [str(value + 1)], f"batch not mirrored in the URL {browser.current_url}"
    _screenshot(browser, tmp_path, "estimate_changed")


def _plot_titles(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    return [element.text for element in driver.find_elements(By.CSS_SELECTOR, PLOT_TITLE)]


def test_serving_page_draws_its_charts_and_follows_the_engine(
    browser: Any, dashboard_url: str, tmp_path: Path
) -> None:
    """The Serving page draws the CDFs and the timelines; an engine in the URL is the one simulated."""
    from selenium.webdriver.common.by import By

    _open(browser, f"{dashboard_url}/serving")
    _wait(
        browser,
        lambda driver: all(any(t in s for s in _plot_titles(driver)) for t in SERVING_CHARTS),
        f"the charts {SERVING_CHARTS}",
    )
    _assert_no_problem(browser)
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "vllm" in body and "Closed form beside the simulation" in body
    # every chart drew lines (plotly's scatter traces), not an empty frame
    assert len(browser.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .scatterlayer .trace")) >= 8
    _screenshot(browser, tmp_path, "serving")

    _open(browser, f"{dashboard_url}/serving?engine=sglang&concurrency=32")
    _wait(
        browser,
        lambda driver: "sglang 0.5" in driver.find_element(By.TAG_NAME, "body").text,
        "the page to simulate SGLang",
    )
    _assert_no_problem(browser)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(browser.current_url).query)
    assert query.get("engine") == ["sglang"] and query.get("concurrency") == ["32"]
