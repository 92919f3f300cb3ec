"""What the tests share: builders of seeded homes and worlds, the test services' types,
clients (raw devices, the alert bus, the live feed, a browser) and short database queries.

Test modules import from here, never from each other or from a conftest.py; conftest.py
files hold fixtures only.
"""
