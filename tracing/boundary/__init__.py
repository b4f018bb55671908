"""Where data crosses the trust boundary (sikte-tui runs as root): files written as the
invoking user (`userfiles`), files that others control read safely (`untrusted_files`), and
text from outside made harmless to show (`display_text`). See docs/security.md.
"""
