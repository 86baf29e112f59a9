"""Preflight: deliverability checks of an edition and one personalized sample message.

Errors mean the mail is broken, non-compliant or likely rejected (the send stops);
warnings mean it will arrive but could be better. Every finding names where the
problem is and how to fix it. ``run.preflight`` runs every check; only its
``check_links=True`` touches the network (``links``). ``project`` checks what the
edition goes out with (values left from the starter, the subscriber list) for
``newsletter check``.
"""
