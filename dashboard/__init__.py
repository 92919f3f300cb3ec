"""Care-centre web app (FastAPI): JSON API under /api/v1 and the duty screen at /."""
