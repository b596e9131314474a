"""``tinygpt explore``: a trained model, live in a local page.

session.py holds the loaded model and answers what the page asks (a streamed sample, one
token's attention in every head, predictions, logit lens, attribution, ablation) through the
analysis package; server.py serves the page and that API (Starlette on uvicorn, with the
token, Host and CSP guards); page/ is the page itself: one HTML file, one stylesheet and one
script, shipped in the package, no build step and nothing fetched from the network.
"""
