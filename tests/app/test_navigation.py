"""The way in: Home names every page the sidebar offers."""

from __future__ import annotations


def test_home_links_to_every_page(open_page):
    app = open_page("streamlit_app.py")
    links = {link.proto.page for link in app.get("page_link")}  # the pages' URL paths
    assert links == {"Train", "Evaluate", "Try_It", "Label", "Live"}
