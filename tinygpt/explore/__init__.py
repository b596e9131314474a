"""``tinygpt explore``: a trained model, live in a local page.

session.py answers what the page asks through the analysis package; server.py serves the page
and that API (Starlette on uvicorn, with the token, Host and CSP guards); page/ is the page
itself, shipped in the package: no build step and nothing fetched from the network.
"""
