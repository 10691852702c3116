"""`glidemed serve` and `glidemed invite`: host the survey, receive responses, track raters.

- :mod:`glidemed.server.secrets`: per-rater invitation tokens and the admin token;
- :mod:`glidemed.server.store`: validate a posted response and store it append-only;
- :mod:`glidemed.server.app`: the Starlette application and its limits (run on uvicorn).
"""
