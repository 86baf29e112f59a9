"""The command line: click only; each command parses, calls one typed function, prints.

The only importer of click. ``NewsletterError`` becomes a one-line message and its
exit code in ``main``: 0 ok, 1 a problem with input or delivery, 2 usage, 3 nothing
new to send.
"""
