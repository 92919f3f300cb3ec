"""What the Chinese page tests share: the Latin words Chinese screens use as they are."""

from __future__ import annotations

# Acronyms and names written in Latin letters on Chinese screens too (everything else with a
# Latin word on a zh-CN page, outside data marked translate="no", is untranslated).
ALLOWED_LATIN = frozenset({"SOS", "ID", "QR", "CSV", "XLSX", "MQTT", "HTTP", "HTTPS", "TLS",
                           "URL", "API", "TOTP", "PIN", "p90", "UTC", "eldercare",
                           "Eldercare"})
