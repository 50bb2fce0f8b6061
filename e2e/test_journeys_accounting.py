"""The accounting module's path, in a real browser: the treasurer opens the
books with the associations' chart, records an expense with the simple form
(on a phone), finds it in the entries, validates it (it gets its number),
sees it in the trial balance, and adds an account to the chart; a bad amount
is refused in the form and nothing is recorded.

Runs after test_journeys.py (same server, the administrator has a second
factor) and before the clubs journey.
"""

import re

from conftest import check_accessibility, new_context
from test_journeys_clubs import executive_page

ORG = "repair-cafe"


def test_8_books_simple_entry_and_reports(browser, shots):
    ctx, page = executive_page(browser)
    page.on("dialog", lambda d: d.accept())

    page.goto(f"/o/{ORG}/accounting")
    check_accessibility(page, "accounting, books not opened")
    page.select_option("#f-chart", "associations")
    page.fill("#f-first_year_start", "2026-01-01")
    with page.expect_navigation():
        page.click(f"form[action='/o/{ORG}/accounting/open'] button[type=submit]")
    assert page.locator(f"form[action='/o/{ORG}/accounting/open']").count() == 0, "the books are open"
    check_accessibility(page, "accounting overview")
    shots(page, "books-open")

    # The simple form, on a phone: an amount typed the French way.
    phone = new_context(browser, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone.add_cookies(ctx.cookies())
    p = phone.new_page()
    p.goto(f"/o/{ORG}/accounting/simple")
    check_accessibility(p, "simple entry form (phone)")
    assert p.get_attribute("#f-amount", "inputmode") == "decimal"
    assert p.input_value("#f-payment").startswith("512"), "the bank is the first choice"
    p.select_option("#f-kind", "expense")
    p.fill("#f-date", "2026-11-20")
    p.fill("#f-label", "Pièces détachées pour grille-pain")
    p.fill("#f-amount", "12,345")
    with p.expect_navigation():
        p.click(f"form[action='/o/{ORG}/accounting/simple'] button[type=submit]")
    p.wait_for_selector("#form-errors", state="visible")  # three decimals are refused
    assert p.input_value("#f-label") == "Pièces détachées pour grille-pain", "what was typed is kept"
    shots(p, "simple-form-error")
    p.fill("#f-amount", "42,50")
    p.click(f"form[action='/o/{ORG}/accounting/simple'] button[type=submit]")
    p.wait_for_url(re.compile(rf"/o/{ORG}/accounting/entries/[0-9a-f-]{{36}}$"))
    entry_url = p.url
    shots(p, "entry-draft")
    phone.close()

    page.goto(f"/o/{ORG}/accounting/entries")
    rows = page.locator("table tbody tr", has_text="Pièces détachées pour grille-pain")
    assert rows.count() == 1, "recorded once, after the refused attempt"
    check_accessibility(page, "entries list")

    page.goto(entry_url)
    with page.expect_navigation():
        page.click("form[action$='/validate'] button")
    assert page.locator("form[action$='/validate']").count() == 0, "a validated entry cannot be validated again"
    assert page.locator("form[action$='/reverse']").count() == 1, "a validated entry can only be reversed"
    check_accessibility(page, "validated entry")
    shots(page, "entry-validated")

    page.goto(f"/o/{ORG}/accounting/reports/trial-balance?from=2026-01-01&to=2026-12-31")
    body = page.locator("main").inner_text()
    assert re.search(r"42[.,]50", body), "the expense is in the trial balance"
    assert page.locator("h1").inner_text().startswith("Trial balance"), "headings in the reader's language"
    assert page.locator("thead th", has_text="Debit balance").count() == 1
    check_accessibility(page, "trial balance")
    shots(page, "trial-balance")

    page.goto(f"/o/{ORG}/accounting/accounts/edit")
    check_accessibility(page, "chart of accounts editing")
    page.fill("#f-new-number", "6063")
    page.fill("#f-new-label", "Petit outillage")
    with page.expect_navigation():
        page.click(f"form[action='/o/{ORG}/accounting/accounts'] button[type=submit]")
    page.goto(f"/o/{ORG}/accounting/accounts/edit?prefix=606")
    assert page.locator("#account-6063").count() == 1, "the new account is in the chart"
    shots(page, "chart-edited")
    ctx.close()
