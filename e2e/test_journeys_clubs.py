"""The clubs module's path, in a real browser: an executive opens attendance,
a participant on a phone enters the code and signs with a photo, the
participant appears in the list, the synthesis and the gallery update, and a
visitor without an account cannot see the cash.

Runs after test_journeys.py (same server): the administrator is a federation
executive there and enrolled a second factor in its last scenario.
"""

import re
import struct
import time
import zlib

from conftest import SHARED, check_accessibility, new_context, sign_in
from test_journeys import totp

ORG = "repair-cafe"

def png(width=64, height=48):
    """A small real PNG (a phone would send a JPEG; both are photos)."""
    raw = b"".join(b"\x00" + b"".join(bytes((x * 4 % 256, y * 5 % 256, 128)) for x in range(width)) for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def executive_page(browser):
    """The administrator, signed in with its second factor (a step not used yet)."""
    secret, last = SHARED["totp_secret"], SHARED["totp_last_step"]
    while int(time.time()) // 30 + 1 <= last:
        time.sleep(1)
    ctx = new_context(browser)
    page = ctx.new_page()
    sign_in(page)
    assert "/login/totp" in page.url, page.url
    page.fill("#f-code", totp(secret, time.time() + 30))
    SHARED["totp_last_step"] = int(time.time() + 30) // 30
    page.click("form[action='/login/totp'] button[type=submit]")
    page.wait_for_url(re.compile(r"/o/[a-z0-9-]+/$"))
    return ctx, page


def test_7_attendance_by_code_on_a_phone(browser, shots, tmp_path):
    ctx, page = executive_page(browser)
    page.goto(f"/o/{ORG}/clubs")
    check_accessibility(page, "clubs dashboard (executive)")
    page.click("details.card summary")
    page.fill("#f-name", "Club de Sport")
    page.fill("#f-summary", "Le bien-être par l'activité physique")
    page.click(f"form[action='/o/{ORG}/clubs'] button[type=submit]")
    page.wait_for_url(f"**/o/{ORG}/clubs/club-de-sport")
    page.click("details.restricted summary")
    page.fill("#f-theme", "Tournoi de football")
    page.fill("#f-starts_at", "2026-11-21T14:30")
    page.fill("#f-place", "Terrain de sport")
    page.click(f"form[action='/o/{ORG}/clubs/club-de-sport/activities'] button[type=submit]")
    page.wait_for_url(re.compile(rf"/o/{ORG}/clubs/club-de-sport/activities/[0-9a-f-]{{36}}$"))
    activity_url = page.url
    page.click("form[action$='/open'] button")
    page.wait_for_load_state()
    code = page.locator(".attendance-code").inner_text().strip()
    assert re.fullmatch(r"\d{6}", code), code
    assert page.locator(".qr svg").count() == 1
    check_accessibility(page, "activity with attendance open")
    shots(page, "attendance-open")

    # A participant on a phone, not signed in.
    phone = new_context(browser, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    p = phone.new_page()
    p.goto(f"/o/{ORG}/clubs/attend")
    assert p.get_attribute("#f-code", "inputmode") == "numeric"
    check_accessibility(p, "attendance code (phone)")
    shots(p, "phone-code")
    p.fill("#f-code", "000000" if code != "000000" else "111111")
    p.click("form[method=get][action$='/clubs/attend'] button[type=submit]")
    # The answer is a new page: wait for it (is_visible does not wait).
    p.wait_for_selector("#form-errors", state="visible")  # a wrong code is refused
    assert "code=" in p.url
    p.fill("#f-code", code)
    p.click("form[method=get][action$='/clubs/attend'] button[type=submit]")
    p.wait_for_selector("#f-last_name")
    assert "Tournoi de football" in p.locator("main").inner_text()
    p.fill("#f-last_name", "Koné")
    p.fill("#f-first_name", "Awa")
    p.fill("#f-field_of_study", "Statistique")
    p.fill("#f-level", "L2")
    p.check("input[name=rating][value='5']")
    p.fill("#f-suggestion", "Encore !")
    photo = tmp_path / "photo.png"
    photo.write_bytes(png())
    p.set_input_files("#f-photos", str(photo))
    check_accessibility(p, "attendance form (phone)")
    shots(p, "phone-form")
    p.click("form[enctype='multipart/form-data'] button[type=submit]")
    p.wait_for_selector(".alert-success")
    assert "Awa" in p.locator(".alert-success").inner_text()
    shots(p, "phone-done")
    # The same person cannot sign twice.
    p.goto(f"/o/{ORG}/clubs/attend?code={code}")
    p.fill("#f-last_name", "KONE")
    p.fill("#f-first_name", "awa")
    p.click("form[enctype='multipart/form-data'] button[type=submit]")
    p.wait_for_selector("#form-errors")
    shots(p, "phone-twice")
    phone.close()

    # The executive sees the participant in the list; the activity is done.
    page.goto(activity_url)
    assert "Koné" in page.locator("table").first.inner_text()
    page.select_option("#f-state", "done")
    with page.expect_navigation():
        page.click("form[action$='/state'] button[type=submit]")
    page.goto(f"/o/{ORG}/clubs/club-de-sport")
    stats = page.locator(".stats").inner_text()
    assert re.search(r"\b1\b", stats), stats
    assert page.locator(".gallery img").count() == 1, "the photo is in the club's gallery"
    check_accessibility(page, "club page (executive)")
    shots(page, "club-synthesis")
    page.goto(f"/o/{ORG}/clubs/gallery")
    assert page.locator(".gallery img").count() == 1
    check_accessibility(page, "gallery")
    shots(page, "gallery")
    ctx.close()

    # A visitor with the link: the club page and the gallery, never the cash.
    visitor = new_context(browser)
    v = visitor.new_page()
    v.goto(f"/o/{ORG}/clubs/club-de-sport")
    assert "Tournoi de football" in v.locator("main").inner_text()
    assert v.locator(f"a[href$='/club-de-sport/money']").count() == 0
    check_accessibility(v, "club page (visitor)")
    shots(v, "visitor-club")
    v.goto(f"/o/{ORG}/clubs/club-de-sport/money")
    assert "/login" in v.url or v.locator(".error-page").count() == 1, v.url
    shots(v, "visitor-cash-refused")
    visitor.close()
