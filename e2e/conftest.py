"""Browser end-to-end tests of Shrooms: shared fixtures and helpers.

The Rust test `e2e::browser_journeys` (crates/shrooms/tests/it/e2e.rs) starts a
fresh `shrooms serve` and runs this suite against it with SHROOMS_E2E_BASE set;
run it by hand the same way (docs/TESTING.md). The browser is Debian's
Chromium driven by Playwright; axe-core comes from npm (e2e/setup.sh).
"""

import os
import pathlib
import re
import tomllib

import pytest
from playwright.sync_api import sync_playwright

HERE = pathlib.Path(__file__).resolve().parent
BASE = os.environ.get("SHROOMS_E2E_BASE", "http://127.0.0.1:8080").rstrip("/")
SCREENSHOTS = pathlib.Path(os.environ.get("SHROOMS_E2E_SCREENSHOTS", HERE / "screenshots"))
CHROMIUM = os.environ.get("SHROOMS_E2E_CHROMIUM", "/usr/bin/chromium")
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
CATALOGUES = HERE.parent / "core" / "i18n"

# The administrator the first-run scenario creates; later scenarios sign in with it.
ADMIN_NAME = "Camille Martin"
ADMIN_EMAIL = "camille@example.org"
ADMIN_PASSWORD = "correct horse battery"
INSTANCE_NAME = "Atelier e2e"
FIRST_ORG = "Repair Café"


# What one scenario leaves for the next (the administrator's second factor).
SHARED = {}


def catalogue(lang):
    """The server's own translations, so expected texts are not copied here."""
    with open(CATALOGUES / f"{lang}.toml", "rb") as f:
        return tomllib.load(f)


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


def new_context(browser, **kwargs):
    # The pages forbid inline scripts (Content-Security-Policy); axe-core is
    # injected as an inline <script>, so the test browser bypasses the policy.
    kwargs.setdefault("bypass_csp", True)
    # Without animations, axe measures colours as they end, not half-faded in.
    kwargs.setdefault("reduced_motion", "reduce")
    kwargs.setdefault("locale", "en-GB")
    kwargs.setdefault("viewport", {"width": 1280, "height": 800})
    ctx = browser.new_context(base_url=BASE, **kwargs)
    # Generous: CI runs this beside the other tests on two cores.
    ctx.set_default_timeout(20_000)
    return ctx


@pytest.fixture
def context(browser):
    ctx = new_context(browser)
    yield ctx
    ctx.close()


class Shots:
    """Numbered full-page screenshots in screenshots/<scenario>/."""

    def __init__(self, scenario):
        self.dir = SCREENSHOTS / scenario
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in self.dir.glob("*.png"):
            old.unlink()
        self.n = 0

    def __call__(self, page, name):
        self.n += 1
        page.screenshot(path=str(self.dir / f"{self.n:02d}-{name}.png"), full_page=True)


@pytest.fixture
def shots(request):
    return Shots(re.sub(r"^test_\d*_?", "", request.node.name))


def check_accessibility(page, label):
    """Runs axe-core on the current page; fails on serious or critical violations."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ["violations"]});
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + " :: " + n.failureSummary),
            }));
        }"""
    )
    bad = [v for v in result if v["impact"] in ("serious", "critical")]
    for v in result:
        print(f"axe [{label}] {v['impact']}: {v['id']} ({v['help']})")
    assert not bad, f"accessibility violations on {label} ({page.url}):\n" + "\n".join(
        f"- {v['impact']} {v['id']}: {v['help']}\n    " + "\n    ".join(v["nodes"]) for v in bad
    )


def sign_in(page, email=ADMIN_EMAIL, password=ADMIN_PASSWORD):
    page.goto("/login")
    page.fill("#f-email", email)
    page.fill("#f-password", password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state()
