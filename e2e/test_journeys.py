"""What a person does in a browser, in order, on one fresh server: first-run
setup, signing in, an organisation and a person, the language, a phone-sized
screen, and a second factor (last, because it changes how the administrator
signs in). Every main page passes axe-core without serious or critical
violations; every scenario leaves screenshots in screenshots/<scenario>/.
"""

import base64
import hashlib
import hmac
import re
import struct
import time

from conftest import (
    SHARED,
    ADMIN_EMAIL,
    ADMIN_NAME,
    ADMIN_PASSWORD,
    FIRST_ORG,
    INSTANCE_NAME,
    catalogue,
    check_accessibility,
    new_context,
    sign_in,
)

EN = catalogue("en")
FR = catalogue("fr")


def test_0_the_accessibility_check_sees_violations(context):
    # A page with an unlabelled field and no language: the check must fail,
    # or the clean results below would prove nothing.
    page = context.new_page()
    page.set_content("<html><body><main><input type=text></main></body></html>")
    try:
        check_accessibility(page, "a broken page")
    except AssertionError as e:
        assert "label" in str(e) and "html-has-lang" in str(e), str(e)
    else:
        raise AssertionError("axe-core found nothing on a page without labels or language")


def test_1_first_run_setup(context, shots):
    page = context.new_page()
    page.goto("/")
    assert page.url.endswith("/setup"), f"a fresh instance opens on its setup page, not {page.url}"
    check_accessibility(page, "setup")
    shots(page, "setup-empty")

    # A password that is too short is refused, with the message next to the field.
    page.fill("#f-instance_name", INSTANCE_NAME)
    page.select_option("#f-default_lang", "en")
    page.fill("#f-first_org", FIRST_ORG)
    page.fill("#f-admin_name", ADMIN_NAME)
    page.fill("#f-admin_email", ADMIN_EMAIL)
    page.fill("#f-admin_password", "short")
    page.click("form[action='/setup'] button[type=submit]")
    assert page.url.endswith("/setup")
    assert page.locator("#f-admin_password").get_attribute("aria-invalid") == "true"
    check_accessibility(page, "setup with errors")
    shots(page, "setup-errors")

    page.fill("#f-admin_password", ADMIN_PASSWORD)
    page.click("form[action='/setup'] button[type=submit]")
    page.wait_for_url(re.compile(r"/o/[a-z0-9-]+/$"))
    # Signed in as the new administrator, in the first organisation.
    assert FIRST_ORG in page.locator(".brand-name").inner_text()
    assert ADMIN_NAME in page.locator(".user-menu summary").inner_text()
    check_accessibility(page, "first dashboard")
    shots(page, "dashboard")

    # The setup page is closed for good.
    page.goto("/setup")
    assert not page.url.endswith("/setup")


def test_2_sign_in(context, shots):
    page = context.new_page()
    page.goto("/")
    assert "/login" in page.url, "a visitor without a session is sent to the sign-in page"
    assert page.locator("h1").inner_text() == EN["login.title"]
    check_accessibility(page, "sign-in")
    shots(page, "sign-in")

    sign_in(page, password="not the password")
    assert "/login" in page.url
    alert = page.locator("[role=alert]")
    assert alert.count() == 1 and alert.inner_text().strip(), "a wrong password says so"
    check_accessibility(page, "sign-in refused")
    shots(page, "wrong-password")

    sign_in(page)
    assert re.search(r"/o/[a-z0-9-]+/$", page.url), page.url
    assert ADMIN_NAME in page.locator(".user-menu summary").inner_text()
    shots(page, "signed-in")

    # Signing out ends the session: the dashboard asks to sign in again.
    dashboard = page.url
    page.click(".user-menu summary")
    page.click(".user-menu form[action='/logout'] button")
    page.wait_for_url(re.compile(r"/login"))
    page.goto(dashboard)
    assert "/login" in page.url


def test_3_organisation_and_person(context, shots):
    page = context.new_page()
    sign_in(page)
    page.goto("/admin")
    check_accessibility(page, "administration")
    shots(page, "admin")
    page.fill("#f-name", "Club Photo")
    page.fill("#f-slug", "club-photo")
    page.click("form[action='/admin/orgs'] button[type=submit]")
    page.wait_for_url("**/o/club-photo/")
    assert "Club Photo" in page.locator(".brand-name").inner_text()
    shots(page, "new-org-dashboard")

    page.goto("/o/club-photo/people")
    check_accessibility(page, "empty people list")
    page.goto("/o/club-photo/people/new")
    check_accessibility(page, "new person form")
    shots(page, "person-form")
    # The browser itself stops an email without "@"...
    page.fill("#f-email", "zoe-at-example")
    page.click("form.card button[type=submit]")
    assert page.url.endswith("/people/new")
    assert page.eval_on_selector("#f-email", "e => e.validity.valid") is False
    # ... and the server refuses a person without a name, keeping what was typed.
    page.fill("#f-email", "zoe@example.org")
    page.click("form.card button[type=submit]")
    page.wait_for_selector("#form-errors", state="visible")
    assert page.locator("#f-email").input_value() == "zoe@example.org"
    check_accessibility(page, "person form with errors")
    shots(page, "person-form-errors")
    page.fill("#f-given_name", "Zoé")
    page.fill("#f-family_name", "Lefèvre")
    page.fill("#f-phone", "+33 6 12 34 56 78")
    page.click("form.card button[type=submit]")
    page.wait_for_url(re.compile(r"/o/club-photo/people/[0-9a-f-]{36}$"))
    assert "Lefèvre" in page.locator("main").inner_text()
    assert "zoe@example.org" in page.locator("main").inner_text()
    check_accessibility(page, "person page")
    shots(page, "person")

    # The list finds her by a word prefix without the accent.
    page.goto("/o/club-photo/people?q=lefe")
    rows = page.locator("main table tbody tr")
    assert rows.count() == 1 and "Zoé" in rows.first.inner_text()
    check_accessibility(page, "people list")
    shots(page, "people-list")
    # ... and not in the other organisation.
    page.goto("/o/repair-cafe/people?q=lefe")
    assert "Zoé" not in page.locator("main").inner_text()


def test_4_language_switch(browser, shots):
    ctx = new_context(browser)
    page = ctx.new_page()
    page.goto("/login")
    assert page.locator("html").get_attribute("lang") == "en"
    page.click("form[action='/lang'] button[value=fr]")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.locator("h1").inner_text() == FR["login.title"]
    check_accessibility(page, "sign-in in French")
    shots(page, "sign-in-fr")

    sign_in(page)
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.locator(".skip-link").inner_text() == FR["layout.skip"]
    check_accessibility(page, "dashboard in French")
    shots(page, "dashboard-fr")
    page.goto("/o/club-photo/people")
    assert page.locator("html").get_attribute("lang") == "fr"
    shots(page, "people-fr")

    # Back to English from a signed-in page; the choice follows the account
    # to another browser.
    page.click("#site-nav form[action='/lang'] button[value=en]")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.url.endswith("/o/club-photo/people"), "the switch stays on the same page"
    shots(page, "people-en")
    ctx.close()
    other = new_context(browser, locale="fr-FR")
    page = other.new_page()
    sign_in(page)
    assert page.locator("html").get_attribute("lang") == "en", "the account's language wins over the browser's"
    other.close()


def test_5_mobile_viewport(browser, shots):
    ctx = new_context(browser, viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True)
    page = ctx.new_page()
    sign_in(page)
    page.goto("/o/club-photo/people")

    def no_horizontal_scroll(what):
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{what} is {width} px wide on a 375 px screen"

    no_horizontal_scroll("the people list")
    check_accessibility(page, "people list, mobile")
    shots(page, "people-list")
    # The menu folds behind a button that opens it.
    toggle = page.locator(".nav-toggle")
    assert toggle.is_visible()
    assert not page.locator("#site-nav .menu").is_visible()
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    assert page.locator("#site-nav .menu").is_visible()
    shots(page, "menu-open")
    toggle.click()

    page.goto("/o/club-photo/people/new")
    no_horizontal_scroll("the person form")
    for field in ("#f-given_name", "#f-family_name", "#f-email", "#f-phone"):
        box = page.locator(field).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 375, f"{field} overflows: {box}"
    check_accessibility(page, "person form, mobile")
    shots(page, "person-form")
    page.fill("#f-given_name", "Awa")
    page.fill("#f-family_name", "Diallo")
    page.locator("form.card button[type=submit]").tap()
    page.wait_for_url(re.compile(r"/people/[0-9a-f-]{36}$"))
    no_horizontal_scroll("the person page")
    shots(page, "person")
    ctx.close()


def totp(secret_b32, unix_time):
    """RFC 6238 code (HMAC-SHA1, 30 s, 6 digits), as an authenticator app computes it."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">q", int(unix_time) // 30), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[off : off + 4])[0] & 0x7FFFFFFF) % 1_000_000)


def test_6_totp_enrolment_and_sign_in(browser, shots):
    ctx = new_context(browser)
    page = ctx.new_page()
    sign_in(page)
    page.goto("/account/security")
    check_accessibility(page, "account security")
    page.click("form[action='/account/totp/begin'] button")
    page.wait_for_url("**/account/security")
    secret = re.sub(r"\s", "", page.locator("#totp-secret").inner_text())
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret
    check_accessibility(page, "second-factor enrolment")
    shots(page, "enrolment")

    now = time.time()
    wrong = "%06d" % ((int(totp(secret, now)) + 1) % 1_000_000)
    page.fill("form[action='/account/totp/confirm'] input[name=code]", wrong)
    page.click("form[action='/account/totp/confirm'] button")
    assert page.locator("[role=alert]").count() >= 1, "a wrong code is refused"
    shots(page, "wrong-code")
    code = totp(secret, time.time())
    page.fill("form[action='/account/totp/confirm'] input[name=code]", code)
    page.click("form[action='/account/totp/confirm'] button")
    page.wait_for_load_state()
    assert page.locator("form[action='/account/totp/disable']").count() == 1, "the second factor is on"
    shots(page, "enrolled")
    ctx.close()

    # Signing in now asks for a code after the password.
    ctx = new_context(browser)
    page = ctx.new_page()
    sign_in(page)
    assert "/login/totp" in page.url, page.url
    assert page.locator("h1").inner_text() == EN["totp.login.title"]
    check_accessibility(page, "second-factor sign-in")
    shots(page, "code-asked")
    # The code already used for the enrolment does not work twice.
    page.fill("#f-code", code)
    page.click("form[action='/login/totp'] button[type=submit]")
    assert "/login/totp" in page.url
    assert page.locator("[role=alert]").count() >= 1
    shots(page, "code-reused")
    # The next step's code is accepted (one step of clock drift is allowed).
    page.fill("#f-code", totp(secret, time.time() + 30))
    SHARED["totp_secret"], SHARED["totp_last_step"] = secret, int(time.time() + 30) // 30
    page.click("form[action='/login/totp'] button[type=submit]")
    page.wait_for_url(re.compile(r"/o/[a-z0-9-]+/$"))
    assert ADMIN_NAME in page.locator(".user-menu summary").inner_text()
    shots(page, "signed-in")
    ctx.close()
